"""Choose a fused system's parts and weights on the curated dev queries, from the evaluate stage's run files.

    python -m bench.tune_fusion --fusion teacher --parts base use e5 bm25 --out bench/results/tune_teacher.md
    python -m bench.tune_fusion --fusion shipped --runs 'distillation-default-s*' --out bench/results/tune_shipped.md

Every weighted combination of the parts' rankings (weights 0, 0.25, 0.5, 1 each, at least two parts; RRF and
min-max score fusion) is scored on curated dev: all queries, English, not English. --runs names the runs to read
(experiments or globs, git revs or `workspace`, as the compare command takes them): with several (a fine-tune's
training seeds), each query's metric is its mean over them. The table is sorted by dev MRR@30; p-values: the paired
randomization test against params.yaml's current `fusion.<name>` and against the best row. Test is never read.

A grid this size picks noise as well as signal: prefer the simplest configuration among those the paired test cannot
tell apart from the best.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from podsearch.compare import RUNS_FILE, fused_values, load_curated
from podsearch.experiments import read_bytes, resolve
from podsearch.params import load_params
from podsearch.retrieval.fusion import Fusion, load_fusions
from podsearch.runfiles import read_runs
from podsearch.stats import paired_randomization_test

WEIGHTS = (0.0, 0.25, 0.5, 1.0)  # both methods rank the same under a common rescaling: max weight 1 covers all


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fusion", default="shipped", help="the params.yaml fusion being chosen (tested against)")
    parser.add_argument("--parts", nargs="+", default=["finetuned", "use", "e5", "bm25", "base"])
    parser.add_argument("--runs", default="workspace", help="runs to read, as `python -m podsearch.compare` takes")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", default=None, help="also write the table here (markdown)")
    args = parser.parse_args(argv)

    curated = load_curated("dev")
    experiments = resolve(args.runs)
    runs = [read_runs(read_bytes(e, RUNS_FILE), curated.ids, name=f"{e.name}:{RUNS_FILE}") for e in experiments]
    params = load_params("fusion")
    current = load_fusions(params)[args.fusion]
    other = ~curated.groups["English"]
    rows = []
    for method in ("rrf", "score"):
        for weights in itertools.product(WEIGHTS, repeat=len(args.parts)):
            if sum(w > 0 for w in weights) < 2 or max(weights) != 1.0:
                continue
            fusion = Fusion(dict(zip(args.parts, weights)), method=method, rrf_k=int(params["rrf_k"]),
                            depth=int(params["depth"]))
            rows.append((fusion, fused_values(fusion, runs, curated.relevant)))
    rows.sort(key=lambda row: (-row[1]["mrr@30"].mean(), len(row[0].parts), str(row[0].to_dict())))
    best = rows[0][1]["mrr@30"]
    now = fused_values(current, runs, curated.relevant)
    head = [f"# `fusion.{args.fusion}` chosen on curated dev", "",
            f"Written by `python -m bench.tune_fusion --fusion {args.fusion} --parts {' '.join(args.parts)} --runs "
            f"'{args.runs}'`: {len(rows)} fusions of {', '.join(args.parts)} over {len(runs)} run"
            f"{'s' * (len(runs) > 1)} ({', '.join(e.name for e in experiments)}; per-query means over them), "
            f"{len(curated.queries)} dev queries ({int(other.sum())} not English). p: paired randomization test on "
            f"MRR@30 (10,000 resamples). The current `fusion.{args.fusion}` ({current.method}: "
            f"{', '.join(f'{k} {v:g}' for k, v in current.weights.items() if v)}): MRR@30 {now['mrr@30'].mean():.3f}, "
            f"Recall@10 {now['recall@10'].mean():.3f}, not English MRR@30 {now['mrr@30'][other].mean():.3f}.", "",
            "| rank | method | " + " | ".join(args.parts) + " | parts | MRR@30 | Recall@10 | English MRR@30 | "
            "not English MRR@30 | p vs current | p vs best |",
            "|---:|---|" + "---:|" * (len(args.parts) + 7)]
    lines = []
    for rank, (fusion, v) in enumerate(rows[:args.top], start=1):
        mrr = v["mrr@30"]
        lines.append(f"| {rank} | {fusion.method} | " + " | ".join(f"{fusion.weights[p]:g}" for p in args.parts)
                     + f" | {len(fusion.parts)} | {mrr.mean():.3f} | {v['recall@10'].mean():.3f} | "
                     f"{mrr[~other].mean():.3f} | {mrr[other].mean():.3f} | "
                     f"{paired_randomization_test(mrr, now['mrr@30'], 0):.3f} | "
                     f"{paired_randomization_test(mrr, best, 0):.3f} |")
    text = "\n".join(head + lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
