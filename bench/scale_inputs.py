"""Write Kaggle-shaped inputs (podcasts.csv + episodes.csv) of any size, made from the real sample: the scale bench's
`inputs` step alone, to inspect or reuse the files (how they are made: podsearch/scale_inputs.py).

    python -m bench.scale_inputs --episodes 56330 --out /tmp/scaled    # 10x the 5,633-episode sample
    python -m bench.scale_inputs --episodes full --out /tmp/scaled     # the Kaggle dataset's 873,820 episodes
"""
from __future__ import annotations

import argparse
import sys

from podsearch.scale_inputs import write_scaled
from podsearch.scale_study import FULL_EPISODES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", required=True,
                        help=f"episodes to write, or `full` ({FULL_EPISODES:,}, the Kaggle dataset)")
    parser.add_argument("--out", required=True, help="folder for podcasts.csv and episodes.csv")
    parser.add_argument("--sample", default="data/sample/listennotes-dec2017",
                        help="folder holding the real sample's podcasts.csv and episodes.csv")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives byte-identical files (bench: 0)")
    args = parser.parse_args(argv)
    episodes = FULL_EPISODES if args.episodes == "full" else int(args.episodes)
    out = write_scaled(args.sample, args.out, episodes, seed=args.seed)
    print(f"{episodes:,} episodes from {args.sample} (seed {args.seed}) -> {out}/podcasts.csv, episodes.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
