"""Fine-tuning variants x training seeds, each scored on the curated queries: the evidence behind params.yaml `train`.

    python -m bench.distill_sweep run margin1 kl4 --seeds 42 43 44   # train + search, one run file per seed
    python -m bench.distill_sweep collect                             # dev table -> bench/results/distillation.md
    python -m bench.distill_sweep collect --split test --out ...      # once, for the chosen variant

run: for each variant and seed, the train stage (stages/train.py, the committed pipeline's inputs: pseudo-labels,
eval split, prepared episodes) in a scratch folder whose params.yaml is this checkout's with the variant's `train`
keys and the seed overridden. The fine-tune then encodes every prepared episode (embed.max_seq_length, as the
embed stage) and searches the curated queries exactly as evaluate's exact index does. Its top `fusion.depth`
(enough to fuse it with other systems later) go to bench/results/distill/<variant>-s<seed>.parquet as system
`finetuned`, its train metrics and timings to <variant>-s<seed>.json. The committed run's base and the teacher
(fusion.teacher over the committed run's base, use and bm25) are written beside them once, so every comparison
here reads only files in that folder.

collect: each variant's per-query metric is its mean over its seeds (bench/compare_runs.py's rule), tested against
base with the paired randomization test; `gap closed` is the share of the teacher's MRR@30 lead over base the
variant recovers, over all queries / the English ones / the others (24% of dev: queries for the few non-English
episodes, and queries in another language than their episode's, which the teacher finds through USE). Choices are
made on dev; --split test is read once, for the chosen variant.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench.compare_runs import curated_split, mean_per_query, side
from podsearch.curated import load_judgments, load_queries
from podsearch.data import load_prepared
from podsearch.report import runs_from_frame
from podsearch.retrieval.fusion import Fusion
from podsearch.stats import paired_randomization_test

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "distill"
CURATED = ROOT / "data" / "curated"
# name: (train keys overridden, what it tests). Every variant costs about the same CPU time (~5-6 min here): a
# distillation example encodes 2 + negatives texts, an MNRL pair 2, so more negatives means fewer pairs.
VARIANTS: dict[str, tuple[dict, str]] = {
    "mnrl": ({"loss": "mnrl", "batch_size": 64, "learning_rate": 1.0e-4, "max_train_pairs": 3072},
             "the previous default: MultipleNegativesRankingLoss on the generated pairs"),
    "margin1": ({"loss": "margin_mse", "distill_negatives": 1, "batch_size": 32, "learning_rate": 5.0e-5,
                 "max_train_pairs": 2048}, "MarginMSE on the teacher's margins, 1 mined negative"),
    "kl4": ({"loss": "kldiv", "distill_negatives": 4, "batch_size": 32, "learning_rate": 5.0e-5,
             "max_train_pairs": 1024}, "KL divergence to the teacher over the positive and 4 mined negatives"),
    "margin4": ({"loss": "margin_mse", "distill_negatives": 4, "batch_size": 32, "learning_rate": 5.0e-5,
                 "max_train_pairs": 1024}, "MarginMSE, 4 mined negatives"),
    "margin1-len64": ({"loss": "margin_mse", "distill_negatives": 1, "batch_size": 32, "learning_rate": 5.0e-5,
                       "max_train_pairs": 4096, "max_seq_length": 64},
                      "margin1 on texts cut to 64 tokens in training, which buys twice the pairs"),
    "len64-lr1e4": ({"loss": "margin_mse", "distill_negatives": 1, "batch_size": 32, "learning_rate": 1.0e-4,
                     "max_train_pairs": 4096, "max_seq_length": 64}, "margin1-len64 at twice the learning rate"),
    "len64-lr2e5": ({"loss": "margin_mse", "distill_negatives": 1, "batch_size": 32, "learning_rate": 2.0e-5,
                     "max_train_pairs": 4096, "max_seq_length": 64}, "margin1-len64 at GPL's learning rate"),
    "len64-margin4": ({"loss": "margin_mse", "distill_negatives": 4, "batch_size": 32, "learning_rate": 5.0e-5,
                       "max_train_pairs": 2048, "max_seq_length": 64}, "margin1-len64 with 4 mined negatives"),
    "len64-margin4-2ep": ({"loss": "margin_mse", "distill_negatives": 4, "batch_size": 32, "learning_rate": 5.0e-5,
                           "max_train_pairs": 2048, "max_seq_length": 64, "epochs": 2},
                          "len64-margin4 for two epochs: do more steps help? (twice the CPU time)"),
    "len64-kl4": ({"loss": "kldiv", "distill_negatives": 4, "batch_size": 32, "learning_rate": 5.0e-5,
                   "max_train_pairs": 2048, "max_seq_length": 64},
                  "len64-margin4 with the listwise KL loss instead of MarginMSE"),
    "len64-margin4-bs16": ({"loss": "margin_mse", "distill_negatives": 4, "batch_size": 16, "learning_rate": 5.0e-5,
                            "max_train_pairs": 2048, "max_seq_length": 64},
                           "len64-margin4 in batches of 16: twice the optimizer steps for the same pairs"),
    "len64-margin4-freeze3": ({"loss": "margin_mse", "distill_negatives": 4, "batch_size": 32, "learning_rate": 5.0e-5,
                               "max_train_pairs": 3328, "max_seq_length": 64, "freeze_layers": 3},
                              "len64-margin4 with the embeddings and bottom 3 of 6 layers frozen, on 3,328 pairs: "
                              "1.6x the pairs/s in a forward-backward probe, 1.4x in training (so 17% more minutes)"),
    "len64-margin4-langs": ({"loss": "margin_mse", "distill_negatives": 4, "batch_size": 32, "learning_rate": 5.0e-5,
                             "max_train_pairs": 2048, "max_seq_length": 64, "other_languages_first": True},
                            "len64-margin4 with every pair of a non-English episode in the 2,048 (159 instead of 30): "
                            "do the 13 same-language non-English dev queries gain?"),
    "len64-margin4-mix": ({"loss": "margin_mse", "distill_negatives": 4, "batch_size": 32, "learning_rate": 5.0e-5,
                           "max_train_pairs": 2048, "max_seq_length": 64},
                          "len64-margin4 on keyword queries and one pseudo query (title or sentence) per episode: "
                          "longer, more sentence-like training queries (`querygen.mix` keyword 3, pseudo 1)"),
    "margin1-rank10": ({"loss": "margin_mse", "distill_negatives": 1, "batch_size": 32, "learning_rate": 5.0e-5,
                        "max_train_pairs": 2048, "max_teacher_rank": 10},
                       "margin1 on the pairs whose positive the teacher ranks in its top 10 (GPL denoising)"),
}
# Variants trained on other queries: querygen.mix overridden. generate_queries, split and pseudolabel run again, once
# per variant and `run` call (they do not depend on train.seed), and train reads their outputs, not the committed ones.
QUERY_MIXES: dict[str, dict[str, int]] = {
    "len64-margin4-mix": {"keyword": 3, "pseudo": 1},
}
METRICS = ("recall@10", "mrr@30")
# Today's shipped system before distillation: the committed run of 1e9f7fc (seed 42 of keyword_vs_pseudo.md's runs,
# the same rankings: test MRR@30 0.849, Recall@10 0.763)
SHIPPED_TODAY = str(ROOT / "bench/results/generator_seeds/keyword-s42.parquet") + ":shipped"
TODAY_LABEL = "bench/results/generator_seeds/keyword-s42.parquet:shipped"


def _params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def reference_runs(curated_runs: Path) -> None:
    """base, use, bm25 and teacher .parquet from the evaluate stage's curated run file: the zero-shot systems do not
    change with the fine-tune, so every variant is compared with the same rankings evaluate wrote."""
    frame = pd.read_parquet(curated_runs)
    OUT.mkdir(parents=True, exist_ok=True)
    for system in ("base", "use", "bm25", "teacher"):
        part = frame[frame["system"] == system].sort_values(["query_id", "rank"])
        if part.empty:
            raise SystemExit(f"{curated_runs}: no system {system!r}; run the evaluate stage with fusion.teacher")
        part.astype({"system": str}).to_parquet(OUT / f"{system}.parquet", index=False)


def lead(teacher: list, runs: list, relevant: list[set[str]], subset) -> float:
    """The teacher's MRR@30 lead over `runs` (seed means per query), summed over the queries in `subset`."""
    rel_in = [r for r, k in zip(relevant, subset) if k]
    high, mine = (mean_per_query(r, list(subset), rel_in, "mrr@30") for r in (teacher, runs))
    return float((high - mine).sum())


def gap_closed(base: list, runs: list, teacher: list, relevant: list[set[str]], subset) -> float:
    """(runs - base) / (teacher - base) on MRR@30 over the queries in `subset`: the share of the teacher's lead over
    base that `runs` recovers."""
    return 1 - lead(teacher, runs, relevant, subset) / lead(teacher, base, relevant, subset)


def _write_run(path: Path, system: str, query_ids: list[str], run) -> None:
    rows = [(system, q, e, rank, s) for q, ids, scores in zip(query_ids, run.ids, run.scores)
            for rank, (e, s) in enumerate(zip(ids, scores), start=1)]
    frame = pd.DataFrame(rows, columns=["system", "query_id", "episode_id", "rank", "score"])
    frame.astype({"rank": "int32", "score": "float32"}).to_parquet(path, index=False)


def upstream(variant: str, params: dict, env: dict, folder: Path) -> tuple[Path, Path]:
    """(pseudo-labels, eval split) for `variant`'s query mix: generate_queries, split and pseudolabel as dvc.yaml
    runs them, in `folder`. They read no train key but train.base_model, so the seeds of one `run` share them."""
    done = folder / "pseudolabels.parquet"
    if done.exists():
        return done, folder / "splits/eval.parquet"
    folder.mkdir(parents=True, exist_ok=True)
    mix = {**params["querygen"]["mix"], **QUERY_MIXES[variant]}
    (folder / "params.yaml").write_text(yaml.safe_dump({**params, "querygen": {**params["querygen"], "mix": mix}},
                                                       sort_keys=False))
    data = ROOT / "data"
    for stage, arguments in (
        ("generate_queries", ["--episodes", data / "prepared/episodes.parquet",
                              "--vectors", data / "embeddings/base.npy", "--out", "pairs.parquet", "--shards", "shards",
                              "--stats", "querygen.json", "--timings", "querygen-timings.json"]),
        ("split", ["--pairs", "pairs.parquet", "--episodes", data / "prepared/episodes.parquet", "--out-dir", "splits",
                   "--stats", "split.json"]),
        ("pseudolabel", ["--train", "splits/train.parquet", "--episodes", data / "prepared/episodes.parquet",
                         "--embeddings", data / "embeddings", "--out", "pseudolabels.parquet",
                         "--stats", "pseudolabel.json"]),
    ):
        subprocess.run([sys.executable, "-m", f"stages.{stage}", *map(str, arguments)], cwd=folder, check=True, env=env)
    return done, folder / "splits/eval.parquet"


def search_curated(model, name: str) -> tuple[list[str], object, float]:
    """(query ids, run, seconds): `model` encodes every prepared episode as the embed stage does
    (embed.max_seq_length) and searches the curated queries as evaluate's exact index does, top fusion.depth."""
    from podsearch.embeddings import encode_texts
    from podsearch.evaluation import Corpus, DenseModel, Runner, curated_query_set

    params = _params()
    model.max_seq_length = int(params["embed"]["max_seq_length"])
    episodes = load_prepared(ROOT / "data/prepared/episodes.parquet")
    corpus = Corpus(episodes["episode_id"].tolist(), episodes["text"].tolist())
    started = time.perf_counter()
    matrix = encode_texts(model, corpus.texts, int(params["embed"]["batch_size"]), desc=f"{name} episodes")
    queries = load_queries(CURATED / "queries.yaml")
    query_set = curated_query_set(queries, load_judgments(CURATED / "judgments.tsv", {q.id for q in queries}))
    run = Runner(depth=int(params["fusion"]["depth"])).dense(
        "finetuned", DenseModel(corpus.ids, matrix, model), corpus, query_set)
    return query_set.ids, run, time.perf_counter() - started


def train_and_search(variant: str, seed: int, upstream_dir: Path) -> dict:
    """One training run of `variant` with `seed`, scored on the curated queries; returns its record."""
    from sentence_transformers import SentenceTransformer

    overrides, _ = VARIANTS[variant]
    params = _params()
    params["train"].update(overrides, seed=seed)
    name = f"{variant}-s{seed}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    labels, eval_split = ROOT / "data/pseudolabels/train.parquet", ROOT / "data/splits/eval.parquet"
    if variant in QUERY_MIXES:
        labels, eval_split = upstream(variant, params, env, upstream_dir / variant)
    with tempfile.TemporaryDirectory(prefix=f"distill-{name}-") as tmp:
        (Path(tmp) / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stages.train",
                        "--train", str(labels),
                        "--eval", str(eval_split),
                        "--episodes", str(ROOT / "data/prepared/episodes.parquet"),
                        "--episode-vectors", str(ROOT / "data/embeddings/base.npy"),
                        "--out", "model", "--metrics", "metrics.json", "--stats", "stats.json",
                        "--timings", "timings.json", "--live", "dvclive"],
                       cwd=tmp, check=True, env=env)
        train_s = time.perf_counter() - started
        record = {"variant": variant, "seed": seed, "train": overrides,
                  **({"querygen.mix": QUERY_MIXES[variant]} if variant in QUERY_MIXES else {}),
                  "metrics": json.loads((Path(tmp) / "metrics.json").read_text()),
                  "timings": json.loads((Path(tmp) / "timings.json").read_text()),
                  "steps": json.loads((Path(tmp) / "stats.json").read_text())["steps"]}
        query_ids, run, seconds = search_curated(SentenceTransformer(str(Path(tmp) / "model"), device="cpu"), name)
        record["search_seconds"] = round(seconds, 1)
        record["train_stage_seconds"] = round(train_s, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    _write_run(OUT / f"{name}.parquet", "finetuned", query_ids, run)
    (OUT / f"{name}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def cmd_run(args) -> None:
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if not (OUT / "teacher.parquet").exists():
        reference_runs(Path(args.reference))
    with tempfile.TemporaryDirectory(prefix="distill-upstream-") as upstream_dir:
        for variant in args.variants:
            for seed in args.seeds:
                if (OUT / f"{variant}-s{seed}.parquet").exists() and not args.force:
                    print(f"{variant}-s{seed}: done already (--force reruns it)")
                    continue
                record = train_and_search(variant, seed, Path(upstream_dir))
                print(f"{variant}-s{seed}: in-batch MRR@5 {record['metrics']}, train {record['train_stage_seconds']} "
                      f"s, search {record['search_seconds']} s", flush=True)


def fused(weights: dict[str, float], paths: list[Path], query_ids: list[str]) -> list:
    """Score fusion (params.yaml's rrf_k and depth) of `weights`' systems with each run file's fine-tune in it, top 30
    per query; the zero-shot parts come from OUT."""
    params = _params()
    fusion = Fusion(weights=weights, method="score", rrf_k=params["fusion"]["rrf_k"], depth=params["fusion"]["depth"])
    parts = {p: runs_from_frame(pd.read_parquet(OUT / f"{p}.parquet"), query_ids)[p]
             for p in fusion.parts if p != "finetuned"}
    rankings = []
    for path in paths:
        runs = {**parts, "finetuned": runs_from_frame(pd.read_parquet(path), query_ids)["finetuned"]}
        rankings.append(fusion.fuse({p: (runs[p].scores, runs[p].ids) for p in fusion.parts}, 30)[1])
    return rankings


def shipped_with(paths: list[Path], query_ids: list[str]) -> list:
    """params.yaml's shipped fusion (a score fusion) with each run file's fine-tune in it."""
    shipped = _params()["fusion"]["shipped"]
    if shipped["method"] != "score":
        raise SystemExit("fusion.shipped is not a score fusion; extend `fused` before comparing with it")
    return fused(dict(shipped["weights"]), paths, query_ids)


CANDIDATES = {  # lighter shipped systems first: each part is a model to load per search command
    "finetuned": {"finetuned": 1.0},
    "score(finetuned, use)": {"finetuned": 1.0, "use": 1.0},
    "score(finetuned, bm25)": {"finetuned": 1.0, "bm25": 1.0},
    "score(finetuned, use, bm25)": {"finetuned": 1.0, "use": 1.0, "bm25": 1.0},
}


def cmd_systems(args) -> None:
    """The shipped system chosen again: each candidate built on `variant`'s fine-tune (seed means) against today's
    shipped system, over all queries of the split and the non-English ones (where USE must stay in or be matched)."""
    chosen, rel = curated_split(args.split, CURATED / "queries.yaml", CURATED / "judgments.tsv")
    ids = [q.id for q in chosen]
    other = [not q.english for q in chosen]
    paths = sorted(OUT.glob(f"{args.variant}-s*.parquet"))
    if not paths:
        raise SystemExit(f"no run files for {args.variant} in {OUT}")
    today = side(SHIPPED_TODAY, ids)
    lines = [
        f"# The shipped system chosen again, on the curated {args.split} queries",
        "",
        f"Written by `python -m bench.distill_sweep systems {args.variant} --split {args.split}`: each candidate "
        f"built on the `{args.variant}` fine-tune ({len(paths)} training seeds; per-query metric = the mean over "
        f"them), score fusion as params.yaml's `fusion` does it, against today's shipped system ({TODAY_LABEL}, "
        f"score fusion of the MNRL fine-tune, USE and BM25). {len(chosen)} queries, {sum(other)} not English. p: "
        "paired randomization test, 10,000 resamples.",
        "",
        "| system | parts | Recall@10 (p) | MRR@30 (p) | not English Recall@10 (p) | not English MRR@30 (p) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, weights in CANDIDATES.items():
        rankings = fused(weights, paths, ids)
        cells = []
        for subset in ([True] * len(chosen), other):
            for metric in METRICS:
                mine = mean_per_query(rankings, subset, [r for r, k in zip(rel, subset) if k], metric)
                theirs = mean_per_query(today, subset, [r for r, k in zip(rel, subset) if k], metric)
                cells.append(f"{mine.mean():.3f} ({paired_randomization_test(mine, theirs, seed=0):.3f})")
        lines.append(f"| {name} | {len(weights)} | " + " | ".join(cells) + " |")
    today_cells = [f"{mean_per_query(today, s, [r for r, k in zip(rel, s) if k], m).mean():.3f}"
                   for s in ([True] * len(chosen), other) for m in METRICS]
    lines.append("| today's shipped | 3 | " + " | ".join(today_cells) + " |")
    text = "\n".join(lines) + "\n"
    out = Path(args.out or ROOT / "bench/results" / f"distillation_systems_{args.split}.md")
    out.write_text(text)
    print(text)


def cmd_collect(args) -> None:
    chosen, rel = curated_split(args.split, CURATED / "queries.yaml", CURATED / "judgments.tsv")
    ids = [q.id for q in chosen]
    english = np.array([q.english for q in chosen])
    keep = [True] * len(chosen)
    base = side(f"{OUT / 'base.parquet'}:base", ids)
    teacher = side(f"{OUT / 'teacher.parquet'}:teacher", ids)
    ref = {m: mean_per_query(base, keep, rel, m) for m in METRICS}

    today = {m: mean_per_query(side(SHIPPED_TODAY, ids), keep, rel, m) for m in METRICS}
    top = {m: mean_per_query(teacher, keep, rel, m) for m in METRICS}
    lines = [
        f"# Fine-tuning variants on the curated {args.split} queries, seed means",
        "",
        f"Written by `python -m bench.distill_sweep collect --split {args.split}` from the run files in "
        f"bench/results/distill/ ({len(chosen)} {args.split} queries, {int(english.sum())} English). Each variant's "
        "per-query metric is its mean over the seeds listed; p: paired randomization test against base (10,000 "
        "resamples); gap closed: (variant - base) / (teacher - base) on MRR@30, over all queries / the English ones / "
        "the others. base and teacher are the committed "
        f"run's; teacher = fusion.teacher ({_params()['fusion']['teacher']}).",
        "",
        f"base: Recall@10 {ref['recall@10'].mean():.3f}, MRR@30 {ref['mrr@30'].mean():.3f}; "
        f"teacher: Recall@10 {top['recall@10'].mean():.3f}, MRR@30 {top['mrr@30'].mean():.3f}.",
        "",
        f"Shipped: params.yaml's `fusion.shipped` ({_params()['fusion']['shipped']['method']} fusion of "
        f"{', '.join(_params()['fusion']['shipped']['weights'])}) with the variant's fine-tune in it, against today's "
        f"shipped system ({TODAY_LABEL}: the committed run before distillation, MNRL fine-tune); today's: Recall@10 "
        f"{today['recall@10'].mean():.3f}, MRR@30 {today['mrr@30'].mean():.3f}.",
        "",
        "| variant | what it tests | seeds | train s/run | Recall@10 (p) | MRR@30 (p) | gap closed: all / English / "
        "other | English Recall@10 (p) | English MRR@30 (p) | shipped Recall@10 (p) | shipped MRR@30 (p) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, (overrides, what) in VARIANTS.items():
        records = [json.loads(p.read_text()) for p in sorted(OUT.glob(f"{variant}-s*.json"))]
        if not records:
            continue
        runs = side(f"{OUT}/{variant}-s*.parquet:finetuned", ids)
        cells = []
        for subset in (np.ones(len(chosen), bool), english):
            for metric in METRICS:
                mine = mean_per_query(runs, list(subset), [r for r, k in zip(rel, subset) if k], metric)
                theirs = ref[metric][subset]
                p = paired_randomization_test(mine, theirs, seed=0)
                cells.append(f"{mine.mean():.3f} ({p:.3f})")
            if subset is not english:
                cells.append(" / ".join(f"{gap_closed(base, runs, teacher, rel, part):.0%}" for part in (keep, english, ~english)))
        with_it = shipped_with(sorted(OUT.glob(f"{variant}-s*.parquet")), ids)
        for metric in METRICS:
            mine = mean_per_query(with_it, keep, rel, metric)
            cells.append(f"{mine.mean():.3f} ({paired_randomization_test(mine, today[metric], seed=0):.3f})")
        seconds = np.mean([r["train_stage_seconds"] for r in records])
        seeds = ", ".join(str(r["seed"]) for r in records)
        overridden = ", ".join(f"`{k}={v}`" for k, v in overrides.items())
        lines.append(f"| {variant} | {what} ({overridden}) | {seeds} | {seconds:.0f} | " + " | ".join(cells) + " |")
    train = _params()["train"]
    default = next((v for v, (o, _) in VARIANTS.items() if v not in QUERY_MIXES and list(OUT.glob(f"{v}-s*.json"))
                    and all(train.get(k) == value for k, value in o.items())), None)
    if default is not None:
        # The teacher's lead left over, summed over queries, per group. A non-English query is cross-lingual when
        # every episode judged relevant to it is English: the teacher finds those through USE, and an English-only
        # student has no training pair that crosses languages.
        languages = load_prepared(ROOT / "data/prepared/episodes.parquet").set_index("episode_id")["language"]
        cross = np.array([not q.english and all(languages.get(e) == "English" for e in r)
                          for q, r in zip(chosen, rel)])
        groups = {"English": english, "same-language, not English": ~english & ~cross, "cross-lingual": cross}
        runs = side(f"{OUT}/{default}-s*.parquet:finetuned", ids)
        to_base = {label: lead(teacher, base, rel, subset) for label, subset in groups.items()}
        left = {label: lead(teacher, runs, rel, subset) for label, subset in groups.items()}
        lines += ["", f"Where the gap left by `{default}` (params.yaml's `train`) lies: the teacher's MRR@30 lead over "
                  "base and over the fine-tune, summed over queries, per group.", "",
                  "| queries | n | teacher - base | teacher - fine-tune | gap closed | share of what is left |",
                  "|---|---:|---:|---:|---:|---:|"]
        for label, subset in groups.items():
            lines.append(f"| {label} | {int(subset.sum())} | {to_base[label]:.2f} | {left[label]:.2f} | "
                         f"{1 - left[label] / to_base[label]:.0%} | {left[label] / sum(left.values()):.0%} |")
        # 60% of the whole lead closed leaves 40% of it; what the cross-lingual queries keep comes off that first
        rest = [label for label in groups if label != "cross-lingual"]
        needed = 1 - (0.4 * sum(to_base.values()) - left["cross-lingual"]) / sum(to_base[g] for g in rest)
        now = 1 - sum(left[g] for g in rest) / sum(to_base[g] for g in rest)
        lines += ["", f"With the cross-lingual queries where they are, closing 60% of the whole lead needs the other "
                  f"{int((~cross).sum())} queries to close {needed:.0%} of theirs (now {now:.0%})."]
    missing = [v for v in VARIANTS if not list(OUT.glob(f"{v}-s*.json"))]
    if missing:
        lines += ["", "Defined in bench/distill_sweep.py, not run yet: " + ", ".join(f"`{v}`" for v in missing)]
    text = "\n".join(lines) + "\n"
    out = Path(args.out or ROOT / "bench/results" / f"distillation_{args.split}.md")
    out.write_text(text)
    print(text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("variants", nargs="+")
    run.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    run.add_argument("--force", action="store_true")
    run.add_argument("--reference", default=str(ROOT / "data/eval/runs/curated.parquet"),
                     help="the evaluate stage's curated run file holding base, use and bm25")
    collect = sub.add_parser("collect")
    collect.add_argument("--split", default="dev", choices=("dev", "test"))
    collect.add_argument("--out", default=None)
    systems = sub.add_parser("systems")
    systems.add_argument("variant")
    systems.add_argument("--split", default="dev", choices=("dev", "test"))
    systems.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    {"run": cmd_run, "collect": cmd_collect, "systems": cmd_systems}[args.command](args)


if __name__ == "__main__":
    main()
