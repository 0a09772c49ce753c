"""The interface every vector index implements (exact and HNSW in index.py, Pinecone in pinecone_index.py): string
episode ids over row positions, batched top-k by inner product, ties ordered by id. No faiss or client import here,
so the hosted index does not depend on the local ones.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from podsearch.errors import PodsearchError
from podsearch.retrieval.ranking import order_candidates

# Extra hits fetched beyond k so that ties at the k-th place can be ordered by id (widened further if needed).
TIE_MARGIN = 8


class VectorIndexError(PodsearchError, ValueError):
    """Bad use of an index (wrong dimension, duplicate ids, ...); stages turn it into a one-line error."""


def as_matrix(vectors: np.ndarray, dim: int, what: str) -> np.ndarray:
    """faiss needs C-contiguous float32 [n, dim]; a 1-d vector is treated as one row."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise VectorIndexError(f"{what}: expected shape (n, {dim}), got {tuple(np.shape(vectors))}")
    return np.ascontiguousarray(matrix)


class VectorIndex:
    """Base class: maps faiss row positions back to string episode ids."""

    kind = "base"

    def __init__(self, dim: int):
        self.dim = int(dim)
        self.ids: list[str] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids: list[str], vectors: np.ndarray) -> None:
        ids = [str(i) for i in ids]
        matrix = as_matrix(vectors, self.dim, "add")
        if len(ids) != matrix.shape[0]:
            raise VectorIndexError(f"add: {len(ids)} ids but {matrix.shape[0]} vectors")
        if len(set(ids)) != len(ids) or set(ids) & set(self.ids):
            raise VectorIndexError("add: duplicate episode ids; every id must be indexed once")
        self._add(ids, matrix)
        self.ids.extend(ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Top-k by inner product for every query row at once, ties by episode id: scores (n, k') and ids,
        k' = min(k, len(index)). A row of an approximate index can hold fewer ids; its scores are padded with -inf."""
        matrix = as_matrix(queries, self.dim, "search")
        n, k = len(self.ids), min(int(k), len(self.ids))
        scores = np.full((matrix.shape[0], max(k, 0)), -np.inf, dtype=np.float32)
        if k <= 0:
            return scores, [[] for _ in range(matrix.shape[0])]
        width = min(n, k + TIE_MARGIN)
        found_scores, found = self._search(matrix, width)
        ranked = []
        for row in range(matrix.shape[0]):
            row_scores, row_positions, row_width = found_scores[row], found[row], width
            # Equal scores may continue past what was fetched: widen until the k-th score is strictly beaten.
            while row_width < n and row_positions[-1] >= 0 and row_scores[-1] == row_scores[k - 1]:
                row_width = min(n, 2 * row_width)
                more_scores, more = self._search(matrix[row : row + 1], row_width)
                row_scores, row_positions = more_scores[0], more[0]
            valid = row_positions >= 0
            top_scores, top_ids = order_candidates([self.ids[p] for p in row_positions[valid]],
                                                   row_scores[valid], k)
            scores[row, : len(top_scores)] = top_scores
            ranked.append(top_ids)
        return scores, ranked

    def _add(self, ids: list[str], matrix: np.ndarray) -> None:
        raise NotImplementedError

    def _search(self, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def save(self, folder: str | Path) -> Path:
        raise NotImplementedError(f"{self.kind} index cannot be saved locally")
