"""Compare two systems' curated rankings with a paired significance test, across experiments or within one run.

Each side is RUNFILE:SYSTEM (a curated run file written by the evaluate stage, and a system in it). To compare two
experiments, fetch their run files first, e.g.

    dvc get . data/eval/runs/curated.parquet --rev <experiment or branch> -o /tmp/exp-a.parquet
    python bench/compare_runs.py /tmp/exp-a.parquet:finetuned data/eval/runs/curated.parquet:finetuned --split dev

A side may be several comma-separated RUNFILE:SYSTEM, or a RUNFILE glob ("runs/keyword-s*.parquet:shipped"), e.g.
the same experiment trained with different seeds: each query's metric is then the mean over those runs, so the test
compares the two recipes rather than two single training runs (one run's luck moves a fine-tune's test MRR@30 by up
to 0.036 on this data: bench/results/keyword_vs_pseudo.md).

Prints both sides' means and B - A with the paired randomization test's p-value (10,000 resamples) on Recall@10,
Recall@30 and MRR@30, over the queries of the chosen split (and per style / English or not with --subsets).
"""
from __future__ import annotations

import argparse
import glob
from pathlib import Path

import numpy as np
import pandas as pd

from podsearch.curated import load_judgments, load_queries, relevant_sets
from podsearch.evaluation import HEADLINE
from podsearch.metrics import per_query
from podsearch.report import runs_from_frame
from podsearch.stats import paired_randomization_test


def side(specs: str, query_ids: list[str]) -> list:
    """The rankings of every RUNFILE:SYSTEM in the comma-separated `specs` (a RUNFILE may be a glob)."""
    rankings = []
    for spec in specs.split(","):
        pattern, _, system = spec.rpartition(":")
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not paths:
            raise SystemExit(f"{pattern}: no run file matches")
        for path in paths:
            runs = runs_from_frame(pd.read_parquet(path), query_ids)
            if system not in runs:
                raise SystemExit(f"{path}: no system {system!r}; it has {', '.join(sorted(runs))}")
            rankings.append(runs[system].ids)
    return rankings


def curated_split(split: str, queries: str | Path = "data/curated/queries.yaml",
                  judgments: str | Path = "data/curated/judgments.tsv") -> tuple[list, list[set[str]]]:
    """The curated queries of `split` that have a relevant episode, and each one's relevant episode ids."""
    every = load_queries(queries)
    relevant = relevant_sets(every, load_judgments(judgments, {q.id for q in every}))
    chosen = [q for q in every if q.split == split and relevant[q.id]]
    return chosen, [relevant[q.id] for q in chosen]


def mean_per_query(rankings: list, keep: list[bool], relevant: list[set[str]], metric: str) -> np.ndarray:
    """Each kept query's metric, averaged over the side's runs."""
    return np.mean([per_query([r for r, k in zip(ids, keep) if k], relevant, metric) for ids in rankings], axis=0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="RUNFILE:SYSTEM[,RUNFILE:SYSTEM...]")
    parser.add_argument("b", help="RUNFILE:SYSTEM[,RUNFILE:SYSTEM...]")
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    parser.add_argument("--subsets", action="store_true", help="also per query style and English / not English")
    parser.add_argument("--queries", default="data/curated/queries.yaml")
    parser.add_argument("--judgments", default="data/curated/judgments.tsv")
    args = parser.parse_args(argv)

    chosen, relevant = curated_split(args.split, args.queries, args.judgments)
    ids = [q.id for q in chosen]
    a, b = side(args.a, ids), side(args.b, ids)
    groups = {"all": [True] * len(chosen)}
    if args.subsets:
        for style in sorted({q.style for q in chosen}):
            groups[f"style={style}"] = [q.style == style for q in chosen]
        groups["language=en"] = [q.english for q in chosen]
        groups["language=other"] = [not q.english for q in chosen]
    print(f"A = {args.a} ({len(a)} run{'s' * (len(a) > 1)})\nB = {args.b} ({len(b)} run{'s' * (len(b) > 1)})\n"
          f"curated {args.split}")
    for name, keep in groups.items():
        mask = np.array(keep)
        rel = [r for r, k in zip(relevant, keep) if k]
        print(f"\n{name} ({int(mask.sum())} queries)")
        for metric in HEADLINE:
            va, vb = mean_per_query(a, keep, rel, metric), mean_per_query(b, keep, rel, metric)
            p = paired_randomization_test(vb, va, seed=0)
            print(f"  {metric:10s} A {va.mean():.4f}  B {vb.mean():.4f}  B-A {vb.mean() - va.mean():+.4f}  "
                  f"p {p:.4f}  (B better on {int((vb > va).sum())}, worse on {int((vb < va).sum())})")


if __name__ == "__main__":
    main()
