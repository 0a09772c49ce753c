"""Full-retrieval evaluation: every query against an index of every candidate episode, for every system, with the
uncertainty that says whether a difference between two systems is more than noise.

The recipe this replaces looped query by query and indexed only a sample of episodes; here each system encodes its
queries in one batch and answers them with one top-k call over an index of all candidates (test episodes for the
synthetic queries, all prepared episodes for the curated ones). Document vectors are rows of the embed stage's
matrices, never re-encoded. Fused systems (`hybrid`, `shipped`, ...) combine the single systems' rankings as
params.yaml's `fusion` section defines them, exactly as the search service does.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from podsearch.artifacts import read_parquet
from podsearch.config import from_section
from podsearch.curated import CuratedQuery, load_judgments, load_queries, relevant_sets
from podsearch.data import load_prepared
from podsearch.embeddings import encode_texts, rows_for
from podsearch.encoders import Encoder
from podsearch.errors import PodsearchError, require
from podsearch.metrics import first_relevant_rank, overlap_at_k, per_query, recall_curve
from podsearch.retrieval.bm25 import BM25Index
from podsearch.retrieval.fusion import Fusion
from podsearch.retrieval.index import make_index
from podsearch.runfiles import Run, runs_frame
from podsearch.stats import bootstrap_ci, paired_randomization_test

DENSE_SYSTEMS = ("base", "finetuned", "use", "e5")
SINGLE_SYSTEMS = ("base", "finetuned", "bm25", "use", "e5")
SHIPPED = "shipped"
HEADLINE = ("recall@10", "recall@30", "mrr@30")  # with CIs and paired tests; the rest is detail
DETAIL = ("recall@1", "recall@5", "recall@10", "recall@30", "mrr@10", "mrr@30", "ndcg@10")
BASELINES = ("base", "bm25")  # every system is tested against these; `shipped` against every system
CURVE_MAX_K = 30
log = logging.getLogger(__name__)


class EvaluationError(PodsearchError, ValueError):
    """Bad evaluation input (curated files, splits, systems); the stage prints it as one line."""


@dataclass
class QuerySet:
    name: str
    ids: list[str]
    queries: list[str]
    relevant: list[set[str]]
    judged: list[set[str]] | None = None  # curated: every judged episode, relevant or not
    attributes: list[dict] = field(default_factory=list)  # curated: style and language of each query

    def __len__(self) -> int:
        return len(self.queries)

    def subset(self, name: str, keep: list[bool]) -> "QuerySet":
        pick = [i for i, k in enumerate(keep) if k]
        return QuerySet(name, [self.ids[i] for i in pick], [self.queries[i] for i in pick],
                        [self.relevant[i] for i in pick], None if self.judged is None else [self.judged[i] for i in pick],
                        [self.attributes[i] for i in pick] if self.attributes else [])


@dataclass
class Corpus:
    """The candidate episodes one query set is searched against."""

    ids: list[str]
    texts: list[str]


@dataclass
class DenseModel:
    """A system's stored document vectors (aligned with `ids`) and the encoder for its queries."""

    ids: list[str]
    matrix: np.ndarray
    encoder: Encoder


# ------------------------------------------------------------------------------------------------ query sets


def synthetic_queries(pairs: pd.DataFrame, known_ids: set[str], source: str = "test split") -> QuerySet:
    """Test-split (query, episode_id) pairs as a query set. Identical query strings are merged with the union of
    their episodes as relevant: otherwise a generic generated query ("episode 12") would count as a miss for every
    episode but the one it happened to be generated from."""
    missing = [c for c in ("query", "episode_id") if c not in pairs.columns]
    if missing:
        raise EvaluationError(f"{source}: missing column(s) {', '.join(missing)}")
    if pairs.empty:
        raise EvaluationError(f"{source}: no query pairs")
    unknown = sorted(set(pairs["episode_id"].astype(str)) - known_ids)
    if unknown:
        raise EvaluationError(
            f"{source}: episode id {unknown[0]} is not in the prepared episodes ({len(unknown)} such ids)")
    grouped = pairs.assign(query=pairs["query"].astype(str).str.strip()).groupby("query", sort=True)["episode_id"]
    queries, relevant = [], []
    for query, ids in grouped:
        if query:
            queries.append(query)
            relevant.append(set(ids.astype(str)))
    return QuerySet("synthetic", [f"s{i:05d}" for i in range(1, len(queries) + 1)], queries, relevant)


def curated_query_set(queries: list[CuratedQuery], judgments: pd.DataFrame) -> QuerySet:
    """Every curated query (judged or not: runs are written for all, so new queries can be pooled and judged)."""
    relevant = relevant_sets(queries, judgments)
    judged = judgments.groupby("query_id")["episode_id"].agg(set).to_dict()
    return QuerySet("curated", [q.id for q in queries], [q.query for q in queries], [relevant[q.id] for q in queries],
                    [set(judged.get(q.id, set())) for q in queries],
                    [{"style": q.style, "language": q.language, "split": q.split} for q in queries])


def curated_splits(curated: QuerySet) -> dict[str, list[bool]]:
    """curated_dev and curated_test: the queries of each split that have at least one relevant episode judged."""
    scored = [bool(r) for r in curated.relevant]
    return {f"curated_{split}": [s and a["split"] == split for s, a in zip(scored, curated.attributes)]
            for split in ("dev", "test")}


@dataclass(frozen=True)
class EvaluateConfig:
    """params.yaml `evaluate`."""

    index: str = "exact"          # exact | hnsw | pinecone
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    depth: int = 100
    batch_size: int = 64
    seed: int = 42
    resamples: int = 10000
    pinecone_index: str = "podcast-search-eval"
    pinecone_cloud: str = "aws"
    pinecone_region: str = "us-east-1"

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "EvaluateConfig":
        return from_section(cls, params, "evaluate")

    def runner(self, fusions: dict[str, Fusion]) -> "Runner":
        options = {} if self.index == "exact" else {
            "m": self.hnsw_m, "ef_search": self.hnsw_ef_search,
            "name": self.pinecone_index, "cloud": self.pinecone_cloud, "region": self.pinecone_region}
        return Runner(index_kind=self.index, index_options=options, depth=self.depth, batch_size=self.batch_size,
                      fusions=fusions)

    def stats(self) -> "StatsConfig":
        return StatsConfig(seed=self.seed, n_resamples=self.resamples)


@dataclass
class EvalData:
    """What evaluate and check_int8 search: the prepared episodes and both query sets, each with the corpus it is
    searched over (synthetic queries: every test episode; curated: every episode) and the parts it is scored on."""

    episode_ids: list[str]
    synthetic: QuerySet
    curated: QuerySet
    corpora: dict[str, Corpus]

    def scopes(self) -> list[tuple[QuerySet, Corpus, dict[str, list[bool]]]]:
        return [(self.synthetic, self.corpora["synthetic"], {"synthetic": [True] * len(self.synthetic)}),
                (self.curated, self.corpora["curated"], curated_splits(self.curated))]


EVAL_INPUTS = (("prepared", "data/prepared/episodes.parquet"), ("test", "data/splits/test.parquet"),
               ("queries", "data/curated/queries.yaml"), ("judgments", "data/curated/judgments.tsv"),
               ("embeddings", "data/embeddings"))


def add_input_arguments(parser) -> None:
    """The files evaluate and check_int8 both read, as --options defaulting to the pipeline's paths."""
    for name, default in EVAL_INPUTS:
        parser.add_argument(f"--{name}", default=default)


def load_eval_data(prepared: str, test: str, queries: str, judgments: str) -> EvalData:
    episodes = load_prepared(require(prepared, "prepare"))
    all_ids = episodes["episode_id"].tolist()
    known = set(all_ids)
    synthetic = synthetic_queries(read_parquet(require(test, "split")), known, source=str(test))
    curated_queries = load_queries(queries, known)
    curated = curated_query_set(curated_queries, load_judgments(judgments, {q.id for q in curated_queries}, known))
    text_of = dict(zip(all_ids, episodes["text"]))
    test_ids = sorted(set().union(*synthetic.relevant))
    return EvalData(all_ids, synthetic, curated, {"synthetic": Corpus(test_ids, [text_of[i] for i in test_ids]),
                                                  "curated": Corpus(all_ids, episodes["text"].tolist())})


@dataclass
class Evaluation:
    """Everything evaluate writes: headline metrics with CIs and tests, details, sizes, run files and curves."""

    metrics: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)
    runs: dict[str, pd.DataFrame] = field(default_factory=dict)      # query set -> run file rows
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)    # scored part -> recall@k table


def evaluate(data: EvalData, runner: Runner, systems: list[str], models: dict[str, DenseModel],
             stats: StatsConfig) -> Evaluation:
    """Every system on both query sets; each scored part (synthetic, curated_dev, curated_test) gets its metrics
    with bootstrap CIs and paired tests, per-subset scores for the curated parts, details and recall curves."""
    result = Evaluation()
    for query_set, corpus, parts in data.scopes():
        runs = runner.run(systems, models, corpus, query_set)
        result.runs[query_set.name] = runs_frame(query_set.ids, runs)
        for part_name, keep in parts.items():
            part = query_set.subset(part_name, keep)
            if not len(part):
                raise EvaluationError(f"{part_name}: no query with a judged relevant episode")
            part_runs = {s: r.subset(keep) for s, r in runs.items()}
            log.info("%s: %d queries, bootstrap and paired tests (%d resamples)", part_name, len(part),
                     stats.n_resamples)
            result.metrics[part_name] = score_set(part_runs, part, stats)
            if part_name.startswith("curated"):
                result.metrics[part_name]["by_subset"] = score_subsets(part_runs, part, stats)
            result.details[part_name] = details(part_runs, part)
            result.sizes[part_name] = {"queries": len(part), "episodes": len(corpus.ids)}
            result.curves[part_name] = recall_curves(part_runs, part)
    result.sizes["curated_unjudged"] = sum(1 for r in data.curated.relevant if not r)
    return result


def subsets(query_set: QuerySet) -> dict[str, list[bool]]:
    """The slices of a curated set the acceptance criteria read: each query style, English and not English."""
    styles = [a["style"] for a in query_set.attributes]
    english = [a["language"] == "en" for a in query_set.attributes]
    slices = {f"style={style}": [s == style for s in styles] for style in sorted(set(styles))}
    slices["language=en"] = english
    slices["language=other"] = [not e for e in english]
    return {name: keep for name, keep in slices.items() if any(keep)}


# ------------------------------------------------------------------------------------------------ running


def system_order(fusions: Mapping[str, Fusion]) -> list[str]:
    return [*SINGLE_SYSTEMS, *fusions]


def needed_systems(systems: list[str], fusions: Mapping[str, Fusion]) -> list[str]:
    """The single systems that must run for `systems`, fused ones' parts included, in a fixed order."""
    needed = set(systems)
    for name in systems:
        if name in fusions:
            needed.update(fusions[name].parts)
    unknown = sorted(needed - set(SINGLE_SYSTEMS) - set(fusions))
    if unknown:
        raise EvaluationError(f"unknown system {unknown[0]!r}; expected some of {', '.join(system_order(fusions))}")
    return [s for s in SINGLE_SYSTEMS if s in needed]


@dataclass
class Runner:
    """Runs every system on one query set and keeps its rankings."""

    index_kind: str = "exact"
    index_options: dict = field(default_factory=dict)
    depth: int = 100          # ranking depth kept per system (>= max k, and the fusion candidate depth)
    batch_size: int = 64
    fusions: dict[str, Fusion] = field(default_factory=dict)

    def dense(self, name: str, model: DenseModel, corpus: Corpus, query_set: QuerySet) -> Run:
        vectors = rows_for(model.ids, model.matrix, corpus.ids, what=f"{name} embeddings")
        options = dict(self.index_options, namespace=f"{query_set.name}-{name}")
        if "name" in options:  # a hosted index has one dimension, and USE (512) differs from MiniLM (384)
            options["name"] = f"{options['name']}-d{vectors.shape[1]}"
        index = make_index(self.index_kind, vectors.shape[1], **options)
        index.add(corpus.ids, vectors)
        started = time.perf_counter()
        queries = encode_texts(model.encoder, query_set.queries, self.batch_size, desc=f"{name} queries")
        scores, ranked = index.search(queries, self.depth)
        run = Run(ranked, _rows(scores, ranked), time.perf_counter() - started)
        if self.index_kind != "exact":
            exact = make_index("exact", vectors.shape[1])
            exact.add(corpus.ids, vectors)
            run.exact_ids = exact.search(queries, self.depth)[1]
        return run

    def bm25(self, corpus: Corpus, query_set: QuerySet) -> Run:
        index = BM25Index(corpus.ids, corpus.texts)
        started = time.perf_counter()
        scores, ranked = index.search(query_set.queries, self.depth)
        return Run(ranked, _rows(scores, ranked), time.perf_counter() - started)

    def run(self, systems: list[str], models: dict[str, DenseModel], corpus: Corpus, query_set: QuerySet
            ) -> dict[str, Run]:
        singles = needed_systems(systems, self.fusions)
        log.info("%s: %d queries over %d episodes, systems %s, index %s",
                 query_set.name, len(query_set), len(corpus.ids), ",".join(systems), self.index_kind)
        runs: dict[str, Run] = {}
        for name in singles:
            runs[name] = self.bm25(corpus, query_set) if name == "bm25" else self.dense(
                name, models[name], corpus, query_set)
            log.info("%s/%s: searched in %.2fs", query_set.name, name, runs[name].seconds)
        for name in [s for s in systems if s in self.fusions]:
            fusion = self.fusions[name]
            started = time.perf_counter()
            scores, ids = fusion.fuse({p: (runs[p].scores, runs[p].ids) for p in fusion.parts}, self.depth)
            runs[name] = Run(ids, scores, time.perf_counter() - started + sum(runs[p].seconds for p in fusion.parts))
        return {name: runs[name] for name in systems}


def _rows(scores: np.ndarray, ranked: list[list[str]]) -> list[list[float]]:
    return [[float(s) for s in row[: len(ids)]] for row, ids in zip(scores, ranked)]


# ------------------------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class StatsConfig:
    seed: int = 42
    n_resamples: int = 10_000


def score_set(runs: dict[str, Run], query_set: QuerySet, stats: StatsConfig) -> dict:
    """eval.json's entry for one query set: per system the headline means and their 95% CIs, then the paired tests
    (`significance`, a list so that `dvc metrics show` lists only the means)."""
    values = {system: {m: per_query(run.ids, query_set.relevant, m) for m in HEADLINE} for system, run in runs.items()}
    out: dict = {}
    for system, metrics in values.items():
        out[system] = {m: round(float(v.mean()), 6) for m, v in metrics.items()}
        out[system]["ci95"] = {m: [round(x, 6) for x in bootstrap_ci(v, stats.seed, stats.n_resamples)]
                               for m, v in metrics.items()}
    out["significance"] = significance(values, stats)
    return out


def significance(values: dict[str, dict[str, np.ndarray]], stats: StatsConfig) -> list[dict]:
    """Paired two-sided randomization tests: every system against base and BM25, `shipped` against every system."""
    pairs = [(s, b) for s in values for b in BASELINES if b in values and s != b]
    if SHIPPED in values:
        pairs += [(SHIPPED, other) for other in values if other not in (SHIPPED, *BASELINES)]
    tests = []
    for system, against in pairs:
        for metric in HEADLINE:
            a, b = values[system][metric], values[against][metric]
            tests.append({"system": system, "against": against, "metric": metric,
                          "difference": round(float(np.mean(a - b)), 6),
                          "p_value": round(paired_randomization_test(a, b, stats.seed, stats.n_resamples), 6),
                          "wins": int(np.sum(a > b)), "losses": int(np.sum(a < b))})
    return tests


def score_subsets(runs: dict[str, Run], query_set: QuerySet, stats: StatsConfig) -> list[dict]:
    """Per slice (style, language): each system's headline means and `shipped`'s tests against every other system."""
    rows = []
    for name, keep in subsets(query_set).items():
        part = query_set.subset(name, keep)
        values = {s: {m: per_query(r.subset(keep).ids, part.relevant, m) for m in HEADLINE} for s, r in runs.items()}
        row = {"subset": name, "queries": len(part),
               "means": {s: {m: round(float(v.mean()), 6) for m, v in mv.items()} for s, mv in values.items()}}
        if "finetuned" in values and "base" in values:  # does the fine-tune beat what it started from, per slice?
            row["finetuned_vs_base"] = [
                {"metric": m, "difference": round(float(np.mean(values["finetuned"][m] - values["base"][m])), 6),
                 "p_value": round(paired_randomization_test(values["finetuned"][m], values["base"][m], stats.seed,
                                                            stats.n_resamples), 6)}
                for m in HEADLINE]
        if SHIPPED in values:
            row["shipped_vs"] = [
                {"against": other, "metric": m, "difference": round(float(np.mean(values[SHIPPED][m] - values[other][m])), 6),
                 "p_value": round(paired_randomization_test(values[SHIPPED][m], values[other][m], stats.seed,
                                                            stats.n_resamples), 6)}
                for other in values if other != SHIPPED for m in HEADLINE]
        rows.append(row)
    return rows


def details(runs: dict[str, Run], query_set: QuerySet) -> dict:
    """Everything beside the headline, for the stats file: more cut-offs, nDCG, how much of each top 10 was judged
    (curated: unjudged episodes count as not relevant, so low coverage means a system is under-rated), ANN overlap."""
    out = {}
    for system, run in runs.items():
        entry = {m: round(float(per_query(run.ids, query_set.relevant, m).mean()), 6) for m in DETAIL}
        if query_set.judged is not None:
            # Over the queries the system returned anything for (BM25 returns nothing when no query word is known).
            covered = [len(set(ids[:10]) & judged) / min(10, len(ids))
                       for ids, judged in zip(run.ids, query_set.judged) if ids]
            entry["judged@10"] = round(float(np.mean(covered)), 6) if covered else None
        if run.exact_ids is not None:
            for k in (10, CURVE_MAX_K):
                entry[f"ann_overlap@{k}"] = round(overlap_at_k(run.ids, run.exact_ids, k), 6)
        out[system] = entry
    return out


def recall_curves(runs: dict[str, Run], query_set: QuerySet) -> pd.DataFrame:
    """Wide recall@k table (k, one column per system) for k = 1..30: DVC draws one line per system from it."""
    table = {"k": list(range(1, CURVE_MAX_K + 1))}
    for system in sorted(runs):
        table[system] = [round(r, 6) for r in recall_curve(runs[system].ids, query_set.relevant, CURVE_MAX_K)]
    return pd.DataFrame(table)


def first_relevant_ranks(runs: dict[str, Run], query_set: QuerySet) -> pd.DataFrame:
    """One row per query: the rank of its first relevant episode under each system (NaN: not in the run)."""
    table = {"query_id": query_set.ids, "query": query_set.queries}
    for system, run in runs.items():
        table[system] = [first_relevant_rank(ids, rel) for ids, rel in zip(run.ids, query_set.relevant)]
    return pd.DataFrame(table)
