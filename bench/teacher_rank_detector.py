"""GPL's denoising filter as a furniture detector: does the teacher rank a flagged query's own episode lower?

    python -m bench.teacher_rank_detector      # -> bench/results/teacher_rank_detector.md
    (needs the committed run's data/prepared/episodes.parquet and data/embeddings/{base,use}.npy: `dvc repro`)

GPL drops a generated pair when its teacher does not rank the positive near the top (train.max_teacher_rank here).
The 1,400 judged keyword queries (bench/results/judged/ and the committed run's sample, read by podsearch.judging;
49 flagged as feed furniture) say whether that cut also removes the furniture the rule-based filters miss: each
query's episode is ranked by the pseudolabel stage's teacher (fusion.teacher, the same scoring code) among every
prepared episode, and the rank is scored as a detector (AUC, against the best detector so far, 0.70 in
bench/results/querygen_furniture_detectors.md). Then the cut-offs a user would set: the share of pairs each keeps,
and the flagged rate among those kept.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import binomtest

from podsearch.evaluation import Corpus
from podsearch.experiments import short_rev
from podsearch.judging import judged_samples, load_judged
from podsearch.pseudolabel import TEACHER, PseudoLabelConfig, label_pairs, load_teacher, raw_scorer
from podsearch.stats import auc_interval

CUTS = (1, 3, 10, 30, 100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--embeddings", default="data/embeddings")
    parser.add_argument("--out", default="bench/results/teacher_rank_detector.md")
    args = parser.parse_args(argv)

    params = yaml.safe_load(Path("params.yaml").read_text())
    name = TEACHER
    teacher = load_teacher(params["fusion"])
    judged = load_judged(judged_samples())
    episodes = pd.read_parquet(args.episodes)
    ids = sorted(episodes["episode_id"])
    text_of = dict(zip(episodes["episode_id"], episodes["text"]))
    corpus = Corpus(ids, [text_of[i] for i in ids])
    score = raw_scorer(corpus, teacher, args.embeddings, params["train"]["base_model"])

    labels, _ = label_pairs(judged[["query", "episode_id"]], corpus, teacher,
                            PseudoLabelConfig(negatives=1, mine_depth=2), score)
    rank = labels["teacher_rank"].to_numpy()
    y = judged["flagged"].to_numpy()
    auc, low, high = auc_interval(y, rank.astype(float))
    lines = [
        "# The teacher's rank of a query's own episode, as a furniture detector",
        "",
        f"Written by `python -m bench.teacher_rank_detector` at {short_rev('HEAD')}: {len(judged):,} judged keyword "
        f"queries ({judged['sample'].nunique()} seeded samples), {y.sum()} flagged as feed furniture. Teacher: "
        f"`fusion.{name}` ({teacher.method} fusion of {', '.join(teacher.parts)}), each query's episode ranked among "
        f"all {len(ids):,} prepared episodes.",
        "",
        f"AUC of the rank (lower ranked = suspect): **{auc:.2f}** [{low:.2f}, {high:.2f}] (95% bootstrap interval); "
        "the best detector so far, a logistic regression over the query's embedding and four features, has 0.70 "
        "[0.62, 0.79] (bench/results/querygen_furniture_detectors.md).",
        "",
        f"Median rank: flagged {np.median(rank[y == 1]):.0f}, the rest {np.median(rank[y == 0]):.0f}.",
        "",
        "| keep pairs whose episode the teacher ranks within | pairs kept | flagged among kept [exact 95% CI] | "
        "flagged removed |",
        "|---:|---:|---:|---:|",
    ]
    for cut in CUTS:
        kept = rank <= cut
        flagged = int(y[kept].sum())
        interval = binomtest(flagged, int(kept.sum())).proportion_ci(confidence_level=0.95, method="exact")
        lines.append(f"| {cut} | {kept.mean():.1%} ({kept.sum()}) | {flagged / kept.sum():.1%} "
                     f"[{interval.low:.1%}, {interval.high:.1%}] | {int(y[~kept].sum())} of {y.sum()} |")
    lines.append(f"| all | 100% ({len(y)}) | {y.mean():.1%} | 0 of {y.sum()} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
