"""The curated test collection: natural queries a listener would type, and pooled relevance judgments.

Two files under data/curated/, both meant to be read and extended by people (`python -m podsearch.judging`):
    queries.yaml     one entry per query: id, query, style (keyword | question | descriptive), language (ISO 639-1),
                     split (dev | test), source (the episode the writer read, optional), note (optional)
    judgments.tsv    query_id, episode_id, relevant (1 or 0), judge: one row per judged (query, episode) pair

Every choice (fusion weights, learning rate, lengths, ...) is made on `dev`; `test` is only reported. Judgments are
pooled as TREC does: the top 20 of every system are judged, not only the episode a query was written from, so a
system is not punished for finding a right answer nobody expected. An episode nobody judged counts as not relevant;
`judged@10` in the evaluation says how much of each system's top 10 was judged.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from podsearch.artifacts import write_text, writing
from podsearch.errors import PodsearchError

STYLES = ("keyword", "question", "descriptive")
SPLITS = ("dev", "test")
JUDGMENT_COLUMNS = ("query_id", "episode_id", "relevant", "judge")
_FIELDS = ("id", "query", "style", "language", "split", "source", "note")


class CuratedError(PodsearchError, ValueError):
    """A malformed queries or judgments file; the message names the file, the entry or row, and the field."""


@dataclass(frozen=True)
class CuratedQuery:
    id: str
    query: str
    style: str
    language: str
    split: str | None = None
    source: str | None = None
    note: str = ""

    @property
    def english(self) -> bool:
        return self.language == "en"

    def to_entry(self) -> dict:
        entry = {"id": self.id, "query": self.query, "style": self.style, "language": self.language,
                 "split": self.split, "source": self.source, "note": self.note}
        return {k: v for k, v in entry.items() if v not in (None, "")}


def load_queries(path: str | Path, known_ids: set[str] | None = None, require_split: bool = True
                 ) -> list[CuratedQuery]:
    """Read and validate queries.yaml. With known_ids, every `source` must be a prepared episode."""
    path = Path(path)
    if not path.exists():
        raise CuratedError(f"{path}: not found")
    try:
        entries = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CuratedError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(entries, list) or not entries:
        raise CuratedError(f"{path}: expected a non-empty list of queries")
    queries, seen_ids, seen_text = [], set(), set()
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: entry {number}"
        if not isinstance(entry, dict):
            raise CuratedError(f"{where}: expected a mapping with keys {', '.join(_FIELDS)}")
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise CuratedError(f"{where}: unknown key {unknown[0]!r}; expected some of {', '.join(_FIELDS)}")
        for key in ("id", "query", "style", "language"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise CuratedError(f"{where}, field '{key}': expected a non-empty string, got {entry.get(key)!r}")
        query = CuratedQuery(id=entry["id"].strip(), query=" ".join(entry["query"].split()),
                             style=entry["style"].strip(), language=entry["language"].strip(),
                             split=entry.get("split"), source=entry.get("source"), note=str(entry.get("note") or ""))
        where = f"{path}: entry {number} ({query.id})"
        if query.id in seen_ids:
            raise CuratedError(f"{where}, field 'id': duplicate id")
        if query.query.lower() in seen_text:
            raise CuratedError(f"{where}, field 'query': duplicate query {query.query!r}")
        if query.style not in STYLES:
            raise CuratedError(f"{where}, field 'style': {query.style!r}; expected one of {', '.join(STYLES)}")
        if len(query.language) != 2 or not query.language.islower():
            raise CuratedError(f"{where}, field 'language': {query.language!r}; expected an ISO 639-1 code like en")
        if query.split is None and require_split:
            raise CuratedError(f"{where}, field 'split': missing; `python -m podsearch.judging split` assigns it")
        if query.split is not None and query.split not in SPLITS:
            raise CuratedError(f"{where}, field 'split': {query.split!r}; expected one of {', '.join(SPLITS)}")
        if query.source is not None and not isinstance(query.source, str):
            raise CuratedError(f"{where}, field 'source': {query.source!r} is not a string; quote ids in YAML")
        if known_ids is not None and query.source is not None and query.source not in known_ids:
            raise CuratedError(f"{where}, field 'source': episode {query.source} is not in the prepared episodes")
        seen_ids.add(query.id)
        seen_text.add(query.query.lower())
        queries.append(query)
    return queries


def save_queries(queries: list[CuratedQuery], path: str | Path, header: str = "") -> Path:
    body = yaml.safe_dump([q.to_entry() for q in queries], sort_keys=False, allow_unicode=True, width=120)
    return write_text(path, header + body)


def load_judgments(path: str | Path, query_ids: set[str] | None = None, known_ids: set[str] | None = None
                   ) -> pd.DataFrame:
    """judgments.tsv as a frame, validated: every row names a known query and a prepared episode, once."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=int if c == "relevant" else str) for c in JUDGMENT_COLUMNS})
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in JUDGMENT_COLUMNS if c not in frame.columns]
    if missing:
        raise CuratedError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(JUDGMENT_COLUMNS)}")
    for column in JUDGMENT_COLUMNS:
        bad = frame[column].str.strip() == ""
        if bad.any():
            raise CuratedError(f"{path}: row {_row(bad)}, column '{column}': empty")
    bad = ~frame["relevant"].isin(["0", "1"])
    if bad.any():
        row = _row(bad)
        raise CuratedError(f"{path}: row {row}, column 'relevant': {frame['relevant'].iloc[row - 2]!r}; expected 1 or 0")
    if query_ids is not None:
        bad = ~frame["query_id"].isin(query_ids)
        if bad.any():
            row = _row(bad)
            raise CuratedError(f"{path}: row {row}, column 'query_id': {frame['query_id'].iloc[row - 2]!r} is not "
                               "in queries.yaml")
    if known_ids is not None:
        bad = ~frame["episode_id"].isin(known_ids)
        if bad.any():
            row = _row(bad)
            raise CuratedError(f"{path}: row {row}, column 'episode_id': {frame['episode_id'].iloc[row - 2]} is not "
                               "in the prepared episodes")
    duplicated = frame.duplicated(["query_id", "episode_id"])
    if duplicated.any():
        row = _row(duplicated)
        raise CuratedError(f"{path}: row {row}: ({frame['query_id'].iloc[row - 2]}, "
                           f"{frame['episode_id'].iloc[row - 2]}) is judged twice")
    return frame.assign(relevant=frame["relevant"].astype(int))


def _row(mask: pd.Series) -> int:
    """The file line of the first True row (line 1 is the header)."""
    return int(np.flatnonzero(mask.to_numpy())[0]) + 2


def save_judgments(frame: pd.DataFrame, path: str | Path) -> Path:
    """Sorted by query and episode, so additions show as small git diffs."""
    out = frame[list(JUDGMENT_COLUMNS)].sort_values(["query_id", "episode_id"]).reset_index(drop=True)
    with writing(path) as tmp:
        out.to_csv(tmp, sep="\t", index=False)
    return Path(path)


def relevant_sets(queries: list[CuratedQuery], judgments: pd.DataFrame) -> dict[str, set[str]]:
    """query id -> the episodes judged relevant (empty set when none is)."""
    positive = judgments[judgments["relevant"] == 1]
    by_query = positive.groupby("query_id")["episode_id"].agg(set).to_dict()
    return {q.id: set(by_query.get(q.id, set())) for q in queries}


def assign_splits(queries: list[CuratedQuery], seed: int, test_fraction: float) -> list[CuratedQuery]:
    """Give every query without a split one, seeded and stratified by style and English / not English, so dev and
    test hold the same mix. Queries that already have a split keep it: the split is made once and never moves."""
    if not 0 < test_fraction < 1:
        raise CuratedError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    assigned = {q.id: q.split for q in queries if q.split}
    strata: dict[tuple[str, bool], list[str]] = {}
    for q in sorted(queries, key=lambda q: q.id):
        if not q.split:
            strata.setdefault((q.style, q.english), []).append(q.id)
    for key in sorted(strata):
        ids = strata[key]
        order = rng.permutation(len(ids))
        n_test = int(round(test_fraction * len(ids)))
        for position, index in enumerate(order):
            assigned[ids[index]] = "test" if position < n_test else "dev"
    return [CuratedQuery(**{**q.__dict__, "split": assigned[q.id]}) for q in queries]


def split_queries(split: str, queries: str | Path = "data/curated/queries.yaml",
                  judgments: str | Path = "data/curated/judgments.tsv") -> tuple[list[CuratedQuery], list[set[str]]]:
    """The queries of `split` with at least one relevant episode judged (the ones scored), and their relevant ids."""
    if split not in SPLITS:
        raise CuratedError(f"split {split!r}; expected one of {', '.join(SPLITS)}")
    every = load_queries(queries)
    relevant = relevant_sets(every, load_judgments(judgments, {q.id for q in every}))
    chosen = [q for q in every if q.split == split and relevant[q.id]]
    return chosen, [relevant[q.id] for q in chosen]


# The slices the distillation gap is read on: a non-English query is cross-lingual when every episode judged relevant
# to it is English (a model must match across languages to find it), same-language otherwise.
LANGUAGE_GROUPS = ("English", "same-language", "cross-lingual")


def language_groups(queries: list[CuratedQuery], relevant: list[set[str]], episode_language: dict[str, str]
                    ) -> dict[str, list[bool]]:
    """Each query's group of LANGUAGE_GROUPS, as one mask per group; `episode_language`: episode id -> the show's
    language as the prepared episodes name it (English, German, ...)."""
    cross = [not q.english and all(episode_language.get(e) == "English" for e in r) for q, r in zip(queries, relevant)]
    return {"English": [q.english for q in queries],
            "same-language": [not q.english and not c for q, c in zip(queries, cross)],
            "cross-lingual": cross}
