"""Deterministic top-k: higher score first, equal scores by episode id.

Sort kernels order equal scores differently on different CPUs (and bm25s's partial sort differently between
calls), so without an explicit tie-break the same scores give different rankings and rank metrics move in the third
decimal between machines. Every ranking in the project (BM25, the vector indexes, fusion) goes through here.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def id_ranks(ids: Sequence[str]) -> np.ndarray:
    """Position of each id in sorted order: an integer key that orders ties by id without comparing strings."""
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[np.argsort(np.asarray(ids, dtype=object), kind="stable")] = np.arange(len(ids))
    return ranks


def top_k(scores: np.ndarray, k: int, tie_keys: np.ndarray) -> np.ndarray:
    """Positions of the k best of one query's scores over the whole corpus, ties broken by tie_keys (ascending).

    argpartition finds the k-th best score in O(n); every position scoring at least that much is a candidate, so a
    tie that straddles position k is resolved by id rather than by where the partition happened to put it.
    """
    scores = np.asarray(scores)
    k = min(int(k), scores.shape[0])
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(scores, scores.shape[0] - k)[scores.shape[0] - k]
    candidates = np.flatnonzero(scores >= kth)
    order = np.lexsort((tie_keys[candidates], -scores[candidates]))
    return candidates[order[:k]]


def order_candidates(ids: Sequence[str], scores: Sequence[float], k: int) -> tuple[list[float], list[str]]:
    """Sort a short candidate list (one query's hits from an index or a fusion) by score, then id; keep k."""
    pairs = sorted(zip((-float(s) for s in scores), ids))[:k]
    return [-s for s, _ in pairs], [i for _, i in pairs]
