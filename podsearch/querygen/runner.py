"""Running a generator over all episodes in resumable shards, then assembling pairs and metrics from the shards.

Each shard (shard_size episodes, in input order) is written atomically with every candidate and its filter status,
plus a fingerprint of the params and input it came from. A rerun reuses every shard whose fingerprint matches and
generates only the rest, seeding each shard from (seed + shard index), so an interrupted run finishes with exactly
the output an uninterrupted one would have written. Pairs and metrics are computed from the shards alone.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from podsearch.querygen.base import EPISODE_COLUMNS, KEPT, SURPLUS, QueryGenerator, judge, reason_counts

log = logging.getLogger(__name__)

# Bump when the shard layout or the filter rules change, so old shards are not mixed with new ones.
SHARD_FORMAT = 1
PAIR_COLUMNS = ("query", "episode_id", "generator")
_SHARD_SCHEMA = pa.schema(
    [
        ("episode_id", pa.string()),
        ("query", pa.string()),
        ("generator", pa.string()),
        ("passage", pa.string()),
        ("status", pa.string()),
    ]
)


class QueryGenError(ValueError):
    """Bad input or an inconsistent generator result, phrased for the person who has to fix it."""


@dataclass(frozen=True)
class FilterRules:
    queries_per_episode: int
    max_query_words: int
    copy_min_words: int


def check_episodes(episodes: pd.DataFrame, source: str) -> pd.DataFrame:
    """The generator columns as strings (missing cells -> ""), or a clear error naming what is missing."""
    missing = [c for c in EPISODE_COLUMNS if c not in episodes.columns]
    if missing:
        raise QueryGenError(
            f"{source}: missing column(s) {', '.join(missing)}; expected the prepared episode table "
            f"({', '.join(EPISODE_COLUMNS)})"
        )
    frame = episodes.loc[:, list(EPISODE_COLUMNS)].fillna("").astype(str).reset_index(drop=True)
    dup = frame["episode_id"].duplicated()
    if dup.any():
        row = int(dup.to_numpy().nonzero()[0][0])
        raise QueryGenError(f"{source}: row {row + 1}, column 'episode_id': '{frame.episode_id[row]}' repeats")
    return frame


def fingerprint(episodes: pd.DataFrame, config: dict[str, Any]) -> str:
    """Hash of the generator config and every input cell a generator reads: any change invalidates all shards."""
    digest = hashlib.sha256(json.dumps({"format": SHARD_FORMAT, **config}, sort_keys=True).encode())
    for row in episodes.itertuples(index=False):
        digest.update("\x1f".join(row).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def _shard_path(folder: Path, index: int) -> Path:
    return folder / f"shard-{index:05d}.parquet"


def _shard_meta(path: Path) -> dict[str, str]:
    try:
        raw = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError):
        return {}
    return {k.decode(): v.decode() for k, v in raw.items()}


def _clear_stale(folder: Path, fp: str, n_shards: int) -> None:
    """Delete temp files and shards from another fingerprint or beyond the shard count, so none is ever reused."""
    for path in sorted(folder.glob("*.tmp")):
        path.unlink()
    stale = [
        p for p in sorted(folder.glob("shard-*.parquet"))
        if _shard_meta(p).get("fingerprint") != fp or int(p.stem.split("-")[1]) >= n_shards
    ]
    if stale:
        log.info("discarding %d shard(s) in %s from other params or input", len(stale), folder)
    for path in stale:
        path.unlink()


def _write_shard(path: Path, rows: dict[str, list], meta: dict[str, str]) -> None:
    table = pa.Table.from_pydict(rows, schema=_SHARD_SCHEMA).replace_schema_metadata(meta)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # atomic: a shard file is either complete or absent


def _generate_shard(
    generator: QueryGenerator, shard: pd.DataFrame, seed: int, rules: FilterRules, bar: tqdm
) -> dict[str, list]:
    candidates = generator.generate(shard, seed, bar.update)
    if len(candidates) != len(shard):
        raise QueryGenError(
            f"generator '{generator.name}' returned {len(candidates)} results for {len(shard)} episodes"
        )
    rows: dict[str, list] = {name: [] for name in _SHARD_SCHEMA.names}
    for episode, cands in zip(shard.itertuples(index=False), candidates):
        statuses = judge(
            cands,
            episode.description,
            max_words=rules.max_query_words,
            copy_min_words=rules.copy_min_words,
            limit=rules.queries_per_episode,
        )
        for cand, status in zip(cands, statuses):
            rows["episode_id"].append(episode.episode_id)
            rows["query"].append(cand.query)
            rows["generator"].append(cand.generator)
            rows["passage"].append(cand.passage)
            rows["status"].append(status)
    return rows


def run_shards(
    generator: QueryGenerator,
    episodes: pd.DataFrame,
    folder: str | Path,
    *,
    shard_size: int,
    seed: int,
    rules: FilterRules,
    config: dict[str, Any],
) -> dict[str, Any]:
    """Make sure every shard exists for this fingerprint, generating the missing ones; returns run statistics."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(episodes, config)
    n_shards = -(-len(episodes) // shard_size)
    _clear_stale(folder, fp, n_shards)
    todo = [i for i in range(n_shards) if not _shard_path(folder, i).exists()]
    done_episodes = len(episodes) - sum(len(episodes.iloc[i * shard_size:(i + 1) * shard_size]) for i in todo)
    if n_shards > len(todo):
        log.info("resuming: %d of %d shard(s) already in %s", n_shards - len(todo), n_shards, folder)
    load_s = 0.0
    if todo:
        start = time.perf_counter()
        generator.load()
        load_s = time.perf_counter() - start
    with tqdm(total=len(episodes), initial=done_episodes, unit="episode", desc=f"querygen {generator.name}") as bar:
        for i in todo:
            shard = episodes.iloc[i * shard_size:(i + 1) * shard_size]
            start = time.perf_counter()
            rows = _generate_shard(generator, shard, seed + i, rules, bar)
            meta = {"fingerprint": fp, "seconds": f"{time.perf_counter() - start:.6f}", "episodes": str(len(shard))}
            _write_shard(_shard_path(folder, i), rows, meta)
    return {
        "fingerprint": fp,
        "shards": n_shards,
        "shards_reused": n_shards - len(todo),
        "model_load_seconds": round(load_s, 3),
    }


def collect(folder: str | Path, n_shards: int) -> tuple[pd.DataFrame, float]:
    """Every candidate of every shard in order, and the summed generation seconds recorded in the shards."""
    paths = [_shard_path(Path(folder), i) for i in range(n_shards)]
    if not paths:
        return _SHARD_SCHEMA.empty_table().to_pandas(), 0.0
    seconds = sum(float(_shard_meta(p)["seconds"]) for p in paths)
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True), seconds


def assemble(candidates: pd.DataFrame, episodes: pd.DataFrame, rules: FilterRules) -> tuple[pd.DataFrame, dict]:
    """The pairs table (kept candidates) and the filter/count part of the metrics.

    `passage` is kept as a column only when some generator set it (pseudo); null there means "the episode text".
    """
    kept = candidates[candidates["status"] == KEPT]
    columns = list(PAIR_COLUMNS) + (["passage"] if kept["passage"].notna().any() else [])
    pairs = kept.loc[:, columns].reset_index(drop=True)
    per_episode = pairs.groupby("episode_id").size().reindex(episodes["episode_id"], fill_value=0)
    n = rules.queries_per_episode
    metrics = {
        "episodes": len(episodes),
        "pairs": len(pairs),
        "candidates": len(candidates),
        "rejected": reason_counts(candidates["status"]),
        "surplus_candidates": int((candidates["status"] == SURPLUS).sum()),
        "episodes_with_fewer_queries": int((per_episode < n).sum()),
        "episodes_without_queries": int((per_episode == 0).sum()),
        "episodes_by_query_count": {str(k): int(v) for k, v in sorted(Counter(per_episode.tolist()).items())},
        "queries_by_generator": {k: int(v) for k, v in sorted(Counter(pairs["generator"]).items())},
    }
    return pairs, metrics
