"""Query generation from params to pairs: build the generators of the mix, run each over all episodes in resumable
shards, filter every candidate by the same rules, and assemble pairs and stats from the shards.

`querygen.mix` says how many queries per episode each generator contributes (0 leaves it out). Each generator writes
its own shards (shard_size episodes, in input order) under <shard_dir>/<generator>/, atomically, with every candidate
and its filter status, plus a fingerprint of the params, input and querygen code it came from. A rerun reuses every shard whose
fingerprint matches and generates only the rest, seeding each shard from (seed + shard index), so an interrupted run
finishes with exactly the output an uninterrupted one would have written; changing one generator's params leaves the
others' shards valid. Shards hold no timings: identical inputs give byte-identical shards.

With `compute.engine: ray` the missing shards are generated on a Ray actor pool (podsearch/compute.py), one
generator per actor, each shard from the same seed; the shards come back here and are written as they finish, so the
files, and pairs.parquet, are the local engine's to the byte.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from podsearch.artifacts import TEMP_PREFIX, reading, writing
from podsearch.compute import Compute, map_on_actors
from podsearch.errors import PodsearchError
from podsearch.querygen.base import EPISODE_COLUMNS, KEPT, SURPLUS, Candidate, QueryGenerator, judge, reason_counts
from podsearch.querygen.filters import DocumentFrequencies, tidy

log = logging.getLogger(__name__)

GENERATORS = ("pseudo", "keyword", "doc2query", "instruct")
# Bump when the shard layout changes, so old shards are not mixed with new ones. The code that decides what a shard
# holds (the generators and the filter rules) is hashed into the fingerprint instead (`code_digest`).
SHARD_FORMAT = 9
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


class QueryGenError(PodsearchError, ValueError):
    """Bad input or an inconsistent generator result, phrased for the person who has to fix it."""


@dataclass(frozen=True)
class FilterRules:
    queries_per_episode: int
    max_query_words: int
    copy_min_words: int
    min_content: float = 0.0


@dataclass
class GenerationContext:
    """What some generators need beyond the episodes: the keyword generator ranks phrases against the episode
    vectors the embed_base stage wrote, with the same encoder (train.base_model)."""

    base_model: str | None = None
    episode_vectors: dict[str, np.ndarray] = field(default_factory=dict)

    def vectors_digest(self) -> str:
        digest = hashlib.sha256()
        for episode_id in sorted(self.episode_vectors):
            digest.update(episode_id.encode())
            digest.update(np.ascontiguousarray(self.episode_vectors[episode_id], dtype=np.float32).tobytes())
        return digest.hexdigest()


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


def check_mix(params: dict[str, Any]) -> dict[str, int]:
    """querygen.mix as {generator: queries per episode}, only those above 0, in GENERATORS order."""
    mix = params.get("mix")
    if not isinstance(mix, dict):
        raise QueryGenError("params.yaml querygen.mix: expected {generator: queries per episode, ...}")
    unknown = sorted(set(mix) - set(GENERATORS))
    if unknown:
        raise QueryGenError(f"params.yaml querygen.mix.{unknown[0]}: unknown generator; expected some of "
                            f"{', '.join(GENERATORS)}")
    counts = {}
    for name in GENERATORS:
        try:
            count = int(mix.get(name) or 0)
        except (TypeError, ValueError):
            raise QueryGenError(f"params.yaml querygen.mix.{name}: {mix.get(name)!r} is not a whole number") from None
        if count < 0:
            raise QueryGenError(f"params.yaml querygen.mix.{name}: must be >= 0, got {count}")
        if count:
            counts[name] = count
    if not counts:
        raise QueryGenError("params.yaml querygen.mix: every generator is at 0; nothing would be generated")
    return counts


def make_generator(name: str, count: int, params: dict[str, Any], context: GenerationContext,
                   frequencies: DocumentFrequencies, device: str = "auto") -> QueryGenerator:
    """The generator `name`, configured from its params subsection (nothing loaded yet). `frequencies`: the
    corpus's word statistics, which the keyword generator ranks candidate phrases with."""
    if name == "pseudo":
        from podsearch.querygen.pseudo import PseudoGenerator

        return PseudoGenerator(max_query_words=params["max_query_words"])
    if name == "keyword":
        from podsearch.querygen.keyword import KeywordGenerator

        p = params["keyword"]
        if not context.base_model or not context.episode_vectors:
            raise QueryGenError("the keyword generator needs the base model and the episode vectors of embed_base")
        return KeywordGenerator(
            context.base_model, context.episode_vectors, frequencies, max_words=p["max_words"],
            candidates=p["candidates"], diversity=p["diversity"], batch_size=p["batch_size"],
        )
    if name == "doc2query":
        from podsearch.querygen.doc2query import Doc2QueryGenerator

        p = params["doc2query"]
        return Doc2QueryGenerator(
            p["model"], num_queries=count, max_input_tokens=p["max_input_tokens"], max_length=p["max_length"],
            top_p=p["top_p"], batch_size=p["batch_size"], device=device,
        )
    if name == "instruct":
        from podsearch.querygen.instruct import InstructGenerator

        p = params["instruct"]
        return InstructGenerator(
            p["model"], num_queries=count, max_input_tokens=p["max_input_tokens"],
            max_new_tokens=p["max_new_tokens"], temperature=p["temperature"], top_p=p["top_p"],
            batch_size=p["batch_size"], gguf_file=p.get("gguf_file"), device=device,
        )
    raise QueryGenError(f"unknown generator {name!r}; expected one of {', '.join(GENERATORS)}")


def generator_config(name: str, count: int, params: dict[str, Any], context: GenerationContext) -> dict[str, Any]:
    """The params that shape one generator's output: the shared keys, its own count and subsection (and for keyword
    the encoder and the episode vectors), so tuning another generator does not invalidate its finished shards."""
    shared = {k: v for k, v in params.items() if k not in (*GENERATORS, "mix")}
    config = {**shared, "generator": name, "count": count, name: params.get(name)}
    if name == "keyword":
        config.update(base_model=context.base_model, vectors=context.vectors_digest())
    return config


@functools.lru_cache(maxsize=None)
def code_digest(folder: Path = Path(__file__).resolve().parent) -> str:
    """Hash of the querygen package's source (generators, filters, this runner). A shard stores each candidate's
    filter status, so a shard written before a rule changed must not be resumed after it; hashing the code makes that
    automatic, where a hand-bumped version number is forgotten. Any edit here regenerates every generator's shards
    (one minute for the default mix on the sample), which the stage reruns for anyway: DVC tracks this code as a dep."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fingerprint(episodes: pd.DataFrame, config: dict[str, Any]) -> str:
    """Hash of the generator config, the querygen code and every input cell a generator reads: any change
    invalidates all shards."""
    digest = hashlib.sha256(json.dumps({"format": SHARD_FORMAT, "code": code_digest(), **config},
                                       sort_keys=True).encode())
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
    """Delete temp files (a killed run's) and shards from another fingerprint or beyond the shard count, so none is
    ever reused."""
    for path in sorted(folder.glob(f"{TEMP_PREFIX}*")):
        shutil.rmtree(path)
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
    with writing(path) as tmp:  # a shard file is either complete or absent
        pq.write_table(table, tmp)


def _generate_shard(generator: QueryGenerator, shard: pd.DataFrame, seed: int, rules: FilterRules,
                    frequencies: DocumentFrequencies, bar: tqdm) -> dict[str, list]:
    candidates = generator.generate(shard, seed, bar.update)
    if len(candidates) != len(shard):
        raise QueryGenError(
            f"generator '{generator.name}' returned {len(candidates)} results for {len(shard)} episodes"
        )
    rows: dict[str, list] = {name: [] for name in _SHARD_SCHEMA.names}
    for episode, cands in zip(shard.itertuples(index=False), candidates):
        cands = [Candidate(tidy(c.query), c.generator, c.passage) for c in cands]
        statuses = judge(
            cands, episode.description, max_words=rules.max_query_words, copy_min_words=rules.copy_min_words,
            limit=rules.queries_per_episode, show_title=episode.show_title, show_id=episode.show_id,
            title=episode.title, frequencies=frequencies, min_content=rules.min_content,
        )
        for cand, status in zip(cands, statuses):
            rows["episode_id"].append(episode.episode_id)
            rows["query"].append(cand.query)
            rows["generator"].append(cand.generator)
            rows["passage"].append(cand.passage)
            rows["status"].append(status)
    return rows


class ShardWorker:
    """run_shards' work on a Ray actor: builds its generator on the actor (so the model picks the actor's device and
    dtype) and loads it once, then generates and judges whole shards; the driver writes the files."""

    def __init__(self, build: Callable[[], QueryGenerator], rules: FilterRules, frequencies: DocumentFrequencies):
        self.generator, self.rules, self.frequencies = build(), rules, frequencies
        self.generator.load()

    def __call__(self, item: tuple[int, pd.DataFrame]) -> dict[str, list]:
        seed, shard = item
        return _generate_shard(self.generator, shard, seed, self.rules, self.frequencies, _NoProgress())


class _NoProgress:
    def update(self, n: int = 1) -> None:
        """An actor has no bar to draw: the driver counts episodes as shards come back."""


def _itself(generator: QueryGenerator) -> QueryGenerator:
    return generator


def run_shards(
    generator: QueryGenerator,
    episodes: pd.DataFrame,
    folder: str | Path,
    *,
    shard_size: int,
    seed: int,
    rules: FilterRules,
    frequencies: DocumentFrequencies,
    config: dict[str, Any],
    compute: Compute | None = None,
    build: Callable[[], QueryGenerator] | None = None,
) -> dict[str, Any]:
    """Make sure every shard exists for this fingerprint, generating the missing ones; returns run statistics and
    the seconds spent (for the timings log, never for the shards).

    With a ray `compute`, each actor builds its generator with `build` (default: a copy of `generator`, unloaded)
    and the driver never loads a model.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(episodes, config)
    n_shards = -(-len(episodes) // shard_size)
    _clear_stale(folder, fp, n_shards)
    todo = [i for i in range(n_shards) if not _shard_path(folder, i).exists()]
    done_episodes = len(episodes) - sum(len(episodes.iloc[i * shard_size:(i + 1) * shard_size]) for i in todo)
    if n_shards > len(todo):
        log.info("resuming: %d of %d shard(s) already in %s", n_shards - len(todo), n_shards, folder)
    on_ray = compute is not None and compute.is_ray
    started = time.perf_counter()
    if todo and not on_ray:
        generator.load()
    loaded = time.perf_counter()
    with tqdm(total=len(episodes), initial=done_episodes, unit="episode", desc=f"querygen {generator.name}") as bar:
        shards = ((i, episodes.iloc[i * shard_size:(i + 1) * shard_size]) for i in todo)
        if on_ray:
            worker = functools.partial(ShardWorker, build or functools.partial(_itself, generator), rules,
                                       frequencies)
            shards = list(shards)
            results = ((shards[k][0], shards[k][1], rows) for k, rows in map_on_actors(
                compute, [(seed + i, shard) for i, shard in shards], worker, what=f"querygen {generator.name}",
                labels=[f"shard {i} ({_shard_path(folder, i)})" for i, _ in shards]))
        else:
            results = ((i, shard, _generate_shard(generator, shard, seed + i, rules, frequencies, bar))
                       for i, shard in shards)
        for i, shard, rows in results:
            _write_shard(_shard_path(folder, i), rows, {"fingerprint": fp, "episodes": str(len(shard))})
            if on_ray:
                bar.update(len(shard))
    generated = len(episodes) - done_episodes
    seconds = time.perf_counter() - loaded
    return {
        # How many shards were reused depends on the run's history, not its inputs: a timing, not a stat.
        "stats": {"fingerprint": fp, "shards": n_shards},
        "timings": {"shards_reused": n_shards - len(todo), "engine": "ray" if on_ray else "local", "model_load_seconds": round(loaded - started, 3),
                    "generation_seconds": round(seconds, 3), "episodes_generated": generated,
                    "episodes_per_second": round(generated / seconds, 3) if generated and seconds else None},
    }


def collect(folder: str | Path, n_shards: int) -> tuple[pd.Series, pd.DataFrame]:
    """Every candidate's status, and the kept candidates with their text, in order.

    Shards are filtered one at a time: rejected and surplus candidates carry a passage each (the episode text), and
    holding all of them at once took the stage's peak memory at full size past the 8 GB budget (docs/scale.md). The
    kept rows become one array per column, as filtering the whole table did: the parquet writer pages a column of
    many pieces differently, and a byte-different (if frame-equal) pairs.parquet would make DVC rerun every stage
    after this one.
    """
    statuses, kept = [_SHARD_SCHEMA.empty_table().select(["status"])], [_SHARD_SCHEMA.empty_table()]
    for i in range(n_shards):
        with reading(_shard_path(Path(folder), i)) as path:
            table = pq.read_table(path)
        statuses.append(table.select(["status"]))
        kept.append(table.filter(pc.equal(table["status"], KEPT)))
    return (pa.concat_tables(statuses).column("status").to_pandas(),
            pa.concat_tables(kept).combine_chunks().to_pandas())


def assemble(statuses: pd.Series, kept: pd.DataFrame, episodes: pd.DataFrame, rules: FilterRules
             ) -> tuple[pd.DataFrame, dict]:
    """One generator's pairs (its kept candidates) and the filter/count part of its stats.

    `passage` is kept as a column only when the generator set it (pseudo); null there means "the episode text".
    """
    columns = list(PAIR_COLUMNS) + (["passage"] if kept["passage"].notna().any() else [])
    pairs = kept.loc[:, columns].reset_index(drop=True)
    per_episode = pairs.groupby("episode_id").size().reindex(episodes["episode_id"], fill_value=0)
    n = rules.queries_per_episode
    stats = {
        "pairs": len(pairs),
        "candidates": len(statuses),
        "rejected": reason_counts(statuses),
        "surplus_candidates": int((statuses == SURPLUS).sum()),
        "episodes_with_fewer_queries": int((per_episode < n).sum()),
        "episodes_without_queries": int((per_episode == 0).sum()),
        "episodes_by_query_count": {str(k): int(v) for k, v in sorted(Counter(per_episode.tolist()).items())},
        "queries_by_generator": {k: int(v) for k, v in sorted(Counter(pairs["generator"]).items())},
    }
    return pairs, stats


def generate_pairs(
    episodes: pd.DataFrame,
    params: dict[str, Any],
    shard_dir: str | Path,
    *,
    context: GenerationContext | None = None,
    source: str = "episodes",
    compute: Compute | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """Pairs for every episode from every generator of the mix (resuming from `shard_dir`), their stats (counts,
    deterministic) and timings (wall time, for the log only). `compute`: where the missing shards are generated
    (None: here); the output is the same on either engine."""
    episodes = check_episodes(episodes, source)
    context = context or GenerationContext()
    mix = check_mix(params)
    _drop_unmixed(Path(shard_dir), mix)
    frequencies = DocumentFrequencies(episodes["text"], episodes["show_id"], episodes["title"])
    all_pairs, stats, timings = [], {"episodes": len(episodes), "mix": mix, "generators": {}}, {}
    for name, count in mix.items():
        generator = make_generator(name, count, params, context, frequencies)
        rules = FilterRules(queries_per_episode=count, max_query_words=params["max_query_words"],
                            copy_min_words=params["copy_min_words"], min_content=float(params["min_content"]))
        device, build = getattr(generator, "device", "cpu"), None
        if compute is not None and compute.is_ray:
            # Built on each actor for the actor's device: the driver may have no GPU, or another one.
            build = functools.partial(make_generator, name, count, _untracked(params), context, frequencies,
                                      compute.device)
            device = compute.device if hasattr(generator, "device") else device
        config = {**generator_config(name, count, params, context),
                  # Sampling differs between devices, so shards made on a GPU are not resumed on a CPU.
                  "device": device}
        run = run_shards(generator, episodes, Path(shard_dir) / name, shard_size=params["shard_size"],
                         seed=params["seed"], rules=rules, frequencies=frequencies, config=config,
                         compute=compute, build=build)
        pairs, generator_stats = assemble(*collect(Path(shard_dir) / name, run["stats"]["shards"]), episodes, rules)
        stats["generators"][name] = {**generator_stats, **run["stats"]}
        timings[name] = run["timings"]
        all_pairs.append(pairs)
    pairs = pd.concat(all_pairs, ignore_index=True)
    if "passage" not in pairs.columns:
        pairs["passage"] = None
    per_episode = pairs.groupby("episode_id").size().reindex(episodes["episode_id"], fill_value=0)
    stats.update(pairs=len(pairs), episodes_without_queries=int((per_episode == 0).sum()),
                 query_words=query_length_stats(pairs["query"]))
    return pairs, stats, timings


def _drop_unmixed(shard_dir: Path, mix: dict[str, int]) -> None:
    """Remove shards of generators not in the mix (and files of older shard layouts), so the shard folder, a DVC
    output, holds exactly what this mix produced whatever ran before it."""
    if not shard_dir.is_dir():
        return
    for entry in sorted(shard_dir.iterdir()):
        if entry.is_dir() and entry.name in mix:
            continue
        log.info("removing %s: not a shard of this mix (%s)", entry, ", ".join(mix))
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _untracked(params: Any) -> Any:
    """params as plain dicts (dict.items: no read recorded), to ship to Ray actors: what they unpickle must not
    depend on the params audit's bookkeeping class."""
    return {k: _untracked(v) for k, v in dict.items(params)} if isinstance(params, dict) else params


def query_length_stats(queries: pd.Series) -> dict[str, float]:
    lengths = queries.str.split().str.len()
    return {"median": float(lengths.median()), "mean": round(float(lengths.mean()), 3)} if len(lengths) else {}
