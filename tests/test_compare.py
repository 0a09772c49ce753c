"""The compare command and the experiments runner on tiny data: seed means per query, the gap share, the groups,
run-file errors, finding runs by name, and the studies file. The whole loop through `dvc exp` runs in
tests/test_pipeline_e2e.py::test_study_queued_run_and_compared."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from podsearch.compare import Curated, Side, compare, render
from podsearch.curated import CuratedQuery, language_groups
from podsearch.experiments import (
    Experiment,
    ExperimentError,
    list_experiments,
    load_studies,
    override,
    queue_command,
    resolve,
)
from podsearch.metrics import per_query
from podsearch.runfiles import Run, RunFileError, read_runs, runs_frame
from podsearch.stats import bootstrap_ci, paired_randomization_test

QUERIES = [CuratedQuery("q1", "a", "keyword", "en", "dev"), CuratedQuery("q2", "b", "keyword", "de", "dev"),
           CuratedQuery("q3", "c", "keyword", "fr", "dev"), CuratedQuery("q4", "d", "question", "en", "dev")]
RELEVANT = [{"e1"}, {"e2"}, {"e3"}, {"e4"}]
LANGUAGES = {"e1": "English", "e2": "German", "e3": "English", "e4": "English"}


def curated() -> Curated:
    groups = {"all": np.ones(4, bool), **{k: np.asarray(v) for k, v in
                                         language_groups(QUERIES, RELEVANT, LANGUAGES).items()}}
    return Curated("dev", QUERIES, RELEVANT, groups)


def ranking(first: list[int]) -> Run:
    """Rank position of each query's relevant episode (1-based; 0: not retrieved), among filler episodes."""
    ids = []
    for q, rank in enumerate(first):
        row = [f"x{q}{i}" for i in range(5)]
        if rank:
            row.insert(rank - 1, f"e{q + 1}")
        ids.append(row)
    return Run(ids, [[1.0 - 0.1 * i for i in range(len(r))] for r in ids])


def side(name: str, *seeds: list[int], base=(2, 0, 0, 1), teacher=(1, 1, 1, 1)) -> Side:
    runs = [{"finetuned": ranking(ranks), "base": ranking(list(base)), "teacher": ranking(list(teacher))}
            for ranks in seeds]
    return Side(name, "finetuned", [Experiment(f"{name}-s{i}", None) for i in range(len(seeds))], runs)


def test_language_groups_split_non_english_queries_by_their_episodes():
    groups = language_groups(QUERIES, RELEVANT, LANGUAGES)
    assert groups == {"English": [True, False, False, True], "same-language": [False, True, False, False],
                      "cross-lingual": [False, False, True, False]}


def test_a_sides_metric_is_each_querys_mean_over_its_runs():
    two = side("a", [1, 2, 0, 4], [2, 2, 1, 0])
    mrr = two.values(curated(), "mrr@30")
    np.testing.assert_allclose(mrr, [(1 + 0.5) / 2, 0.5, (0 + 1) / 2, (0.25 + 0) / 2])
    by_hand = np.mean([per_query(r["finetuned"].ids, RELEVANT, "recall@10") for r in two.runs], axis=0)
    np.testing.assert_array_equal(two.values(curated(), "recall@10"), by_hand)


def test_gap_closed_is_the_share_of_the_teachers_lead_over_base():
    # base RR (0.5, 0, 0, 1), teacher 1 everywhere: lead 0.5 + 1 + 1 + 0 = 2.5
    half = side("a", [1, 2, 0, 1])  # gains 0.5 + 0.5 + 0 + 0 = 1.0 over base
    assert half.gap_closed(curated(), np.ones(4, bool)) == pytest.approx(1.0 / 2.5)
    english = curated().groups["English"]
    assert half.gap_closed(curated(), english) == pytest.approx(0.5 / 0.5)
    level = side("a", [1, 1, 1, 1], teacher=(2, 0, 0, 1))  # no lead to close
    assert level.gap_closed(curated(), np.ones(4, bool)) is None


def test_compare_rows_are_the_paired_test_and_bootstrap_of_the_seed_means():
    a, b = side("a", [2, 0, 0, 1], [3, 0, 0, 1]), side("b", [1, 1, 0, 1], [1, 2, 1, 1])
    rows = compare(a, b, curated(), seed=3, resamples=500)
    row = next(r for r in rows if r["group"] == "all" and r["metric"] == "mrr@30")
    va, vb = a.values(curated(), "mrr@30"), b.values(curated(), "mrr@30")
    assert row["difference"] == pytest.approx(vb.mean() - va.mean())
    assert row["p_value"] == paired_randomization_test(vb, va, 3, 500)
    assert row["b_ci"] == bootstrap_ci(vb, 3, 500)
    assert (row["wins"], row["losses"]) == (3, 0)
    assert {r["group"] for r in rows} == {"all", "English", "same-language", "cross-lingual"}
    text = render(a, b, curated(), rows)
    assert "A = a-s0, a-s1 (2 runs): finetuned" in text and "| all | 4 | mrr@30 |" in text
    assert "Share of the teacher's mrr@30 lead" in text


def test_run_files_round_trip_and_name_their_faults(tmp_path):
    runs = {"finetuned": ranking([1, 0, 2, 1]), "base": ranking([0, 0, 1, 3])}
    path = tmp_path / "curated.parquet"
    runs_frame([q.id for q in QUERIES], runs).to_parquet(path)
    back = read_runs(path, [q.id for q in QUERIES])
    assert back["finetuned"].ids == runs["finetuned"].ids and back["base"].ids == runs["base"].ids
    pd.DataFrame({"system": ["x"], "query_id": ["q1"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(RunFileError, match=r"bad.parquet: run file without column\(s\) episode_id, rank, score"):
        read_runs(tmp_path / "bad.parquet", ["q1"])


def git(root, *args):
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def test_runs_are_found_by_experiment_name_glob_rev_or_workspace(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "f").write_text("x")
    git(tmp_path, "add", "f")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q", "-m", "one")
    head = git(tmp_path, "rev-parse", "HEAD")
    for name in ("kl-s42", "kl-s43", "other-s42"):  # how DVC keeps experiments: refs/exps/<baseline>/<name>
        git(tmp_path, "update-ref", f"refs/exps/{head[:2]}/{head[2:]}/{name}", head)
    assert sorted(e.name for e in list_experiments(tmp_path)) == ["kl-s42", "kl-s43", "other-s42"]
    assert [e.name for e in resolve("kl-s*", tmp_path)] == ["kl-s42", "kl-s43"]
    assert all(e.baseline == head for e in resolve("kl-s*", tmp_path))
    assert resolve("workspace,HEAD", tmp_path) == [Experiment("workspace", None), Experiment("HEAD", head)]
    with pytest.raises(ExperimentError, match=r"'nope' is no experiment, git rev or `workspace`; experiments: kl-s42"):
        resolve("nope", tmp_path)


def test_studies_file_is_checked(tmp_path):
    path = tmp_path / "experiments.yaml"
    path.write_text("s:\n  what: w\n  seeds: [1, 2]\n  variants:\n    default: {what: d}\n"
                    "    lr: {what: l, set: {train.learning_rate: 0.01}}\n")
    study = load_studies(path)["s"]
    assert study.reference == "default" and study.seeds == [1, 2] and study.run_name("lr", 2) == "s-lr-s2"
    assert study.variants["lr"].set == {"train.learning_rate": 0.01} and study.runs("lr") == "s-lr-s*"
    path.write_text("s:\n  variants:\n    v: {set: {train.seed: 3}}\n")
    with pytest.raises(ExperimentError, match=r"s.variants.v.set: expected .* without train.seed"):
        load_studies(path)
    path.write_text("s:\n  reference: x\n  variants:\n    v: {}\n")
    with pytest.raises(ExperimentError, match=r"s.reference: 'x' is not one of its variants"):
        load_studies(path)
    with pytest.raises(ExperimentError, match="missing.yaml: not found"):
        load_studies(tmp_path / "missing.yaml")


def test_queue_commands_set_each_param_and_the_seed():
    command = queue_command("s-kl-s43", {"train.loss": "kldiv", "train.max_teacher_rank": None,
                                         "prepare.languages": [], "x.flag": True}, 43)
    assert command[:3] == [sys.executable, "-m", "dvc"] and command[3:7] == ["exp", "run", "--queue", "-n"]
    sets = [command[i + 1] for i, c in enumerate(command) if c == "-S"]
    assert sets == ["train.loss=kldiv", "train.max_teacher_rank=null", "prepare.languages=[]", "x.flag=true",
                    "train.seed=43"]
    assert override("fusion.teacher.weights.e5", 0.0) == "fusion.teacher.weights.e5=0.0"
