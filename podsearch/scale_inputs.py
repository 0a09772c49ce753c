"""Kaggle-shaped inputs (podcasts.csv + episodes.csv, the sample's columns) at any multiple of the real sample, for
measuring how the pipeline scales before the full dataset is at hand (docs/scale.md).

Every show is replicated with a new id (same title, description, language: real show metadata); every episode copy
gets a new id and a text made of real material of its own show:

- description: as many sentences as its source, drawn from the sentences of the show's descriptions of the same kind
  (plain text or markup); an empty description stays empty. Lengths, vocabulary, languages and the shares of empty
  and markup descriptions stay the sample's, and a show with one boilerplate description keeps repeating it within
  a replica, as in the sample.
- title: the source's own in the first replica; later, the first half of its words and the second half of another
  title's of the same language (a show's own titles are too few to give distinct ones: most shows are small).

Most shows are small and most of the sample's descriptions have one or two sentences, so a copy would often repeat,
word for word, a description of the same show from an earlier replica: the share of duplicate descriptions would grow
with every replica, far from the sample's. In such a copy one sentence is spliced with a sentence of the same language
from any show, as titles are (a markup sentence is swapped whole): the sample has too few distinct sentences for whole
ones to make the full dataset's descriptions distinct. The sample's counts behind this are in
docs/scale.md#cost-against-corpus-size.

Seeded: the same (sample, size, seed) gives byte-identical files. bench/bench_scale.py makes its inputs with them;
`python -m bench.scale_inputs` writes them alone.
"""
from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from podsearch.data import read_csv

# A sentence ends at . ! ? followed by whitespace (as podsearch/querygen/pseudo.py splits); markup stays in place.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MARKUP = re.compile(r"[<&]")


def _new_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _sentences(description: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(description.strip()) if s]


def _kind(description: str) -> str:
    return "empty" if not description.strip() else "markup" if _MARKUP.search(description) else "plain"


def _splice(head: str, tail: str) -> str:
    """First half of `head`'s words, second half of `tail`'s: a title of the usual length from real titles."""
    a, b = head.split(), tail.split()
    return " ".join(a[: math.ceil(len(a) / 2)] + b[len(b) // 2:]) or head


def scale_sample(podcasts: pd.DataFrame, episodes: pd.DataFrame, n_episodes: int, seed: int = 0
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shows and episodes shaped like the inputs, with exactly `n_episodes` episodes.

    Whole replicas of every show and episode come first; the last, partial replica takes a seeded subset of the
    episodes (its shows are all written: shows without episodes exist in the sample too).
    """
    rng = random.Random(seed)
    episodes = episodes.reset_index(drop=True)
    shows, titles = episodes["podcast_uuid"].tolist(), episodes["title"].tolist()
    language_of = dict(zip(podcasts["uuid"], podcasts["language"]))
    languages = [language_of.get(show, "") for show in shows]
    kinds = [_kind(d) for d in episodes["description"]]
    units = [_sentences(d) for d in episodes["description"]]
    show_pool: dict[tuple[str, str], list[str]] = defaultdict(list)
    language_pool: dict[tuple[str, str], list[str]] = defaultdict(list)
    language_titles: dict[str, list[str]] = defaultdict(list)
    for row, show in enumerate(shows):
        show_pool[show, kinds[row]].extend(units[row])
        language_pool[languages[row], kinds[row]].extend(units[row])
        language_titles[languages[row]].append(titles[row])
    # Distinct sentences only: a boilerplate line repeated by a long-running show must not dominate the swaps.
    language_pool = {key: list(dict.fromkeys(pool)) for key, pool in language_pool.items()}

    replicas = math.ceil(n_episodes / len(episodes))
    earlier: dict[str, set[str]] = defaultdict(set)  # descriptions written for a show's copies in earlier replicas
    show_frames, sources, columns = [], [], defaultdict(list)
    for replica in range(replicas):
        show_ids = {show: _new_id(rng) for show in podcasts["uuid"]}
        show_frames.append(podcasts.assign(uuid=podcasts["uuid"].map(show_ids)))
        last = n_episodes - replica * len(episodes)
        rows = range(len(episodes)) if last >= len(episodes) else sorted(rng.sample(range(len(episodes)), last))
        decks: dict[tuple[str, str], list[str]] = {}
        written = []
        for row in rows:
            show, kind, n = shows[row], kinds[row], len(units[row])
            # Sentences are dealt from a shuffled deck per show and kind, so the copies of a replica repeat each
            # other no more than the sample's episodes do.
            deck = decks.get((show, kind), [])
            if len(deck) < n:
                deck = rng.sample(show_pool[show, kind], len(show_pool[show, kind]))
            picked, decks[show, kind] = deck[:n], deck[n:]
            if kind != "empty" and " ".join(picked) in earlier[show]:
                j, other = rng.randrange(n), rng.choice(language_pool[languages[row], kind])
                # Splicing cuts at spaces, which would split tags: a markup sentence is swapped whole.
                picked[j] = other if kind == "markup" else _splice(picked[j], other)
            title = titles[row] if replica == 0 else _splice(titles[row], rng.choice(language_titles[languages[row]]))
            written.append((show, " ".join(picked)))
            sources.append(row)
            columns["uuid"].append(_new_id(rng))
            columns["podcast_uuid"].append(show_ids[show])
            columns["title"].append(title)
            columns["description"].append(" ".join(picked))
        for show, description in written:
            earlier[show].add(description)
    scaled = episodes.iloc[sources].reset_index(drop=True).assign(**columns)
    return pd.concat(show_frames, ignore_index=True), scaled.loc[:, list(episodes.columns)]


def write_scaled(sample_dir: str | Path, out_dir: str | Path, n_episodes: int, seed: int = 0) -> Path:
    """`out_dir/{podcasts,episodes}.csv` with `n_episodes` episodes made from the sample in `sample_dir`."""
    sample_dir, out_dir = Path(sample_dir), Path(out_dir)
    podcasts = read_csv(sample_dir / "podcasts.csv", ("uuid", "language"))
    episodes = read_csv(sample_dir / "episodes.csv", ("uuid", "podcast_uuid", "title", "description"))
    shows, scaled = scale_sample(podcasts, episodes, n_episodes, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    shows.to_csv(out_dir / "podcasts.csv", index=False)
    scaled.to_csv(out_dir / "episodes.csv", index=False)
    return out_dir
