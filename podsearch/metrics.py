"""Ranking metrics with binary relevance, defined as in sentence-transformers' InformationRetrievalEvaluator
(recall = relevant found in top-k / all relevant; MRR@k; nDCG@k with log2 discount) so numbers are comparable
with the recipe. `tests/test_metrics.py` cross-checks them against that evaluator on the same rankings.
"""
from __future__ import annotations

import math
from collections.abc import Sequence


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


def evaluate_rankings(
    rankings: Sequence[Sequence[str]], relevant: Sequence[set[str]], ks: Sequence[int] = (1, 5, 10, 30),
    mrr_ks: Sequence[int] = (10, 30), ndcg_ks: Sequence[int] = (10,),
) -> dict[str, float]:
    """Mean over queries of recall@k, mrr@k and ndcg@k; keys like "recall@10"."""
    _check(rankings, relevant)
    n = len(rankings)
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = sum(recall_at_k(r, rel, k) for r, rel in zip(rankings, relevant)) / n
    for k in mrr_ks:
        out[f"mrr@{k}"] = sum(reciprocal_rank_at_k(r, rel, k) for r, rel in zip(rankings, relevant)) / n
    for k in ndcg_ks:
        out[f"ndcg@{k}"] = sum(ndcg_at_k(r, rel, k) for r, rel in zip(rankings, relevant)) / n
    return out


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
