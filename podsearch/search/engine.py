"""The search a person runs: load a built index folder once, then answer queries in milliseconds.

Nothing is re-encoded at start-up; only the query is encoded. Encoders load lazily per model (the first query for a
model pays for it) unless the caller injects them, which is how tests use tiny fake encoders; so do each encoder's
vectors and BM25, so that a damaged file fails the systems that need it, with a line saying how to restore it, and
no other.
"""
from __future__ import annotations

import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet

from podsearch.artifacts import read_json, reading
from podsearch.config import from_section
from podsearch.embeddings import normalize
from podsearch.encoders import Encoder
from podsearch.errors import PodsearchError
from podsearch.retrieval.fusion import Fusion
from podsearch.retrieval.index import load_index
from podsearch.search.layout import BM25, BM25_SYSTEM, FORMAT_VERSION, MANIFEST, META, VECTORS

if TYPE_CHECKING:
    from podsearch.retrieval.bm25 import BM25Index
    from podsearch.retrieval.vector_index import VectorIndex

log = logging.getLogger(__name__)


class SearchError(PodsearchError):
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
    # Query encoding threads (0: the runtime's default). A ~10-token query gains nothing from more, and on a busy CPU
    # each op waits for the slowest thread, so more threads made one query far slower (docs/onnx.md#latency).
    encode_threads: int = 1

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> "SearchSettings":
        # Not strict: `search` also runs outside the repository, against whatever params.yaml is there.
        return from_section(cls, params, "search", strict=False)


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


def model_location(entry: dict[str, Any], index_dir: Path) -> str:
    """Where a manifest entry's model is: its `path` (written relative to the index folder, so the index works from
    any working directory and after the repository moves), else its spec (a hub id or package:NAME)."""
    from podsearch.models import resolve_model

    if entry.get("path"):
        return str((Path(index_dir) / entry["path"]).resolve())
    return resolve_model(entry["spec"])


def load_query_encoder(entry: dict[str, Any], index_dir: Path, threads: int = 1):
    """USE for kind `use` (from unpack_use's uncompressed weights when the index names them); E5 with its query
    prefix for kind `e5`; else the encoder's ONNX export (onnxruntime: no torch import, so it loads in a fraction of
    SentenceTransformer's time; int8 where the index says so); else, with the reason logged, SentenceTransformer
    (docs/onnx.md#start-up)."""
    if entry["kind"] in ("use", "e5"):
        from podsearch.encoders import E5Encoder, load_use

        folder = model_location(entry, index_dir) if entry.get("path") else None
        model = (load_use(threads=max(threads, 1), folder=folder) if entry["kind"] == "use"
                 else E5Encoder(folder or entry["spec"], "query", threads=max(threads, 1)))
        model.encode(["warm up"])
        return model
    from podsearch.onnx_encoder import OnnxEncoder, OnnxError

    try:
        if not entry.get("onnx"):
            raise OnnxError("the index names no ONNX export for it")
        model = OnnxEncoder(model_location(entry["onnx"], index_dir), threads, bool(entry["onnx"]["int8"]))
        if model.meta["dimension"] != entry["dim"]:
            raise OnnxError(f"{model.folder} gives {model.meta['dimension']}-d vectors, the index {entry['dim']}")
        model.encode(["warm up"])  # the first run allocates: pay it at start-up, not on the first query
        return model
    except OnnxError as exc:
        reason = exc
    # Said once it worked: when the fallback fails too, its error alone is the one line a user reads (and fixes).
    model = load_sentence_transformer(model_location(entry, index_dir), threads)
    log.warning("query encoder for %s: SentenceTransformer, not ONNX Runtime: %s", entry["spec"], reason)
    return model


def load_sentence_transformer(path: str, threads: int = 1):
    # Imported here: torch + sentence-transformers take seconds to import (docs/onnx.md#start-up), and error paths
    # should not pay for it.
    import torch
    from transformers.utils import logging as hf_logging

    from podsearch.encoders import load_encoder

    if threads > 0:
        torch.set_num_threads(threads)  # process-wide, which is fine: this process only encodes queries
    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every CLI call is noise
    model = load_encoder("base", path)  # "base": any SentenceTransformer spec, here already resolved to a folder
    # The first forward pass is far slower (lazy kernel set-up; docs/onnx.md#start-up); pay it at start-up, not on
    # the first query.
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


def one_line(text: Any, width: int | None = None) -> str:
    """Text on one line: control characters (NUL, escapes; RSS metadata has them) become spaces, so a title cannot
    move the cursor or recolour a terminal, whitespace collapses, and past `width` it is cut with an ellipsis."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    if width and len(text) > width:
        text = text[: width - 1].rstrip() + "…"
    return text


def clean_query(query: Any, settings: SearchSettings) -> str:
    if not isinstance(query, str):
        raise QueryError("the query must be text")
    query = one_line(query)  # control characters never help matching
    if not query:
        raise QueryError("the query is empty; type a few words describing the episode you want")
    if len(query) > settings.max_query_chars:
        raise QueryError(f"the query is too long ({len(query)} characters; at most {settings.max_query_chars})")
    return query


class SearchEngine:
    def __init__(
        self,
        index_dir: str | Path = "data/index",
        encoders: dict[str, Encoder] | None = None,
        settings: SearchSettings | None = None,
    ):
        self.index_dir = Path(index_dir)
        self.settings = settings or SearchSettings()
        manifest_path = self.index_dir / MANIFEST
        if not manifest_path.exists():
            raise IndexMissingError(f"no search index at {self.index_dir} (missing {MANIFEST}); run `dvc repro` first")
        self.manifest = read_json(manifest_path)
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMissingError(f"the index at {self.index_dir} was built by another version of podsearch "
                                    "(format {}); run `dvc repro` again".format(self.manifest.get("format_version")))
        try:
            missing = [f"{folder}/" for folder in [*(f"{VECTORS}/{name}" for name in self.manifest["encoders"]), BM25]
                       if not (self.index_dir / folder).is_dir()]
            if missing:
                raise OSError(f"no {', '.join(missing)}")
            self.fusions = {name: Fusion(**spec) for name, spec in self.manifest["fusion"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexMissingError(
                f"search index at {self.index_dir} is incomplete ({exc}); run `dvc repro` again") from None
        with reading(self.index_dir / META):
            # ParquetFile, not pandas or pq.read_table: both import pandas (read_table through pyarrow.dataset),
            # a noticeable share of a search command that never needs it (docs/onnx.md#start-up)
            meta = pyarrow.parquet.ParquetFile(self.index_dir / META).read().to_pylist()
        # Row lookup by id as plain dicts: building a Hit must not cost a pandas .loc per result.
        self.meta = {row["episode_id"]: row for row in meta}
        self._encoders: dict[str, Encoder] = dict(encoders or {})
        # Vectors and BM25 load on first use: a damaged file fails the systems that need it, and only those.
        self._vectors: dict[str, VectorIndex] = {}
        self._bm25: BM25Index | None = None
        # One lock per model: web requests run in threads and each model loads once; a request that needs a loaded
        # model does not wait for another one loading.
        self._locks = {name: threading.Lock() for name in [*self.manifest["encoders"], BM25_SYSTEM]}

    @property
    def systems(self) -> list[str]:
        return list(self.manifest["systems"])

    @property
    def default_system(self) -> str:
        return self.manifest["default_system"]

    def __len__(self) -> int:
        return int(self.manifest["episodes"])

    def check_system(self, system: Any) -> str:
        if system not in self.systems:
            raise QueryError(f"unknown system {str(system)[:40]!r}; choose one of {', '.join(self.systems)}")
        return system

    def parts_of(self, system: str) -> list[str]:
        """The single systems `system` is made of: a fused system's parts, or itself."""
        return self.fusions[system].parts if system in self.fusions else [system]

    def encoders_for(self, system: str) -> list[str]:
        """The query encoders a system needs (none for BM25; each dense part of a fused system)."""
        return [p for p in self.parts_of(system) if p in self.manifest["encoders"]]

    def encoder(self, name: str) -> Encoder:
        with self._locks[name]:
            if name not in self._encoders:
                entry = self.manifest["encoders"][name]
                try:
                    self._encoders[name] = load_query_encoder(entry, self.index_dir, self.settings.encode_threads)
                except (OSError, ValueError) as exc:
                    raise ModelUnavailableError(f"cannot load the {name} encoder {entry['spec']!r}: {exc}") from None
        return self._encoders[name]

    def vectors(self, name: str) -> VectorIndex:
        """The episode vectors of encoder `name` (vectors/<name>/), loaded on first use."""
        with self._locks[name]:
            if name not in self._vectors:
                self._vectors[name] = load_index(self.index_dir / VECTORS / name)
        return self._vectors[name]

    def warm_up(self, system: str | None = None) -> None:
        """Load everything `system` needs now (its vectors and encoders, and BM25 when it is a part), so the first
        query does not pay for it. A fused system's models load in threads: with USE's weights unpacked, its load is
        file reading and sentencepiece, which release the GIL, so a shipped `search` command starts sooner than with
        the parts loaded one after another. With the package's compressed weights it was no faster
        (docs/onnx.md#start-up)."""
        system = self.check_system(system or self.default_system)
        dense = self.encoders_for(system)
        for part in dense:  # first, and in this thread: a damaged file fails at once, before a model loads
            self.vectors(part)
        loads = [functools.partial(self.encoder, part) for part in dense]
        loads += [self.bm25] if BM25_SYSTEM in self.parts_of(system) else []
        if len(loads) < 2:
            for load in loads:
                load()
            return
        with ThreadPoolExecutor(max_workers=len(loads)) as pool:
            for future in [pool.submit(load) for load in loads]:
                future.result()  # re-raises a load's error here

    def encode(self, query: str, encoder: str) -> np.ndarray:
        return normalize(np.asarray(self.encoder(encoder).encode([query]), dtype=np.float32).reshape(1, -1))

    def search(self, query: Any, k: Any = None, system: str | None = None) -> list[Hit]:
        query = clean_query(query, self.settings)
        k = parse_k(k, self.settings)
        system = self.check_system(system or self.default_system)
        scores, ids = self._rank(system, query, k)
        return self._hits(ids, scores)

    def _rank(self, system: str, query: str, k: int) -> tuple[list[float], list[str]]:
        if system in self.fusions:
            fusion = self.fusions[system]
            runs = {}
            for part in fusion.parts:
                scores, ids = self._rank(part, query, max(k, fusion.depth))
                runs[part] = ([scores], [ids])
            fused_scores, fused_ids = fusion.fuse(runs, k)
            return fused_scores[0], fused_ids[0]
        if system == BM25_SYSTEM:
            scores, ids = self.bm25().search([query], k)
        else:
            scores, ids = self.vectors(system).search(self.encode(query, system), k)
        return scores[0][: len(ids[0])].tolist(), ids[0]

    def bm25(self) -> BM25Index:
        """Loaded on first use: importing bm25s and scipy costs start-up time (docs/onnx.md#start-up), and the
        default system may not need them."""
        with self._locks[BM25_SYSTEM]:
            if self._bm25 is None:
                from podsearch.retrieval.bm25 import BM25Index

                self._bm25 = BM25Index.load(self.index_dir / BM25)
        return self._bm25

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
