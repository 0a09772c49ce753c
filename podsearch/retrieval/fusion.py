"""Reciprocal rank fusion: combine rankings by rank alone, so BM25 and cosine scores need no calibration."""
from __future__ import annotations


def reciprocal_rank_fusion(
    rankings: list[list[list[str]]], k: int = 60, top_k: int = 30
) -> tuple[list[list[float]], list[list[str]]]:
    """Fuse several systems' rankings per query.

    rankings[s][q] is system s's ranked id list for query q. An id scores sum over systems of 1 / (k + rank), rank
    starting at 1; ids absent from a system's list get nothing from it. Ties break by best single rank, then id, so
    output is deterministic. Returns (scores, ids) per query, at most top_k each.
    """
    if not rankings:
        return [], []
    n_queries = len(rankings[0])
    if any(len(system) != n_queries for system in rankings):
        raise ValueError("reciprocal_rank_fusion: every system must rank the same number of queries")
    all_scores, all_ids = [], []
    for q in range(n_queries):
        fused: dict[str, float] = {}
        best: dict[str, int] = {}
        for system in rankings:
            for rank, doc in enumerate(system[q], start=1):
                fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank)
                best[doc] = min(best.get(doc, rank), rank)
        order = sorted(fused, key=lambda d: (-fused[d], best[d], d))[:top_k]
        all_scores.append([fused[d] for d in order])
        all_ids.append(order)
    return all_scores, all_ids
