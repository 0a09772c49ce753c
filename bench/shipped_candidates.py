"""The shipped system chosen: candidate fusions on curated dev over a fine-tune's training seeds, each beside the time
of a whole `search` command that serves it.

    python -m bench.shipped_candidates [--runs 'distillation-default-s*'] [--index data/index]
                                       # -> bench/results/shipped_candidates_dev.md

Quality: each candidate (score fusion, equal weights, params.yaml's rrf_k and depth) built from every run's parts,
each query's metric averaged over the runs (`python -m podsearch.compare`'s rule), tested against the shipped system
before E5 (`shipped_v1`) and against the best candidate with the paired randomization test. Time: whole `search`
commands in fresh processes, the candidates alternating, on a copy of the index that serves them
(podsearch.search.timing). Test is not read. The choice rule: the lightest candidate level with the best on dev, that
keeps the non-English queries.
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np

from podsearch.compare import RUNS_FILE, fused_values, load_curated
from podsearch.experiments import read_bytes, resolve, short_rev
from podsearch.params import load_params
from podsearch.retrieval.fusion import Fusion
from podsearch.runfiles import read_runs
from podsearch.search.timing import command_seconds, with_fusions
from podsearch.stats import paired_randomization_test

REFERENCE = "shipped_v1"
# name -> parts (equal weights), lightest first within each size
CANDIDATES = {
    "shipped_v1": ("finetuned", "use", "bm25"),
    "e5": ("e5",),
    "finetuned+e5": ("finetuned", "e5"),
    "finetuned+e5+bm25": ("finetuned", "e5", "bm25"),
    "finetuned+e5+use": ("finetuned", "e5", "use"),
    "finetuned+e5+use+bm25": ("finetuned", "e5", "use", "bm25"),
    "base+e5+use+bm25 (no fine-tune)": ("base", "e5", "use", "bm25"),
    "finetuned+base+e5+use+bm25": ("finetuned", "base", "e5", "use", "bm25"),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="distillation-default-s*", help="the runs whose parts are fused")
    parser.add_argument("--index", default="data/index", help="the built index the commands search")
    parser.add_argument("--commands", type=int, default=7, help="whole commands per candidate")
    parser.add_argument("--out", default="bench/results/shipped_candidates_dev.md")
    args = parser.parse_args(argv)

    curated = load_curated("dev")
    experiments = resolve(args.runs)
    runs = [read_runs(read_bytes(e, RUNS_FILE), curated.ids, name=f"{e.name}:{RUNS_FILE}") for e in experiments]
    params = load_params("fusion")
    fusions = {name: Fusion({p: 1.0 for p in parts}, method="score", rrf_k=int(params["rrf_k"]),
                            depth=int(params["depth"])) for name, parts in CANDIDATES.items()}
    values = {name: fused_values(fusion, runs, curated.relevant) for name, fusion in fusions.items()}
    best = max(values, key=lambda name: values[name]["mrr@30"].mean())

    timed = with_fusions(args.index, {f"candidate-{i}": f.weights for i, f in enumerate(fusions.values())})
    try:
        seconds = command_seconds(timed, [f"candidate-{i}" for i in range(len(fusions))], args.commands)
    finally:
        shutil.rmtree(timed)
    median = dict(zip(fusions, (float(np.median(s)) for s in seconds.values())))

    other = ~curated.groups["English"]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# The shipped system, chosen on curated dev", "",
        f"Written by `python -m bench.shipped_candidates --runs '{args.runs}'` at {short_rev('HEAD')}: each candidate "
        f"built from the parts of {len(runs)} runs ({', '.join(e.name for e in experiments)}), per-query metrics "
        f"averaged over them; {len(curated.queries)} dev queries ({int(other.sum())} not English). p: paired "
        f"randomization test on MRR@30 and Recall@10 against `{REFERENCE}` (the shipped system before E5, the same "
        f"fine-tunes), and on MRR@30 against the best candidate (`{best}`), 10,000 resamples. Command: the median of "
        f"{args.commands} whole `search` commands per candidate, fresh processes, the candidates alternating "
        f"({os.cpu_count()} cores, load average {load} at the end).", "",
        f"| candidate | parts | MRR@30 (p vs {REFERENCE}) | Recall@10 (p) | not English MRR@30 | MRR@30 p vs best | "
        "command s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ref = values[REFERENCE]
    for name, v in values.items():
        mrr, r10 = v["mrr@30"], v["recall@10"]
        vs_ref = "" if name == REFERENCE else f" ({paired_randomization_test(mrr, ref['mrr@30'], 0):.3f})"
        r_ref = "" if name == REFERENCE else f" ({paired_randomization_test(r10, ref['recall@10'], 0):.3f})"
        vs_best = "" if name == best else f"{paired_randomization_test(mrr, values[best]['mrr@30'], 0):.3f}"
        lines.append(f"| {name} | {len(CANDIDATES[name])} | {mrr.mean():.3f}{vs_ref} | {r10.mean():.3f}{r_ref} | "
                     f"{mrr[other].mean():.3f} | {vs_best} | {median[name]:.2f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
