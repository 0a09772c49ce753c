"""Choose the shipped fusion on the curated dev queries, from the evaluate stage's run files (no encoding).

Every weighted combination of the single systems' rankings (a small grid, RRF and min-max score fusion) is scored on
curated dev (all queries, English only, not English) and on the synthetic test queries. The test split is never
read. The table is sorted by dev MRR@30; the last columns test the best configuration against the current
`fusion.shipped` and against USE on the non-English dev queries (paired randomization test).

    python bench/tune_fusion.py [--top 15]

A grid this size picks noise as well as signal when configurations are close: prefer the simplest configuration
among those the paired test cannot tell apart from the best.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from podsearch.curated import load_judgments, load_queries, relevant_sets
from podsearch.evaluation import synthetic_queries
from podsearch.metrics import per_query
from podsearch.params import load_params
from podsearch.report import runs_from_frame
from podsearch.retrieval.fusion import Fusion, load_fusions
from podsearch.stats import paired_randomization_test

PARTS = ("finetuned", "use", "bm25", "base")
WEIGHTS = (0.0, 0.25, 0.5, 1.0)  # both methods rank the same under a common rescaling: max weight 1 covers all


def fused_values(fusion: Fusion, runs: dict, relevant: list[set[str]], metric: str) -> np.ndarray:
    scores, ids = fusion.fuse({p: (runs[p].scores, runs[p].ids) for p in fusion.parts}, 30)
    return per_query(ids, relevant, metric)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="data/eval/runs")
    parser.add_argument("--test", default="data/splits/test.parquet", help="the test split the runs were made from")
    parser.add_argument("--queries", default="data/curated/queries.yaml")
    parser.add_argument("--judgments", default="data/curated/judgments.tsv")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)

    queries = load_queries(args.queries)
    relevant = relevant_sets(queries, load_judgments(args.judgments, {q.id for q in queries}))
    dev = [q for q in queries if q.split == "dev" and relevant[q.id]]
    dev_runs = runs_from_frame(pd.read_parquet(Path(args.runs) / "curated.parquet"), [q.id for q in dev])
    dev_relevant = [relevant[q.id] for q in dev]
    other = np.array([not q.english for q in dev])
    test_pairs = pd.read_parquet(args.test)
    synthetic = synthetic_queries(test_pairs, set(test_pairs["episode_id"]), source=args.test)
    synthetic_relevant = synthetic.relevant
    synthetic_runs = runs_from_frame(pd.read_parquet(Path(args.runs) / "synthetic.parquet"), synthetic.ids)

    params = load_params("fusion")
    current = load_fusions(params)["shipped"]
    rows = []
    for method in ("rrf", "score"):
        for weights in itertools.product(WEIGHTS, repeat=len(PARTS)):
            if sum(w > 0 for w in weights) < 2 or max(weights) != 1.0:
                continue
            fusion = Fusion(dict(zip(PARTS, weights)), method=method, rrf_k=int(params["rrf_k"]),
                            depth=int(params["depth"]))
            mrr = fused_values(fusion, dev_runs, dev_relevant, "mrr@30")
            rows.append({"method": method, **dict(zip(PARTS, weights)), "dev_mrr@30": mrr.mean(),
                         "dev_recall@10": fused_values(fusion, dev_runs, dev_relevant, "recall@10").mean(),
                         "dev_en_mrr@30": mrr[~other].mean(), "dev_other_mrr@30": mrr[other].mean(),
                         "synthetic_mrr@30": fused_values(fusion, synthetic_runs, synthetic_relevant, "mrr@30").mean(),
                         "_fusion": fusion, "_mrr": mrr})
    table = pd.DataFrame(rows).sort_values("dev_mrr@30", ascending=False).reset_index(drop=True)
    current_mrr = fused_values(current, dev_runs, dev_relevant, "mrr@30")
    use_mrr = per_query(dev_runs["use"].ids, dev_relevant, "mrr@30")
    table["p_vs_current"] = [paired_randomization_test(m, current_mrr, seed=0) for m in table["_mrr"]]
    table["p_other_vs_use"] = [paired_randomization_test(m[other], use_mrr[other], seed=0) for m in table["_mrr"]]
    print(f"curated dev: {len(dev)} queries ({int(other.sum())} not English); synthetic test: "
          f"{len(synthetic_relevant)} queries")
    print(f"current fusion.shipped {current.to_dict()}: dev MRR@30 {current_mrr.mean():.4f}, "
          f"not English {current_mrr[other].mean():.4f}; USE alone not English {use_mrr[other].mean():.4f}")
    shown = table.drop(columns=["_fusion", "_mrr"]).head(args.top)
    print(shown.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
