"""Full-retrieval evaluation: every query against an index of every candidate episode, for every system.

The recipe this replaces looped query by query and indexed only a sample of episodes; here each system encodes its
queries in one batch and answers them with one top-k call over an index of all candidates (test episodes for the
synthetic queries, all prepared episodes for the curated ones). Document vectors are rows of the embed stage's
matrices, never re-encoded.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from podsearch.embeddings import encode_texts, rows_for
from podsearch.metrics import evaluate_rankings, overlap_at_k, recall_curve
from podsearch.retrieval import BM25Index, make_index, reciprocal_rank_fusion

DENSE_SYSTEMS = ("base", "finetuned", "use")
SYSTEMS = ("base", "finetuned", "bm25", "hybrid", "use")
HYBRID_PARTS = ("bm25", "finetuned")  # what the hybrid fuses; evaluate needs both when hybrid is asked for
CURVE_MAX_K = 30
log = logging.getLogger(__name__)


class EvaluationError(ValueError):
    """Bad evaluation input (curated file, splits); the stage prints it as one line."""


@dataclass
class QuerySet:
    name: str
    queries: list[str]
    relevant: list[set[str]]
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.queries)


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
    encoder: object


def load_curated(path: str | Path, known_ids: set[str]) -> QuerySet:
    """Read data/curated_queries.yaml: a list of {query, episode_ids: [str, ...], note?}, validated strictly."""
    path = Path(path)
    if not path.exists():
        raise EvaluationError(f"{path}: not found")
    try:
        entries = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise EvaluationError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(entries, list) or not entries:
        raise EvaluationError(f"{path}: expected a non-empty list of {{query, episode_ids}} entries")
    queries, relevant, notes, seen = [], [], [], set()
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: entry {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("query"), str) or not entry["query"].strip():
            raise EvaluationError(f"{where}: needs a non-empty string 'query'")
        query = entry["query"].strip()
        where = f"{path}: query {query!r} (entry {number})"
        if query in seen:
            raise EvaluationError(f"{where}: duplicate query")
        seen.add(query)
        ids = entry.get("episode_ids")
        if not isinstance(ids, list) or not ids:
            raise EvaluationError(f"{where}: needs a non-empty list 'episode_ids'")
        bad_type = [i for i in ids if not isinstance(i, str)]
        if bad_type:
            raise EvaluationError(f"{where}: episode id {bad_type[0]!r} is not a string; quote ids in YAML")
        unknown = [i for i in ids if i not in known_ids]
        if unknown:
            raise EvaluationError(f"{where}: episode id {unknown[0]} is not in the prepared episodes")
        queries.append(query)
        relevant.append(set(ids))
        notes.append(str(entry.get("note", "")))
    return QuerySet("curated", queries, relevant, notes)


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
    return QuerySet("synthetic", queries, relevant)


@dataclass
class Runner:
    """Runs every system on one query set and keeps its rankings."""

    index_kind: str = "exact"
    index_options: dict = field(default_factory=dict)
    depth: int = 100          # ranking depth kept per system (>= max k, and the RRF candidate depth)
    rrf_k: int = 60
    batch_size: int = 64

    def dense(self, name: str, model: DenseModel, corpus: Corpus, query_set: QuerySet) -> dict:
        vectors = rows_for(model.ids, model.matrix, corpus.ids, what=f"{name} embeddings")
        options = dict(self.index_options, namespace=f"{query_set.name}-{name}")
        if "name" in options:  # a hosted index has one dimension, and USE (512) differs from MiniLM (384)
            options["name"] = f"{options['name']}-d{vectors.shape[1]}"
        index = make_index(self.index_kind, vectors.shape[1], **options)
        index.add(corpus.ids, vectors)
        started = time.perf_counter()
        queries = encode_texts(model.encoder, query_set.queries, self.batch_size, desc=f"{name} queries")
        _, ranked = index.search(queries, self.depth)
        result = {"rankings": ranked, "seconds": time.perf_counter() - started}
        if self.index_kind != "exact":
            exact = make_index("exact", vectors.shape[1])
            exact.add(corpus.ids, vectors)
            result["exact_rankings"] = exact.search(queries, self.depth)[1]
        return result

    def bm25(self, corpus: Corpus, query_set: QuerySet) -> dict:
        index = BM25Index(corpus.ids, corpus.texts)
        started = time.perf_counter()
        scores, ranked = index.search(query_set.queries, self.depth)
        # Zero-score hits share no word with the query and come in arbitrary order: not a ranking, so drop them
        # (the search service does the same before fusing).
        ranked = [[doc for doc, s in zip(row, row_scores) if s > 0] for row, row_scores in zip(ranked, scores)]
        return {"rankings": ranked, "seconds": time.perf_counter() - started}

    def run(self, systems: list[str], models: dict[str, DenseModel], corpus: Corpus, query_set: QuerySet) -> dict:
        log.info("%s: %d queries over %d episodes, systems %s, index %s",
                 query_set.name, len(query_set), len(corpus.ids), ",".join(systems), self.index_kind)
        results: dict[str, dict] = {}
        needed = set(systems) | (set(HYBRID_PARTS) if "hybrid" in systems else set())
        for name in [s for s in SYSTEMS if s in needed and s != "hybrid"]:
            results[name] = self.bm25(corpus, query_set) if name == "bm25" else self.dense(
                name, models[name], corpus, query_set)
            log.info("%s/%s: searched in %.2fs", query_set.name, name, results[name]["seconds"])
        if "hybrid" in systems:
            _, fused = reciprocal_rank_fusion(
                [results[p]["rankings"] for p in HYBRID_PARTS], k=self.rrf_k, top_k=self.depth)
            results["hybrid"] = {"rankings": fused, "seconds": sum(results[p]["seconds"] for p in HYBRID_PARTS)}
        return {name: results[name] for name in systems}


def score(results: dict, query_set: QuerySet, ks: list[int]) -> tuple[dict, list[dict]]:
    """Metrics per system and the long-format recall@k curve rows (system, k, recall)."""
    metrics, curve_rows = {}, []
    for name, result in results.items():
        metrics[name] = {k: round(v, 6) for k, v in evaluate_rankings(
            result["rankings"], query_set.relevant, ks=ks, mrr_ks=(10, 30), ndcg_ks=(10,)).items()}
        if "exact_rankings" in result:
            for k in sorted({10, max(ks)}):
                overlap = overlap_at_k(result["rankings"], result["exact_rankings"], k)
                metrics[name][f"ann_overlap@{k}"] = round(overlap, 6)
        for k, recall in enumerate(recall_curve(result["rankings"], query_set.relevant, CURVE_MAX_K), start=1):
            curve_rows.append({"system": name, "k": k, "recall": round(recall, 6)})
    return metrics, curve_rows


def build_report(per_set: dict[str, dict], sizes: dict[str, dict], index_kind: str, ks: list[int]) -> dict:
    """eval.json: headline keys first-level (recall@30_finetuned, curated_recall@30_finetuned, ...) for quick
    `dvc metrics show`, the full per-system dicts nested under synthetic/curated."""
    report: dict = {"index": index_kind, "sizes": sizes}
    top_k = max(ks)
    for set_name, metrics in per_set.items():
        report[set_name] = metrics
        prefix = "" if set_name == "synthetic" else f"{set_name}_"
        for system, values in metrics.items():
            for key in (f"recall@{top_k}", "recall@10", "mrr@30", "ndcg@10"):
                if key in values:
                    report[f"{prefix}{key}_{system}"] = values[key]
            if f"ann_overlap@{top_k}" in values:
                report[f"{prefix}ann_overlap@{top_k}_{system}"] = values[f"ann_overlap@{top_k}"]
    return report
