"""End to end: the whole DVC pipeline on a tiny copy of the project, and the users' daily loop around it.

The module fixture `pipeline` copies the project into a temporary git + DVC repo (tests/e2e_project.py: fixture CSVs
as the embedded sample, a tiny random distiluse as train.base_model, batch 8, 97 prepared episodes), runs the first
`dvc repro` with the params audit on, and commits dvc.lock and the metrics on branch `main`.

The tests share that repo and run in file order (pytest keeps definition order); each documents the state it
starts from and leaves:
  1. test_first_repro_then_nothing_to_do  main as committed by the fixture              -> unchanged
  2. test_params_audit                    reads the fixture's audit files only          -> unchanged
  3. test_evaluate_param_reruns_only_evaluate   main; evaluate.seed 42 -> 30            -> committed on main
  4. test_querygen_branch_and_metrics_diff      branch exp-querygen (querygen.seed)     -> back on main, checked out
  5. test_ssh_remote_push_pull_and_run_cache   main pushed to an ssh remote on 127.0.0.1 (.dvc/config committed);
                                          git clones pull it, and restore an uncommitted result from the run-cache
  6. test_study_queued_run_and_compared  a study (experiments.yaml) of 2 variants x 2 seeds queued, run and compared
                                          from DVC experiments                          -> study committed on main
  7. test_exp_run_and_show                `dvc exp run -S train.learning_rate=...` in main's workspace (last: it
                                          leaves params.yaml modified)
Run only these with `pytest -m e2e`; skip them with `pytest -m "not e2e"`.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.e2e_project import Project, Result, build_project, leaf_keys, lookup, ran_stages
from tests.sshd import client_env, ssh_server, unavailable_reason
from podsearch.tiny_models import make_tiny_distiluse

pytestmark = pytest.mark.e2e

ALL_STAGES = {"download", "prepare", "generate_queries", "split", "pseudolabel", "train", "export_base", "export_finetuned",
              "unpack_use", "embed_base", "embed_finetuned", "embed_use", "embed_e5", "check_int8", "evaluate", "index",
              "report"}
UP_TO_DATE = "Data and pipelines are up to date."
OUTPUTS = [  # every stage output, files and folders, that must exist after a repro (and after a pull)
    "data/raw/podcasts.csv", "data/raw/episodes.csv",
    "data/prepared/episodes.parquet",
    "data/pairs/pairs.parquet", "data/pairs/shards",
    "data/splits/train.parquet", "data/splits/eval.parquet", "data/splits/test.parquet",
    "data/pseudolabels/train.parquet",
    "models/podcast-encoder/README.md", "models/podcast-encoder/modules.json",
    "models/onnx/base", "models/onnx/finetuned/model.onnx", "models/onnx/finetuned/model.int8.onnx",
    "models/use/weights.npz",
    "data/embeddings/base.npy", "data/embeddings/base.ids.txt",
    "data/embeddings/finetuned.npy", "data/embeddings/finetuned.ids.txt",
    "data/embeddings/use.npy", "data/embeddings/use.ids.txt",
    "data/embeddings/e5.npy", "data/embeddings/e5.ids.txt",
    "data/index",
    "data/eval/runs/synthetic.parquet", "data/eval/runs/curated.parquet",
]
METRICS = ["stats/prepare.json", "stats/querygen.json", "stats/split.json", "stats/pseudolabel.json",
           "stats/train.json", "stats/eval.json", "stats/onnx.json",
           "metrics/train.json", "metrics/eval.json", "dvclive/metrics.json", "dvclive/plots/metrics/loss.tsv", "plots/recall_at_k_synthetic.csv",
           "plots/recall_at_k_curated_dev.csv", "plots/recall_at_k_curated_test.csv",
           "reports/curated_test_queries.md"]
HEADLINE = [(query_set, system, metric) for query_set in ("synthetic", "curated_dev", "curated_test")
            for system in ("base", "finetuned", "bm25", "use", "e5", "hybrid", "shipped", "teacher")
            for metric in ("recall@10", "recall@30", "mrr@30")]

# Declared params a stage legitimately does not read in this configuration: keys of alternatives not selected.
UNSELECTED = {
    "download": {"data.kaggle_dataset"},  # data.source is sample
    "generate_queries": set(),  # filled in test_params_audit from the mix: generators at weight 0 read nothing
    "evaluate": {"evaluate.hnsw_m", "evaluate.hnsw_ef_search",  # evaluate.index is exact
                 "evaluate.pinecone_index", "evaluate.pinecone_cloud", "evaluate.pinecone_region"},
}
UNSELECTED_SECTIONS: dict[str, list[str]] = {}  # stage -> params sections of alternatives not selected
# Keys read that params.yaml does not have (so nothing for DVC to track): querygen's generator_config() looks up each
# mixed generator's subsection, and pseudo has none.
ABSENT_READS_OK = {"generate_queries": {"querygen.pseudo"}}


@dataclass
class Pipeline:
    project: Project
    first: Result
    audit_dir: Path
    remote_root: Path
    timings: dict = field(default_factory=dict)


def _check(result: Result, condition: bool, message: str) -> None:
    assert condition, f"{message}\n{result.describe()}"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    started = time.perf_counter()
    base = tmp_path_factory.mktemp("e2e")
    # The base model lives outside the project so git and DVC never see it; it is only a params value.
    words = " ".join(Path(__file__).resolve().parent.joinpath("fixtures", name).read_text(errors="ignore")
                     for name in ("e2e_podcasts.csv", "e2e_episodes.csv")).split()[:4000]
    model = make_tiny_distiluse(base / "tiny-distiluse", words=words)
    project = build_project(base / "project", base_model=model)
    audit_dir = base / "params-audit"
    audit_dir.mkdir()
    built = time.perf_counter()
    first = project.dvc("repro", env={"PODSEARCH_PARAMS_AUDIT": str(audit_dir)})
    repro_done = time.perf_counter()
    project.commit("first repro: dvc.lock and metrics")
    return Pipeline(project, first, audit_dir, base, timings={
        "build_project_s": round(built - started, 1), "first_repro_s": round(repro_done - built, 1)})


# ------------------------------------------------------------------------------------------------------------- 1
def test_first_repro_then_nothing_to_do(pipeline):
    """Every stage ran once, every output exists, eval.json has the headline keys; a second repro runs nothing."""
    project, first = pipeline.project, pipeline.first
    ran = ran_stages(first.output)
    _check(first, set(ran) == ALL_STAGES and len(ran) == len(ALL_STAGES),
           f"first repro should run each stage once, ran {ran}")
    missing = [p for p in OUTPUTS + METRICS if not (project.root / p).exists()]
    _check(first, not missing, f"outputs missing after repro: {missing}")
    assert any((project.root / "data/index").iterdir()), "data/index is empty"

    report = json.loads((project.root / "metrics/eval.json").read_text())
    absent = [key for key in HEADLINE if key[2] not in report.get(key[0], {}).get(key[1], {})]
    assert not absent, f"metrics/eval.json lacks headline values {absent}"
    assert all(0.0 <= report[s][n][m] <= 1.0 for s, n, m in HEADLINE)
    sizes = json.loads((project.root / "stats/eval.json").read_text())["sizes"]
    assert sizes["synthetic"]["queries"] > 0 and sizes["curated_test"]["queries"] == 2, sizes
    train = json.loads((project.root / "metrics/train.json").read_text())
    assert set(train) == {"inbatch_mrr@5_before", "inbatch_mrr@5_after"}, train  # quality only
    assert json.loads((project.root / "stats/train.json").read_text())["steps"] > 0

    again = project.dvc("repro")
    _check(again, not ran_stages(again.output), "a second repro with nothing changed must run no stage")
    status = project.dvc("status")
    _check(status, UP_TO_DATE in status.output, "dvc status should report everything up to date")


# ------------------------------------------------------------------------------------------------------------- 2
def _declared(project: Project) -> dict[str, list[str]]:
    stages = yaml.safe_load((project.root / "dvc.yaml").read_text())["stages"]
    declared = {}
    for name, stage in stages.items():
        keys = []
        for entry in stage.get("params", []):
            if isinstance(entry, str):
                keys.append(entry)
            else:  # {file: [keys]}: only params.yaml is used in this project
                for file, file_keys in entry.items():
                    assert file == "params.yaml", f"stage {name}: params from {file} not handled by this test"
                    keys.extend(file_keys or [])
        declared[name] = keys
    return declared


def test_params_audit(pipeline):
    """dvc.yaml declares exactly the params each stage's code reads (leaf keys; unselected alternatives excepted)."""
    project = pipeline.project
    params = project.params()
    unselected = {stage: set(keys) for stage, keys in UNSELECTED.items()}
    mix = params["querygen"]["mix"]
    unselected_sections = dict(UNSELECTED_SECTIONS)
    unselected_sections["generate_queries"] = [f"querygen.{name}" for name, weight in mix.items()
                                               if not weight and isinstance(params["querygen"].get(name), dict)]
    if not mix.get("keyword"):
        unselected["generate_queries"].add("train.base_model")  # only the keyword generator needs the encoder
    for stage, sections in unselected_sections.items():
        for section in sections:
            found, value = lookup(params, section)
            assert found and isinstance(value, dict), f"params.yaml: {section} should be a section"
            unselected[stage] |= leaf_keys(value, section)

    problems = []
    checked = 0
    for stage, entries in _declared(project).items():
        if not entries:
            continue  # a stage without params has nothing to audit
        declared = set()
        for key in entries:
            found, value = lookup(params, key)
            assert found, f"dvc.yaml stage {stage} declares {key}, which params.yaml lacks"
            declared |= leaf_keys(value, key)
        assert unselected.get(stage, set()) <= declared, f"{stage}: stale exceptions {unselected[stage] - declared}"
        audit = pipeline.audit_dir / f"{stage}.txt"
        if not audit.exists():
            problems.append(f"{stage}: declares {sorted(declared)} but read no params at all (no {audit.name})")
            continue
        read_leaves, absent = set(), set()
        for key in set(audit.read_text().split()):
            found, value = lookup(params, key)
            if not found:
                absent.add(key)
            elif not isinstance(value, dict):  # reading a section dict itself is not a use of its keys
                read_leaves.add(key)
        undeclared = read_leaves - declared
        unread = declared - read_leaves - unselected.get(stage, set())
        unexpected_absent = absent - ABSENT_READS_OK.get(stage, set())
        if undeclared:
            problems.append(f"{stage}: reads {sorted(undeclared)} but dvc.yaml does not declare them")
        if unread:
            problems.append(f"{stage}: declares {sorted(unread)} but its code never reads them")
        if unexpected_absent:
            problems.append(f"{stage}: reads {sorted(unexpected_absent)}, which params.yaml does not have")
        checked += 1
    with_params = [stage for stage, entries in _declared(project).items() if entries]
    # report and unpack_use read none
    assert checked == len(with_params) == len(ALL_STAGES) - 2, f"audited {checked} stages"
    assert not problems, "params audit:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------------------------------- 3
def test_evaluate_param_reruns_only_evaluate(pipeline):
    """From main as committed: an evaluate-only knob reruns evaluate and the report drawn from its metrics alone.
    Leaves the change committed on main."""
    project = pipeline.project
    assert project.params()["evaluate"]["seed"] != 30
    project.set_params({("evaluate", "seed"): 30})
    result = project.dvc("repro")
    # The CIs and p-values move with the seed, so the report (which prints them) reruns too; nothing upstream does.
    _check(result, ran_stages(result.output) == ["evaluate", "report"],
           "evaluate.seed must rerun evaluate and the report drawn from its metrics, nothing else")
    project.commit("evaluate.seed 30")


# ------------------------------------------------------------------------------------------------------------- 4
QUERYGEN_RERUNS = {"generate_queries", "split", "pseudolabel", "train", "export_finetuned", "embed_finetuned", "check_int8", "evaluate",
                   "index", "report"}


def _diff_changed(diff: dict, file: str, key: str) -> tuple[bool, dict | None]:
    entry = diff.get(file, {}).get(key)
    return bool(entry) and entry.get("old") != entry.get("new"), entry


def test_querygen_branch_and_metrics_diff(pipeline):
    """On branch exp-querygen, a query-generation param reruns exactly the stages downstream of the pairs, and
    `dvc metrics diff main exp-querygen` shows the in-batch MRR@5 and the fine-tuned retrieval metrics moving.
    Ends back on main with its outputs checked out."""
    project = pipeline.project
    project.git("checkout", "-q", "-b", "exp-querygen")
    # More diversity between an episode's key phrases picks other phrases (pairs.parquet changes; split reruns only
    # when its hash does). querygen.seed would not do: the default keyword generator has no randomness.
    assert project.params()["querygen"]["keyword"]["diversity"] != 0.9
    project.set_params({("querygen", "keyword", "diversity"): 0.9})
    result = project.dvc("repro")
    ran = ran_stages(result.output)
    _check(result, set(ran) == QUERYGEN_RERUNS and len(ran) == len(QUERYGEN_RERUNS),
           f"querygen.keyword.diversity should rerun {sorted(QUERYGEN_RERUNS)} once each; ran {ran}")
    project.commit("exp: querygen.keyword.diversity 0.9")

    diff_json = project.dvc("metrics", "diff", "main", "exp-querygen", "--json")
    diff = json.loads(diff_json.stdout)
    table = project.dvc("metrics", "diff", "main", "exp-querygen")
    print(f"\n$ dvc metrics diff main exp-querygen\n{table.stdout}")
    changed, entry = _diff_changed(diff, "metrics/train.json", "inbatch_mrr@5_after")
    _check(diff_json, changed, f"metrics/train.json inbatch_mrr@5_after should differ, got {entry}")
    _check(table, "inbatch_mrr@5_after" in table.stdout, "the metrics diff table should list inbatch_mrr@5_after")
    # The synthetic corpus (test episodes) has more than 30 episodes, so Recall@30 can and must move.
    sizes = json.loads((project.root / "stats/eval.json").read_text())["sizes"]  # a DVC output: the workspace's
    assert sizes["synthetic"]["episodes"] > 30, sizes
    moved = [key for key in ("synthetic.finetuned.recall@10", "synthetic.finetuned.recall@30",
                             "synthetic.finetuned.mrr@30") if _diff_changed(diff, "metrics/eval.json", key)[0]]
    _check(diff_json, bool(moved), "the fine-tuned model's synthetic retrieval metrics should differ")

    project.git("checkout", "-q", "main")
    project.dvc("checkout")
    status = project.dvc("status")
    _check(status, UP_TO_DATE in status.output, "main's outputs should be back after git checkout + dvc checkout")
    assert project.params()["querygen"]["keyword"]["diversity"] != 0.9


# ------------------------------------------------------------------------------------------------------------- 5
def _same_outputs(a: Path, b: Path) -> None:
    for path in OUTPUTS:
        src, dst = a / path, b / path
        if src.is_file():
            assert src.read_bytes() == dst.read_bytes(), f"{path} differs after pull"
        else:
            files = sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())
            assert files == sorted(p.relative_to(dst) for p in dst.rglob("*") if p.is_file()), path


def _clone(pipeline: Pipeline, name: str, server) -> Project:
    root = pipeline.remote_root / name
    pipeline.project.git("clone", "-q", str(pipeline.project.root), str(root))
    clone = Project(root)
    # The key is a path on this machine: --local keeps it out of the committed .dvc/config.
    clone.dvc("remote", "modify", "--local", "origin", "keyfile", str(server.keyfile))
    return clone


def test_ssh_remote_push_pull_and_run_cache(pipeline):
    """Over a real protocol (an OpenSSH server on 127.0.0.1): main's outputs pushed to a dvc-ssh remote come back
    in a fresh git clone with `dvc pull`, after which `dvc repro` runs nothing; and a result pushed only to the
    run-cache (never committed) is restored, not recomputed, by `dvc repro` in another fresh clone."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    project = pipeline.project
    with ssh_server(pipeline.remote_root / "sshd") as server:
        env = client_env(server)
        project.dvc("remote", "add", "-d", "origin", server.url(pipeline.remote_root / "ssh-store"))
        project.dvc("remote", "modify", "--local", "origin", "keyfile", str(server.keyfile))
        project.commit("dvc remote: ssh")
        assert "keyfile" not in (project.root / ".dvc/config").read_text()
        project.dvc("push", env=env)

        clone = _clone(pipeline, "clone", server)
        came_with_git = [p for p in OUTPUTS if (clone.root / p).exists()]
        assert not came_with_git, f"outputs must come from the DVC remote, not git: {came_with_git}"
        pull = clone.dvc("pull", env=env)
        missing = [p for p in OUTPUTS if not (clone.root / p).exists()]
        _check(pull, not missing, f"outputs missing after dvc pull in the clone: {missing}")
        _same_outputs(project.root, clone.root)
        status = clone.dvc("status")
        _check(status, UP_TO_DATE in status.output, "the clone should be up to date after dvc pull")
        again = clone.dvc("repro", env=env)
        _check(again, not ran_stages(again.output), "dvc repro after dvc pull must run nothing")
        # The model registry entry (dvc.yaml `artifacts:`): the model alone, straight from the remote. DVC finds an
        # artifact's versions by their git tags (GTO's `<name>@v<semver>`), so registering one is a tag.
        project.git("tag", "-a", "podcast-encoder@v0.1.0", "-m", "podcast-encoder v0.1.0")
        fetched = pipeline.remote_root / "artifact"
        project.dvc("artifacts", "get", str(project.root), "podcast-encoder", "-o", str(fetched),
                    "--remote-config", f"keyfile={server.keyfile}", env=env)
        model = project.root / "models/podcast-encoder"
        assert sorted(p.relative_to(fetched) for p in fetched.rglob("*") if p.is_file()) == sorted(
            p.relative_to(model) for p in model.rglob("*") if p.is_file())
        assert (fetched / "model.safetensors").read_bytes() == (model / "model.safetensors").read_bytes()

        # An index someone built with other params and pushed with its run-cache, but never committed. (DVC restores
        # from the run-cache only stages whose outputs are all cached: index, embed, split, ...; a stage that writes
        # git-tracked metrics such as evaluate reruns.)
        project.set_params({("index", "snippet_chars"): 150})
        built = project.dvc("repro")
        _check(built, "index" in ran_stages(built.output), "index.snippet_chars must rerun index")
        manifest = (project.root / "data/index/manifest.json").read_text()
        project.dvc("push", "--run-cache", env=env)
        project.git("checkout", "--", ".")
        project.dvc("checkout")

        other = _clone(pipeline, "clone-run-cache", server)
        other.dvc("pull", "--run-cache", env=env)
        other.set_params({("index", "snippet_chars"): 150})
        # --pull: the run-cache entry names its outputs; their files come from the remote when restored
        restored = other.dvc("repro", "--pull", env=env)
        _check(restored, "index" not in ran_stages(restored.output) and "Stage 'index' is cached" in restored.output,
               "index should come back from the run-cache, not run")
        assert (other.root / "data/index/manifest.json").read_text() == manifest
    status = project.dvc("status")
    _check(status, UP_TO_DATE in status.output, "main should be back as committed")


# ------------------------------------------------------------------------------------------------------------- 6
TINY_STUDY = {"tiny": {
    "what": "the learning rate, over two seeds", "seeds": [1, 2], "reference": "default",
    "variants": {"default": {"what": "the committed params"},
                 "lr-high": {"what": "ten times the learning rate", "set": {"train.learning_rate": 0.03}}}}}


def _cells(text: str, group: str, metric: str) -> list[str]:
    row = next(line for line in text.splitlines() if line.startswith(f"| {group} |") and f"| {metric} |" in line)
    return [c.strip() for c in row.strip("|").split("|")]


def test_study_queued_run_and_compared(pipeline):
    """A study of two variants x two seeds: the runner queues them with `dvc exp run --queue` and runs the queue;
    the compare command reads each experiment's run file through DVC and averages the seeds per query; the study's
    table comes from the same runs. Starts on main (committed) and leaves it so, with the study committed."""
    project = pipeline.project
    (project.root / "experiments.yaml").write_text(yaml.safe_dump(TINY_STUDY, sort_keys=False))
    project.commit("a study")
    runner = [sys.executable, "-m", "podsearch.experiments"]
    queued = project.run(*runner, "queue", "tiny", "--run")
    names = [f"tiny-{variant}-s{seed}" for variant in ("default", "lr-high") for seed in (1, 2)]
    _check(queued, f"queued 4: {', '.join(names)}" in queued.output, "the runner should queue 2 variants x 2 seeds")

    shown = project.dvc("exp", "show", "--json")
    exps = {e["name"]: e for e in _experiments(json.loads(shown.stdout))}
    _check(shown, set(names) <= set(exps), f"dvc exp show should list {names}, lists {sorted(exps)}")
    for name in names:
        assert lookup(exps[name]["params"], "train.seed")[1] == int(name[-1]), name
        assert lookup(exps[name]["params"], "train.learning_rate")[1] == (0.03 if "lr-high" in name else 3.0e-3)
    again = project.run(*runner, "queue", "tiny")
    _check(again, "queued 0" in again.output, "runs already made from HEAD are not queued again")

    compare = project.run(sys.executable, "-m", "podsearch.compare", "tiny-default-s*", "tiny-lr-high-s*",
                          "--resamples", "200")
    print(f"\n$ python -m podsearch.compare 'tiny-default-s*' 'tiny-lr-high-s*'\n{compare.stdout}")
    _check(compare, "A = tiny-default-s1, tiny-default-s2 (2 runs): finetuned" in compare.stdout, "side A's runs")
    # Side A's Recall@30 by hand: each run file fetched from its experiment's commit, per-query recall averaged
    # over the two seeds, then over the queries.
    from podsearch.curated import split_queries
    from podsearch.metrics import per_query
    from podsearch.runfiles import read_runs

    queries, relevant = split_queries("dev", project.root / "data/curated/queries.yaml",
                                      project.root / "data/curated/judgments.tsv")
    per_seed = []
    for name in names[:2]:
        out = pipeline.remote_root / f"{name}.parquet"
        project.dvc("get", ".", "data/eval/runs/curated.parquet", "--rev", exps[name]["rev"], "-o", str(out))
        runs = read_runs(out, [q.id for q in queries])
        per_seed.append(per_query(runs["finetuned"].ids, relevant, "recall@30"))
    cells = _cells(compare.stdout, "all", "recall@30")
    assert cells[3].startswith(f"{sum(sum(v) for v in per_seed) / (2 * len(queries)):.3f} ["), cells

    table = project.run(*runner, "table", "tiny", "--resamples", "200")
    text = (project.root / "bench/results/tiny_dev.md").read_text()
    _check(table, "| **default** (reference) |" in text and "| lr-high | ten times the learning rate" in text,
           "the study's table should have the reference row and the variant's")
    lr_row = next(line for line in text.splitlines() if line.startswith("| lr-high |"))
    assert "| 1, 2 |" in lr_row, lr_row
    project.git("checkout", "--", ".")  # the table is not committed here


# ------------------------------------------------------------------------------------------------------------- 7
def _experiments(rows: list[dict]) -> list[dict]:
    """Flatten `dvc exp show --json` rows into {name, rev, params, metrics} for each experiment."""
    found = []
    for row in rows:
        for exp in row.get("experiments") or []:
            for rev in exp.get("revs") or []:
                data = rev.get("data") or {}
                found.append({
                    "name": rev.get("name") or exp.get("name"), "rev": rev.get("rev"),
                    "params": ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {},
                    "metrics": {f: (v or {}).get("data") or {} for f, v in (data.get("metrics") or {}).items()},
                })
    return found


def test_exp_run_and_show(pipeline):
    """`dvc exp run -S train.learning_rate=0.001` reruns train and what depends on it; `dvc exp show` lists that
    experiment with its param and metrics. Runs last: the workspace keeps the experiment's params."""
    project = pipeline.project
    result = project.dvc("exp", "run", "-S", "train.learning_rate=0.001")
    ran = ran_stages(result.output)
    reruns = {"train", "export_finetuned", "embed_finetuned", "check_int8", "evaluate", "index", "report"}
    _check(result, set(ran) == reruns, f"a train param should rerun {sorted(reruns)}; ran {ran}")

    shown = project.dvc("exp", "show", "--json")
    exps = _experiments(json.loads(shown.stdout))
    mine = [e for e in exps if lookup(e["params"], "train.learning_rate")[1] == 0.001]
    _check(shown, len(mine) == 1, f"exactly one experiment with train.learning_rate 0.001, found {exps}")
    metrics = mine[0]["metrics"]
    assert "inbatch_mrr@5_after" in metrics.get("metrics/train.json", {}), metrics
    assert "recall@30" in metrics.get("metrics/eval.json", {}).get("synthetic", {}).get("finetuned", {}), metrics
    # the Trainer's own numbers, through DVCLive
    live = metrics.get("dvclive/metrics.json", {})
    assert live.get("step", 0) > 0 and "loss" in live.get("train", {}), metrics
    keep = "Experiment|train.learning_rate|inbatch_mrr@5_after|curated_dev.shipped.mrr@30|synthetic.finetuned.mrr@30"
    table = project.dvc("exp", "show", "--no-pager", "--md", "--drop", ".*", "--keep", keep)
    print(f"\n$ dvc exp show --md --drop '.*' --keep '{keep}'\n{table.stdout}")
    _check(table, "train.learning_rate" in table.stdout and "0.001" in table.stdout, "param column missing")
    _check(table, mine[0]["name"] in table.stdout, "the experiment's name should appear in dvc exp show")
    print("timings:", pipeline.timings)
