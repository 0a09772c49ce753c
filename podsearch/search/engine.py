"""The search a person runs: load a built index folder once, then answer queries in milliseconds.

Nothing is re-encoded at start-up; only the query is encoded. Encoders load lazily per model (the first query for a
model pays for it) unless the caller injects them, which is how tests use tiny fake encoders.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from podsearch.retrieval.bm25 import BM25Index
from podsearch.retrieval.fusion import reciprocal_rank_fusion
from podsearch.retrieval.index import VectorIndex
from podsearch.search.build import BM25, MANIFEST, META, VECTORS

log = logging.getLogger(__name__)


class SearchError(Exception):
    """Base for errors shown to the user as one line (CLI) or a 4xx message (web)."""


class QueryError(SearchError):
    """The request is wrong (empty query, bad k, unknown model): the user can fix it."""


class IndexMissingError(SearchError):
    """No usable index folder: the pipeline has not been run yet."""


class ModelUnavailableError(SearchError):
    """The index names a query encoder that cannot be loaded (e.g. the train stage has not run)."""


@dataclass(frozen=True)
class SearchSettings:
    default_k: int = 10
    max_k: int = 100
    max_query_chars: int = 512
    rrf_k: int = 60          # RRF constant; 60 is the value from the original RRF paper
    fusion_depth: int = 100  # candidates taken from each system before fusing
    encode_threads: int = 1  # torch threads for query encoding; 0 keeps torch's default

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> "SearchSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: int(v) for k, v in (params or {}).items() if k in known})


def load_settings(params_file: str | Path = "params.yaml") -> SearchSettings:
    """The `search:` section of params.yaml when run from the repository, built-in defaults elsewhere."""
    import yaml

    path = Path(params_file)
    params = (yaml.safe_load(path.read_text()) or {}).get("search") if path.exists() else None
    return SearchSettings.from_params(params)


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    episode_id: str
    title: str
    show_title: str
    language: str
    pub_date: str
    audio: str
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_spec(spec: str, index_dir: Path) -> str:
    """Model specs in the manifest are relative to the repository root; also find them when run from elsewhere."""
    from podsearch.models import resolve_model

    if spec.startswith("package:") or Path(spec).is_absolute() or Path(spec).exists():
        return resolve_model(spec)
    repo_root = index_dir.resolve().parent.parent  # data/index -> repository root
    candidate = repo_root / spec
    return str(candidate) if candidate.exists() else resolve_model(spec)


def load_query_encoder(spec: str, index_dir: Path, threads: int = 1):
    """The numpy encoder (podsearch/search/fast_encoder.py: no torch import, ~0.05 s to load) when it supports the
    model folder, else SentenceTransformer (importing it alone takes ~5 s on the project's CPU)."""
    from podsearch.search.fast_encoder import UnsupportedModel, load_fast_encoder

    path = resolve_spec(spec, index_dir)
    try:
        model = load_fast_encoder(path, threads=threads)
        model.encode(["warm up"])  # pages in the memory-mapped weights now, not on the first query
        log.info("query encoder for %s: numpy fast path", path)
        return model
    except UnsupportedModel as exc:
        log.info("query encoder for %s: SentenceTransformer (fast path unsupported: %s)", path, exc)
    return load_sentence_transformer(path, threads)


def load_sentence_transformer(path: str, threads: int = 1):
    # Imported here: torch + sentence-transformers take seconds to import, and error paths should not pay for it.
    import torch
    from transformers.utils import logging as hf_logging

    from podsearch.encoders import load_encoder

    if threads > 0:
        # A ~10-token query gains nothing from intra-op threads, and on a busy CPU each op waits for the slowest
        # thread to be scheduled: measured 750 ms/query with 2 threads vs 17 ms with 1 on the loaded 2-core box.
        # Process-wide, which is fine: this process only encodes queries.
        torch.set_num_threads(threads)

    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every CLI call is noise
    model = load_encoder("base", path)  # "base": any SentenceTransformer spec, here already resolved to a folder
    # The first forward pass is ~100x slower (lazy kernel set-up); pay it at start-up, not on the first query.
    model.encode(["warm up"])
    return model


def parse_k(value: Any, settings: SearchSettings) -> int:
    if value is None or value == "":
        return settings.default_k
    try:
        k = int(str(value).strip())
    except ValueError:
        raise QueryError(f"k must be a whole number between 1 and {settings.max_k}, got {str(value)[:40]!r}") from None
    if not 1 <= k <= settings.max_k:
        raise QueryError(f"k must be between 1 and {settings.max_k}, got {k}")
    return k


def clean_query(query: Any, settings: SearchSettings) -> str:
    if not isinstance(query, str):
        raise QueryError("the query must be text")
    # Control characters (NUL, escapes) never help matching and can garble a terminal; whitespace collapses.
    query = " ".join("".join(ch if ch.isprintable() else " " for ch in query).split())
    if not query:
        raise QueryError("the query is empty; type a few words describing the episode you want")
    if len(query) > settings.max_query_chars:
        raise QueryError(f"the query is too long ({len(query)} characters; at most {settings.max_query_chars})")
    return query


class SearchEngine:
    def __init__(
        self,
        index_dir: str | Path = "data/index",
        encoders: dict[str, Any] | None = None,
        settings: SearchSettings | None = None,
    ):
        self.index_dir = Path(index_dir)
        self.settings = settings or SearchSettings()
        manifest_path = self.index_dir / MANIFEST
        if not manifest_path.exists():
            raise IndexMissingError(f"no search index at {self.index_dir} (missing {MANIFEST}); run `dvc repro` first")
        self.manifest = json.loads(manifest_path.read_text())

        try:
            self.vectors = {name: VectorIndex.load(self.index_dir / VECTORS / name) for name in self.manifest["models"]}
            self.bm25 = BM25Index.load(self.index_dir / BM25)
            meta = pd.read_parquet(self.index_dir / META)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexMissingError(
                f"search index at {self.index_dir} is incomplete ({exc}); run `dvc repro` again") from None
        # Row lookup by id as plain dicts: building a Hit must not cost a pandas .loc per result.
        self.meta = {row["episode_id"]: row for row in meta.to_dict("records")}
        self._encoders: dict[str, Any] = dict(encoders or {})
        self._lock = threading.Lock()

    @property
    def models(self) -> list[str]:
        return list(self.manifest["models"])

    @property
    def default_model(self) -> str:
        return self.manifest.get("default_model", self.models[0])

    def __len__(self) -> int:
        return int(self.manifest["episodes"])

    def encoder(self, model: str):
        if model not in self.manifest["models"]:
            raise QueryError(f"unknown model {str(model)[:40]!r}; choose one of {', '.join(self.models)}")
        with self._lock:  # web requests run in threads; load each model once
            if model not in self._encoders:
                spec = self.manifest["models"][model]["spec"]
                try:
                    self._encoders[model] = load_query_encoder(spec, self.index_dir, self.settings.encode_threads)
                except (OSError, ValueError) as exc:
                    raise ModelUnavailableError(f"cannot load the {model} model from {spec!r}: {exc}") from None
        return self._encoders[model]

    def encode(self, query: str, model: str) -> np.ndarray:
        vector = np.asarray(self.encoder(model).encode([query]), dtype=np.float32).reshape(1, -1)
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def search(self, query: Any, k: Any = None, model: str | None = None, hybrid: bool = False) -> list[Hit]:
        query = clean_query(query, self.settings)
        k = parse_k(k, self.settings)
        model = model or self.default_model
        vector = self.encode(query, model)  # also validates the model name
        if not hybrid:
            scores, ids = self.vectors[model].search(vector, k)
            return self._hits(ids[0], scores[0].tolist())
        depth = max(k, self.settings.fusion_depth)
        _, dense_ids = self.vectors[model].search(vector, depth)
        bm25_scores, bm25_ids = self.bm25.search([query], depth)
        # A query with no known word gets all-zero BM25 scores in arbitrary order: fusing that would be noise.
        lexical = [i for i, s in zip(bm25_ids[0], bm25_scores[0]) if s > 0]
        fused_scores, fused_ids = reciprocal_rank_fusion([dense_ids, [lexical]], k=self.settings.rrf_k, top_k=k)
        return self._hits(fused_ids[0], fused_scores[0])

    def _hits(self, ids: list[str], scores: list[float]) -> list[Hit]:
        hits = []
        for rank, (episode_id, score) in enumerate(zip(ids, scores), start=1):
            row = self.meta.get(episode_id, {})
            hits.append(Hit(
                rank=rank, score=round(float(score), 4), episode_id=episode_id,
                **{name: str(row.get(name, "")) for name in
                   ("title", "show_title", "language", "pub_date", "audio", "snippet")},
            ))
        return hits

