"""Pinecone (hosted, serverless) behind the VectorIndex interface.

The API key comes only from the environment (PINECONE_API_KEY) and is never logged or written: params.yaml and
dvc.yaml are committed. `control_host` / `index_host` exist so tests can point the real client at a local server.
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager

import numpy as np

from podsearch.retrieval.ranking import order_candidates
from podsearch.retrieval.vector_index import VectorIndex, VectorIndexError, as_matrix

API_KEY_ENV = "PINECONE_API_KEY"
MISSING_KEY = (
    f"{API_KEY_ENV} is not set: export {API_KEY_ENV}=<your key from app.pinecone.io> to use the pinecone index, "
    "or set evaluate.index to exact/hnsw in params.yaml"
)
log = logging.getLogger(__name__)


@contextmanager
def _service(what: str):
    """Client/API failures (auth, quota, network) become one-line VectorIndexErrors the stages can print."""
    from pinecone.errors import PineconeError

    try:
        yield
    except PineconeError as error:
        message = " ".join(str(error).split())
        raise VectorIndexError(f"pinecone {what} failed: {message}") from None


class PineconeIndex(VectorIndex):
    """Serverless index with cosine metric (our vectors are unit length, so cosine == inner product).

    Vectors live in one namespace; `add` clears it first when `reset` is set, so vectors from an earlier run (or
    another split) never leak into results. Search issues one query per vector: the REST API has no batch query.
    """

    kind = "pinecone"

    def __init__(
        self,
        dim: int,
        name: str = "podcast-search",
        cloud: str = "aws",
        region: str = "us-east-1",
        namespace: str = "default",
        batch_size: int = 100,
        reset: bool = True,
        control_host: str | None = None,
        index_host: str | None = None,
        ready_timeout_s: float = 300.0,
        **_ignored,
    ):
        super().__init__(dim)
        api_key = os.environ.get(API_KEY_ENV, "").strip()
        if not api_key:
            raise VectorIndexError(MISSING_KEY)
        self.name, self.namespace, self.batch_size = name, namespace, int(batch_size)
        self.reset, self.ready_timeout_s = reset, float(ready_timeout_s)
        self._cleared = False
        with _service(f"connecting to index '{name}'"):
            self._connect(api_key, control_host, index_host, cloud, region)

    def _connect(self, api_key: str, control_host: str | None, index_host: str | None, cloud: str, region: str):
        from pinecone import Pinecone, ServerlessSpec  # lazy: importing the client is slow and only needed here

        name = self.name
        self.client = Pinecone(api_key=api_key, host=control_host) if control_host else Pinecone(api_key=api_key)
        if not self.client.has_index(name):
            log.info("creating pinecone serverless index %s (%s/%s, dim %d)", name, cloud, region, self.dim)
            self.client.create_index(
                name=name, dimension=self.dim, metric="cosine",
                spec=ServerlessSpec(cloud=cloud, region=region), timeout=int(self.ready_timeout_s),
            )
        description = self.client.describe_index(name)
        if description.dimension != self.dim:
            raise VectorIndexError(
                f"pinecone index '{name}' has dimension {description.dimension}, vectors have {self.dim}; "
                "delete it or set another evaluate.pinecone_index"
            )
        self.index = self.client.index(host=index_host) if index_host else self.client.index(name=name)

    def _vector_count(self) -> int:
        summary = self.index.describe_index_stats().namespaces.get(self.namespace)
        return int(summary.vector_count) if summary is not None else 0

    def _add(self, ids: list[str], matrix: np.ndarray) -> None:
        with _service(f"upsert into '{self.name}'"):
            self._upsert(ids, matrix)

    def _upsert(self, ids: list[str], matrix: np.ndarray) -> None:
        if self.reset and not self._cleared:
            if self._vector_count():
                self.index.delete(delete_all=True, namespace=self.namespace)
            self._cleared = True
        vectors = [(episode, row.tolist()) for episode, row in zip(ids, matrix)]
        for start in range(0, len(vectors), self.batch_size):
            self.index.upsert(
                vectors=vectors[start : start + self.batch_size], namespace=self.namespace, show_progress=False
            )
        # self.ids does not include this batch yet: the base class appends it after _add succeeds.
        self._wait_until_counted(len(self.ids) + len(vectors))

    def _wait_until_counted(self, expected: int) -> None:
        """Pinecone is eventually consistent: wait (bounded) until upserts are visible before anyone queries."""
        deadline = time.monotonic() + self.ready_timeout_s
        while (count := self._vector_count()) < expected:
            if time.monotonic() > deadline:
                raise VectorIndexError(
                    f"pinecone index '{self.name}': {count}/{expected} vectors visible "
                    f"after {self.ready_timeout_s:.0f}s"
                )
            time.sleep(1.0)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        matrix = as_matrix(queries, self.dim, "search")
        k = int(k)
        scores = np.full((matrix.shape[0], max(k, 0)), -np.inf, dtype=np.float32)
        ids: list[list[str]] = []
        for row, vector in enumerate(matrix):
            if k <= 0:
                ids.append([])
                continue
            with _service(f"query on '{self.name}'"):
                matches = self.index.query(vector=vector.tolist(), top_k=k, namespace=self.namespace).matches
            top_scores, top_ids = order_candidates([m.id for m in matches], [m.score for m in matches], k)
            ids.append(top_ids)
            scores[row, : len(top_ids)] = top_scores
        return scores, ids
