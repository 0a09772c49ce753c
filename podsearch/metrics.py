"""Ranking metrics with binary relevance, defined as in sentence-transformers' InformationRetrievalEvaluator
(recall = relevant found in top-k / all relevant; MRR@k; nDCG@k with log2 discount) so numbers are comparable
with the recipe. `tests/test_metrics.py` cross-checks them against that evaluator on the same rankings.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _check(rankings: Sequence[Sequence[str]], relevant: Sequence[set[str]]) -> None:
    if len(rankings) != len(relevant):
        raise ValueError(f"{len(rankings)} rankings but {len(relevant)} relevance sets")
    if not rankings:
        raise ValueError("no queries to evaluate")
    if any(not r for r in relevant):
        raise ValueError("every query needs at least one relevant id")


def recall_at_k(ranking: Sequence[str], relevant: set[str], k: int) -> float:
    return len(set(ranking[:k]) & relevant) / len(relevant)


def reciprocal_rank_at_k(ranking: Sequence[str], relevant: set[str], k: int) -> float:
    for rank, doc in enumerate(ranking[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranking: Sequence[str], relevant: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], start=1) if doc in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def per_query(
    rankings: Sequence[Sequence[str]], relevant: Sequence[set[str]], metric: str
) -> np.ndarray:
    """One value per query for a metric named like "recall@10", "mrr@30" or "ndcg@10": the paired samples that
    confidence intervals and significance tests need, in query order."""
    _check(rankings, relevant)
    name, _, k = metric.partition("@")
    function = {"recall": recall_at_k, "mrr": reciprocal_rank_at_k, "ndcg": ndcg_at_k}.get(name)
    if function is None or not k.isdigit():
        raise ValueError(f"unknown metric {metric!r}; expected recall@k, mrr@k or ndcg@k")
    return np.array([function(r, rel, int(k)) for r, rel in zip(rankings, relevant)], dtype=np.float64)


def evaluate_rankings(
    rankings: Sequence[Sequence[str]], relevant: Sequence[set[str]], ks: Sequence[int] = (1, 5, 10, 30),
    mrr_ks: Sequence[int] = (10, 30), ndcg_ks: Sequence[int] = (10,),
) -> dict[str, float]:
    """Mean over queries of recall@k, mrr@k and ndcg@k; keys like "recall@10"."""
    names = [f"recall@{k}" for k in ks] + [f"mrr@{k}" for k in mrr_ks] + [f"ndcg@{k}" for k in ndcg_ks]
    return {name: float(per_query(rankings, relevant, name).mean()) for name in names}


def first_relevant_rank(ranking: Sequence[str], relevant: set[str]) -> int | None:
    """1-based rank of the first relevant episode, None when none was retrieved."""
    for rank, doc in enumerate(ranking, start=1):
        if doc in relevant:
            return rank
    return None


def recall_curve(rankings: Sequence[Sequence[str]], relevant: Sequence[set[str]], max_k: int = 30) -> list[float]:
    """Mean recall@k for k = 1..max_k, in one pass per query (first-hit ranks, not max_k re-scans)."""
    _check(rankings, relevant)
    gains = [0.0] * (max_k + 1)
    for ranking, rel in zip(rankings, relevant):
        for rank, doc in enumerate(ranking[:max_k], start=1):
            if doc in rel:
                gains[rank] += 1.0 / len(rel)
    curve, total = [], 0.0
    for k in range(1, max_k + 1):
        total += gains[k]
        curve.append(total / len(rankings))
    return curve


def overlap_at_k(approx: Sequence[Sequence[str]], exact: Sequence[Sequence[str]], k: int) -> float:
    """Mean |approx top-k ∩ exact top-k| / k: how much of the exact answer an ANN index returns."""
    if len(approx) != len(exact) or not exact:
        raise ValueError("overlap_at_k needs the same, non-zero number of queries on both sides")
    return sum(len(set(a[:k]) & set(e[:k])) / max(min(k, len(e)), 1) for a, e in zip(approx, exact)) / len(exact)
