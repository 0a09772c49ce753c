"""Dense vector indexes over L2-normalised embeddings, scored by inner product (= cosine).

`exact` is the default because at podcast-sample scale (thousands of episodes) a flat scan is milliseconds and has no
recall loss; `hnsw` exists to measure what an ANN index would cost in recall at larger scale; `pinecone` is the hosted
option (see `pinecone_index.py`).
"""
from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np

from podsearch.errors import PodsearchError
from podsearch.retrieval.ranking import order_candidates

INDEX_KINDS = ("exact", "hnsw", "pinecone")
_META = "index.json"
_FAISS = "vectors.faiss"
_IDS = "ids.txt"
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

    @classmethod
    def load(cls, folder: str | Path) -> "VectorIndex":
        """Load any locally saved index (exact or hnsw); the kind is read from the folder."""
        folder = Path(folder)
        meta_path = folder / _META
        if not meta_path.exists():
            raise VectorIndexError(f"{folder}: no {_META}; not a saved vector index")
        meta = json.loads(meta_path.read_text())
        index_cls = {"exact": ExactIndex, "hnsw": HNSWIndex}.get(meta.get("kind"))
        if index_cls is None:
            raise VectorIndexError(f"{meta_path}: unknown index kind {meta.get('kind')!r}")
        index = index_cls.__new__(index_cls)
        VectorIndex.__init__(index, meta["dim"])
        index.options = meta.get("options", {})
        index.faiss_index = faiss.read_index(str(folder / _FAISS))
        index.ids = (folder / _IDS).read_text().splitlines()
        if len(index.ids) != index.faiss_index.ntotal:
            raise VectorIndexError(f"{folder}: {len(index.ids)} ids but {index.faiss_index.ntotal} vectors")
        index._after_load()
        return index


class _FaissIndex(VectorIndex):
    options: dict

    def _add(self, ids: list[str], matrix: np.ndarray) -> None:
        self.faiss_index.add(matrix)

    def _search(self, matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.faiss_index.search(matrix, k)

    def _after_load(self) -> None:
        pass

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.faiss_index, str(folder / _FAISS))
        (folder / _IDS).write_text("".join(f"{i}\n" for i in self.ids))
        meta = {"kind": self.kind, "dim": self.dim, "size": len(self.ids), "options": self.options}
        (folder / _META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return folder


class ExactIndex(_FaissIndex):
    kind = "exact"

    def __init__(self, dim: int):
        super().__init__(dim)
        self.options = {}
        self.faiss_index = faiss.IndexFlatIP(self.dim)


class HNSWIndex(_FaissIndex):
    kind = "hnsw"

    def __init__(self, dim: int, m: int = 32, ef_search: int = 128, ef_construction: int = 200):
        super().__init__(dim)
        self.options = {"m": int(m), "ef_search": int(ef_search), "ef_construction": int(ef_construction)}
        self.faiss_index = faiss.IndexHNSWFlat(self.dim, int(m), faiss.METRIC_INNER_PRODUCT)
        self.faiss_index.hnsw.efConstruction = int(ef_construction)
        self._after_load()

    def _after_load(self) -> None:
        # efSearch is a query-time knob and is not reliably persisted by write_index; re-apply it.
        self.faiss_index.hnsw.efSearch = int(self.options.get("ef_search", 128))


def make_index(kind: str, dim: int, **options) -> VectorIndex:
    """Build an empty index. Options: hnsw -> m, ef_search, ef_construction; pinecone -> see PineconeIndex.

    Unknown options are ignored for exact/hnsw so callers can pass one params dict to any kind.
    """
    if kind == "exact":
        return ExactIndex(dim)
    if kind == "hnsw":
        keys = ("m", "ef_search", "ef_construction")
        return HNSWIndex(dim, **{k: v for k, v in options.items() if k in keys and v is not None})
    if kind == "pinecone":
        from podsearch.retrieval.pinecone_index import PineconeIndex  # lazy: the client is only needed here

        return PineconeIndex(dim, **options)
    raise VectorIndexError(f"unknown index kind {kind!r}; expected one of {', '.join(INDEX_KINDS)}")
