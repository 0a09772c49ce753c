"""Run files: every system's ranking of one query set, one row per (system, query, rank), as parquet (TREC's run
format, in columns). The evaluate stage writes them (data/eval/runs/); the report, the compare command and the
studies read them back, from the workspace or from any experiment's commit through DVC."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd

from podsearch.artifacts import reading
from podsearch.errors import PodsearchError

RUN_COLUMNS = ("system", "query_id", "episode_id", "rank", "score")


class RunFileError(PodsearchError, ValueError):
    """A run file without the columns or the system a reader needs."""


@dataclass
class Run:
    """One system's rankings of one query set, best first: ids[q] and their scores[q]."""

    ids: list[list[str]]
    scores: list[list[float]]
    seconds: float = 0.0
    exact_ids: list[list[str]] | None = None  # approximate indexes: what exact search returns, for the overlap

    def subset(self, keep: list[bool]) -> "Run":
        return Run([r for r, k in zip(self.ids, keep) if k], [s for s, k in zip(self.scores, keep) if k],
                   self.seconds, None if self.exact_ids is None else [r for r, k in zip(self.exact_ids, keep) if k])


def runs_frame(query_ids: list[str], runs: dict[str, Run]) -> pd.DataFrame:
    """Long format, one row per (system, query, rank), systems in `runs`' order."""
    columns: dict[str, list] = {c: [] for c in RUN_COLUMNS}
    for system, run in runs.items():
        for query_id, ids, scores in zip(query_ids, run.ids, run.scores):
            columns["system"] += [system] * len(ids)
            columns["query_id"] += [query_id] * len(ids)
            columns["episode_id"] += ids
            columns["rank"] += list(range(1, len(ids) + 1))
            columns["score"] += scores
    frame = pd.DataFrame(columns)
    return frame.astype({"system": "category", "rank": "int32", "score": "float32"})


def runs_from_frame(frame: pd.DataFrame, query_ids: list[str]) -> dict[str, Run]:
    """Per-system Runs back from a run file's rows, in `query_ids` order (a query a system did not rank: empty)."""
    missing = [c for c in RUN_COLUMNS if c not in frame.columns]
    if missing:
        raise RunFileError(f"run file without column(s) {', '.join(missing)}; expected {', '.join(RUN_COLUMNS)}")
    runs = {}
    frame = frame.sort_values(["system", "query_id", "rank"])
    for system, rows in frame.groupby("system", observed=True, sort=False):
        by_query = {q: (g["episode_id"].tolist(), g["score"].astype(float).tolist())
                    for q, g in rows.groupby("query_id", sort=False)}
        runs[str(system)] = Run([by_query.get(q, ([], []))[0] for q in query_ids],
                                [by_query.get(q, ([], []))[1] for q in query_ids])
    return runs


def read_runs(source: str | Path | IO[bytes], query_ids: list[str], name: str | None = None) -> dict[str, Run]:
    """The Runs of a run file: a path, or an open binary file (what dvc.api.open gives for an experiment's copy);
    `name` says which file in errors."""
    name = name or str(source)
    with reading(name):
        frame = pd.read_parquet(source)
    try:
        return runs_from_frame(frame, query_ids)
    except RunFileError as exc:
        raise RunFileError(f"{name}: {exc}") from None


def system_run(runs: dict[str, Run], system: str, name: str) -> Run:
    """One system's Run, or an error naming the run file and the systems it has."""
    if system not in runs:
        raise RunFileError(f"{name}: no system {system!r}; it has {', '.join(sorted(runs))}")
    return runs[system]
