"""How the training queries read: a seeded sample of the pipeline's pairs, judged by a person for boilerplate.

    python -m bench.querygen_sample draw     # -> data/querygen/judged_sample.tsv with an empty `boilerplate` column
    (read every query; write 1 where it is feed furniture a listener would never type -- contact lines, sponsor
     reads, calls to subscribe, URLs, e-mails, dates, episode numbering, a show name alone -- else 0, and a note)
    python -m bench.querygen_sample score    # the boilerplate rate with a 95% CI, and the queries' median length

The sample is drawn from data/pairs/pairs.parquet of the committed run, so `score` also checks that the judged file
still matches the pairs it was drawn from. Where the sample lives, its seed and how it is read are podsearch.judging's
(the furniture studies read it too).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from podsearch.judging import QUERY_SAMPLE, QUERY_SAMPLE_SEED, read_judged

COLUMNS = ["query", "generator", "episode_id", "boilerplate", "note"]


def draw(pairs: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    sample = pairs.sample(n=min(n, len(pairs)), random_state=seed)[["query", "generator", "episode_id"]]
    return sample.assign(boilerplate="", note="").reset_index(drop=True)[COLUMNS]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("draw", "score"))
    parser.add_argument("--pairs", default="data/pairs/pairs.parquet")
    parser.add_argument("--sample", default=QUERY_SAMPLE)
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=QUERY_SAMPLE_SEED)
    args = parser.parse_args(argv)
    pairs = pd.read_parquet(args.pairs)
    if args.command == "draw":
        Path(args.sample).parent.mkdir(parents=True, exist_ok=True)
        draw(pairs, args.n, args.seed).to_csv(args.sample, sep="\t", index=False)
        print(f"{args.n} queries -> {args.sample}; fill `boilerplate` with 1 or 0")
        return 0
    try:
        judged = read_judged(args.sample)
    except ValueError as error:
        print(error)
        return 1
    expected = draw(pairs, args.n, args.seed)
    if judged["query"].tolist() != expected["query"].tolist():
        print(f"{args.sample} was not drawn from {args.pairs} (n={args.n}, seed={args.seed}): draw and judge again")
        return 1
    flags = judged["boilerplate"]
    # Exact (Clopper-Pearson) interval: a bootstrap of a sample with no or few flagged queries collapses to a point.
    interval = binomtest(int(flags.sum()), len(flags)).proportion_ci(confidence_level=0.95, method="exact")
    low, high = interval.low, interval.high
    words = pairs["query"].str.split().str.len()
    print(f"boilerplate: {int(flags.sum())} of {len(flags)} sampled queries ({100 * flags.mean():.1f}%, "
          f"95% CI {100 * low:.1f}-{100 * high:.1f}%)")
    print(f"query length over all {len(pairs):,} pairs: median {np.median(words):g} words, mean {words.mean():.2f}")
    for generator, group in pairs.groupby(pairs["generator"].str.split("-").str[0]):
        print(f"  {generator}: median {group['query'].str.split().str.len().median():g} words ({len(group):,} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
