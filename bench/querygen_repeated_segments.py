"""What a rule that the filters do not have would cost: cutting every description segment a show repeats.

    python -m bench.querygen_repeated_segments     # on the committed pairs and prepared episodes

The judged samples' remaining errors are mostly programs, series and segments a feed runs inside itself ("Good
Morning Mechanicsville", "Flashback Fridays", "60 Second Juke Box"), in too few episodes for the recurring-words rules.
One rule would catch most of them: leave out of the keyword generator's text every segment (as the generator splits
text into phrases) that two or more episodes of the same show share. This counts the kept pairs that rule would
remove -- those found only in such segments -- and prints a seeded sample of them, so the cost is measured, not
guessed.
"""
from __future__ import annotations

import argparse
import random
from collections import Counter

import pandas as pd

from podsearch.querygen.filters import content_words, without_furniture, words
from podsearch.querygen.keyword import segments


def episode_segments(title: str, description: str) -> list[str]:
    """The segments the keyword generator takes phrases from, with content words, normalised as phrases are."""
    return [" ".join(words(s)) for s in segments(without_furniture(title, description)) if content_words(s)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--pairs", default="data/pairs/pairs.parquet")
    parser.add_argument("--sample", type=int, default=30)
    args = parser.parse_args(argv)
    episodes = pd.read_parquet(args.episodes)
    pairs = pd.read_parquet(args.pairs)
    episodes["segments"] = [episode_segments(r.title, r.description) for r in episodes.itertuples(index=False)]
    repeated = {}
    for show, group in episodes.groupby("show_id"):
        counts = Counter(s for episode in group["segments"] for s in set(episode))
        repeated[show] = {s for s, n in counts.items() if n >= 2}
    by_id = episodes.set_index("episode_id")
    cut = []
    for query, episode_id in zip(pairs["query"], pairs["episode_id"]):
        row = by_id.loc[episode_id]
        left = [s for s in row["segments"] if s not in repeated[row["show_id"]]]
        if not any(f" {query} " in f" {s} " for s in left):
            cut.append((query, row["show_title"][:40], row["title"][:60]))
    print(f"{len(cut):,} of {len(pairs):,} kept pairs ({len(cut) / len(pairs):.1%}) are found only in segments their "
          f"show repeats; a seeded sample of {min(args.sample, len(cut))}:")
    for query, show, title in sorted(random.Random(0).sample(cut, min(args.sample, len(cut)))):
        print(f"  {query:32s} {show:40s} {title}")


if __name__ == "__main__":
    main()
