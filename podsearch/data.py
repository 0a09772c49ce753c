"""Reading the Listen Notes CSVs (Kaggle schema), validating them, and building the prepared episode table."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from podsearch.artifacts import read_parquet, write_parquet
from podsearch.cleaning import html_to_text, join_sentences
from podsearch.config import from_section
from podsearch.errors import PodsearchError

log = logging.getLogger(__name__)

PODCAST_COLUMNS = ("uuid", "title", "image", "description", "language", "categories", "website", "author", "itunes_id")
EPISODE_COLUMNS = ("title", "audio", "audio_length", "description", "pub_date", "uuid", "podcast_uuid")
# The columns prepare actually reads; the others may be absent without harm, so only these are required.
REQUIRED_PODCAST_COLUMNS = ("uuid", "title", "description", "language")
REQUIRED_EPISODE_COLUMNS = ("uuid", "podcast_uuid", "title", "description", "pub_date", "audio")

PREPARED_COLUMNS = (
    "episode_id", "text", "title", "description", "show_id", "show_title", "show_description",
    "language", "pub_date", "audio",
)


@dataclass(frozen=True)
class PrepareConfig:
    """params.yaml `prepare`."""

    seed: int = 42
    max_episodes: int | None = None
    languages: list[str] | None = None

    @classmethod
    def from_params(cls, params) -> "PrepareConfig":
        return from_section(cls, params, "prepare")


class DataError(PodsearchError, ValueError):
    """A problem with an input file, phrased for the person who has to fix it (file, row, column, expectation)."""


@dataclass
class PrepareReport:
    episodes_in: int = 0
    shows_in: int = 0
    episodes_out: int = 0
    html_cleaned: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def as_stats(self) -> dict:
        return {
            "episodes_in": self.episodes_in,
            "shows_in": self.shows_in,
            "episodes_out": self.episodes_out,
            "episodes_dropped": sum(self.dropped.values()),
            "dropped_by_reason": dict(self.dropped),
            "descriptions_with_html": self.html_cleaned,
        }


def read_csv(path: str | Path, required: tuple[str, ...]) -> pd.DataFrame:
    """All columns as strings (ids must never become ints), empty cells as "" rather than NaN."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing required column(s) {', '.join(missing)}; expected the Kaggle schema with at least "
            f"{', '.join(required)} (found: {', '.join(frame.columns) or 'no columns'})"
        )
    return frame


def _check_ids(frame: pd.DataFrame, path: Path, column: str) -> None:
    """Ids must be present and unique; rows are reported 1-based, header excluded, as a spreadsheet shows them."""
    ids = frame[column].str.strip()
    empty = ids.index[ids == ""]
    if len(empty):
        raise DataError(f"{path}: row {empty[0] + 1}, column '{column}': empty id; every row needs a unique id")
    dup = ids.duplicated(keep="first")
    if dup.any():
        row = int(dup.to_numpy().nonzero()[0][0])
        first = int((ids == ids.iloc[row]).to_numpy().nonzero()[0][0])
        raise DataError(
            f"{path}: row {row + 1}, column '{column}': id '{ids.iloc[row]}' repeats row {first + 1}; ids must be unique"
        )


def load_raw(podcasts_path: str | Path, episodes_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and validate both files: required columns, unique ids, every episode's show present."""
    podcasts_path, episodes_path = Path(podcasts_path), Path(episodes_path)
    podcasts = read_csv(podcasts_path, REQUIRED_PODCAST_COLUMNS)
    episodes = read_csv(episodes_path, REQUIRED_EPISODE_COLUMNS)
    # A header-only file is valid CSV but gives an empty pipeline that fails stages later, far from the cause.
    for frame, path, what in ((podcasts, podcasts_path, "shows"), (episodes, episodes_path, "episodes")):
        if frame.empty:
            raise DataError(f"{path}: no {what} (the file has a header and no rows); expected the Kaggle dataset's rows")
    _check_ids(podcasts, podcasts_path, "uuid")
    _check_ids(episodes, episodes_path, "uuid")
    show_ids = set(podcasts["uuid"].str.strip())
    orphans = ~episodes["podcast_uuid"].str.strip().isin(show_ids)
    if orphans.any():
        row = int(orphans.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{episodes_path}: row {row + 1}, column 'podcast_uuid': '{episodes['podcast_uuid'].iloc[row]}' is not a "
            f"uuid in {podcasts_path} ({int(orphans.sum())} episode(s) have no show); every episode must join its show"
        )
    return podcasts, episodes


def _clean_column(values: pd.Series, desc: str) -> list[str]:
    # Feeds repeat their descriptions (a show's boilerplate, mostly; the sample's share of distinct descriptions is in
    # bench/results/scale.md), and parsing markup is most of prepare's time: each distinct value is cleaned once.
    values = values.tolist()
    cleaned = {v: html_to_text(v) for v in tqdm(dict.fromkeys(values), desc=desc, unit="value", leave=False)}
    return [cleaned[v] for v in values]


def prepare_episodes(
    podcasts: pd.DataFrame,
    episodes: pd.DataFrame,
    *,
    seed: int,
    max_episodes: int | None = None,
    languages: list[str] | None = None,
) -> tuple[pd.DataFrame, PrepareReport]:
    """Join episodes to shows, clean the text, drop unusable rows (counted by reason), shuffle with `seed`, cap.

    The episode text is the recipe's `episode title. episode description. show title. show description`.
    """
    report = PrepareReport(episodes_in=len(episodes), shows_in=len(podcasts))
    shows = podcasts.assign(uuid=podcasts["uuid"].str.strip()).set_index("uuid")
    frame = pd.DataFrame(
        {
            "episode_id": episodes["uuid"].str.strip(),
            "show_id": episodes["podcast_uuid"].str.strip(),
            "title": _clean_column(episodes["title"], "clean episode titles"),
            "description": _clean_column(episodes["description"], "clean episode descriptions"),
            "pub_date": episodes["pub_date"].str.strip(),
            "audio": episodes["audio"].str.strip(),
        }
    )
    report.html_cleaned = int(episodes["description"].str.contains(r"<[a-zA-Z/!]|&[#a-zA-Z0-9]+;", regex=True).sum())
    show_title = dict(zip(shows.index, _clean_column(shows["title"], "clean show titles")))
    show_desc = dict(zip(shows.index, _clean_column(shows["description"], "clean show descriptions")))
    frame["show_title"] = frame["show_id"].map(show_title)
    frame["show_description"] = frame["show_id"].map(show_desc)
    frame["language"] = frame["show_id"].map(shows["language"].str.strip())

    def drop(mask: pd.Series, reason: str) -> None:
        nonlocal frame
        report.dropped[reason] = int(mask.sum())
        frame = frame[~mask]

    drop(frame["title"] == "", "empty_title")
    drop(frame["description"] == "", "empty_description")
    if languages:
        drop(~frame["language"].isin(languages), "language_not_selected")
    frame = frame.assign(
        text=[
            join_sentences(list(parts))
            for parts in zip(frame["title"], frame["description"], frame["show_title"], frame["show_description"])
        ]
    )
    # Sorting before dropping duplicates makes which copy survives independent of the input file order.
    frame = frame.sort_values("episode_id", kind="stable")
    drop(frame["text"].duplicated(keep="first"), "duplicate_text")
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    if max_episodes is not None and len(frame) > max_episodes:
        report.dropped["over_max_episodes"] = len(frame) - int(max_episodes)
        frame = frame.iloc[: int(max_episodes)].reset_index(drop=True)
    else:
        report.dropped["over_max_episodes"] = 0
    report.episodes_out = len(frame)
    if frame.empty:
        reasons = ", ".join(f"{n} {reason}" for reason, n in report.dropped.items() if n)
        raise DataError(f"no episode is left after cleaning: all {report.episodes_in} were dropped ({reasons}); "
                        "check the input files and prepare.languages / prepare.max_episodes in params.yaml")
    return frame.loc[:, list(PREPARED_COLUMNS)], report


def save_prepared(frame: pd.DataFrame, path: str | Path) -> Path:
    return write_parquet(frame, path, compression="zstd")


def load_prepared(path: str | Path = "data/prepared/episodes.parquet") -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found; run `dvc repro prepare` first")
    frame = read_parquet(path)
    missing = [c for c in PREPARED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; rebuild it with `dvc repro prepare`")
    return frame
