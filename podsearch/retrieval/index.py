"""Dense vector indexes over L2-normalised embeddings, scored by inner product (= cosine).

`exact` is the default because at the sample's scale a flat scan is fast and has no recall loss
(bench/results/scale.md); `hnsw` exists to measure what an ANN index would cost in recall at larger scale; `pinecone`
is the hosted option (see `pinecone_index.py`).
"""
from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np

from podsearch.artifacts import damaged, reading, writing
from podsearch.retrieval.pinecone_index import PineconeIndex
from podsearch.retrieval.vector_index import VectorIndex, VectorIndexError

INDEX_KINDS = ("exact", "hnsw", "pinecone")
_META = "index.json"
_FAISS = "vectors.faiss"
_IDS = "ids.txt"


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
        # faiss reports a failed write (a full disk) as a RuntimeError
        with writing(folder, folder=True, io_errors=(OSError, RuntimeError)) as tmp:
            faiss.write_index(self.faiss_index, str(tmp / _FAISS))
            (tmp / _IDS).write_text("".join(f"{i}\n" for i in self.ids))
            meta = {"kind": self.kind, "dim": self.dim, "size": len(self.ids), "options": self.options}
            (tmp / _META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
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
        return PineconeIndex(dim, **options)
    raise VectorIndexError(f"unknown index kind {kind!r}; expected one of {', '.join(INDEX_KINDS)}")


def load_index(folder: str | Path) -> VectorIndex:
    """Load any locally saved index (exact or hnsw); the kind is read from the folder."""
    folder = Path(folder)
    meta_path = folder / _META
    if not meta_path.exists():
        raise VectorIndexError(f"{folder}: no {_META}; not a saved vector index")
    with reading(meta_path):
        meta = json.loads(meta_path.read_text())
        index_cls = {"exact": ExactIndex, "hnsw": HNSWIndex}.get(meta.get("kind"))
        dim = int(meta["dim"])
    if index_cls is None:
        raise VectorIndexError(f"{meta_path}: unknown index kind {meta.get('kind')!r}")
    index = index_cls.__new__(index_cls)
    VectorIndex.__init__(index, dim)
    index.options = meta.get("options", {})
    with reading(folder / _FAISS):  # a truncated file: faiss's RuntimeError
        index.faiss_index = faiss.read_index(str(folder / _FAISS))
    with reading(folder / _IDS):
        index.ids = (folder / _IDS).read_text().splitlines()
    if len(index.ids) != index.faiss_index.ntotal or index.faiss_index.d != dim:
        raise damaged(folder, f"{len(index.ids)} ids for {index.faiss_index.ntotal} vectors of dim "
                              f"{index.faiss_index.d}, {_META} says dim {dim}")
    index._after_load()
    return index
