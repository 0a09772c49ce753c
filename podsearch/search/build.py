"""Writing the persistent search index (`data/index/`) from vectors the embed stages already computed.

Layout of an index folder (read back by `podsearch.search.engine`):
    manifest.json          encoders (spec, dim, ONNX export), fused systems, default system; the engine reads it first
    meta.parquet           display fields per episode, in the prepared-episodes order
    vectors/<encoder>/     one saved VectorIndex per encoder (ids inside): vectors/finetuned, vectors/base, ...
    bm25/                  BM25Index over the episode text
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from podsearch.artifacts import writing
from podsearch.config import from_section
from podsearch.encoders import USE_SPEC
from podsearch.errors import PodsearchError
from podsearch.retrieval.bm25 import BM25Index
from podsearch.retrieval.fusion import Fusion
from podsearch.retrieval.index import make_index
from podsearch.search.layout import BM25, BM25_SYSTEM, FORMAT_VERSION, MANIFEST, META, VECTORS

log = logging.getLogger(__name__)

META_COLUMNS = ("episode_id", "title", "show_title", "language", "pub_date", "audio", "snippet")


class IndexBuildError(PodsearchError, ValueError):
    """Inputs that cannot make a consistent index; the stage prints it as one line."""


def make_snippet(text: str, max_chars: int) -> str:
    """First `max_chars` of a description on one line, cut at a word boundary so results never end mid-word."""
    text = re.sub(r"\s+", " ", str(text or "")).strip()
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars].rsplit(" ", 1)[0] or text[:max_chars]
    return cut.rstrip(" ,.;:-") + "…"


def display_metadata(episodes: pd.DataFrame, snippet_chars: int) -> pd.DataFrame:
    meta = episodes[["episode_id", "title", "show_title", "language", "pub_date", "audio"]].astype(str).copy()
    meta["snippet"] = [make_snippet(d, snippet_chars) for d in episodes["description"].astype(str)]
    return meta.reset_index(drop=True)


@dataclass(frozen=True)
class IndexConfig:
    """params.yaml `index`."""

    kind: str = "exact"            # exact | hnsw
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 256
    snippet_chars: int = 200

    @classmethod
    def from_params(cls, params) -> "IndexConfig":
        return from_section(cls, params, "index")

    def index_options(self) -> dict | None:
        if self.kind != "hnsw":
            return None
        return {"m": self.hnsw_m, "ef_construction": self.hnsw_ef_construction, "ef_search": self.hnsw_ef_search}


def _relative(spec: str, out_dir: Path) -> str | None:
    """A local model folder as a path relative to the index folder (the engine resolves it from there, wherever it
    runs); None for a hub id or package:NAME, which the engine resolves by spec."""
    if spec.startswith("package:") or not Path(spec).exists():
        return None
    return os.path.relpath(Path(spec).resolve(), Path(out_dir).resolve())


def build_index(
    out_dir: str | Path,
    episodes: pd.DataFrame,
    embeddings: dict[str, tuple[list[str], np.ndarray]],
    encoder_specs: dict[str, str],
    fusions: dict[str, Fusion] | None = None,
    default_system: str | None = None,
    kind: str = "exact",
    snippet_chars: int = 200,
    index_options: dict | None = None,
    onnx: dict[str, dict] | None = None,
    use_weights: str | Path | None = None,
) -> dict:
    """Write a complete index folder and return its manifest.

    `embeddings[name]` = (ids, matrix) rows aligned with `episodes`; `encoder_specs[name]` is what the engine loads to
    encode queries for those vectors (a folder such as models/podcast-encoder, a `package:` spec, or `use`). Vectors
    are reused as they are: encoding every episode again would take minutes on CPU (bench/results/encode.txt) and
    could drift from what was evaluated. `fusions` are the fused systems (params.yaml `fusion`) the engine serves beside the single ones;
    `default_system` is what a search without --system gets (the shipped system). `onnx[name]`: {"path", "int8"}.
    `use_weights`: unpack_use's folder, which `use` queries load from (its entry's path) when it exists.
    """
    out_dir = Path(out_dir)
    fusions = fusions or {}
    episode_ids = episodes["episode_id"].astype(str).tolist()
    if not episode_ids:
        raise IndexBuildError("no episodes to index")
    if set(embeddings) != set(encoder_specs):
        raise IndexBuildError(f"embeddings for {sorted(embeddings)} but encoder specs for {sorted(encoder_specs)}")
    singles = [*sorted(embeddings), BM25_SYSTEM]
    systems = [*singles, *fusions]
    for name, fusion in fusions.items():
        missing = [p for p in fusion.parts if p not in singles]
        if missing:
            raise IndexBuildError(f"fused system {name} needs {', '.join(missing)}, which the index does not hold")
    default_system = default_system or ("shipped" if "shipped" in fusions else systems[0])
    if default_system not in systems:
        raise IndexBuildError(f"default system {default_system!r} is not one of {', '.join(systems)}")

    encoders = {}
    # The whole folder or nothing: the engine must never find one encoder's vectors beside another build's manifest.
    with writing(out_dir, folder=True) as tmp:
        for name, (ids, matrix) in sorted(embeddings.items()):
            if list(map(str, ids)) != episode_ids:
                raise IndexBuildError(
                    f"{name} embeddings are not aligned with the prepared episodes "
                    f"({len(ids)} vs {len(episode_ids)} ids); re-run the embed stage"
                )
            matrix = np.asarray(matrix, dtype=np.float32)
            norms = np.linalg.norm(matrix, axis=1)
            if not np.all(np.abs(norms[norms > 0] - 1.0) < 1e-3):
                # Inner-product scores are only cosines (and comparable across queries) on unit vectors.
                raise IndexBuildError(f"{name} embeddings are not L2-normalised")
            index = make_index(kind, matrix.shape[1], **(index_options or {}))
            index.add(episode_ids, matrix)
            index.save(tmp / VECTORS / name)
            spec = encoder_specs[name]
            export = (onnx or {}).get(name)
            folder = str(use_weights) if spec == USE_SPEC and use_weights else spec
            # relative to out_dir, which tmp becomes (its sibling, so the same relative path)
            # kind: how the engine loads the spec (the encoder kinds of podsearch.encoders: USE, E5 or ONNX)
            encoders[name] = {"kind": name, "spec": spec, "path": _relative(folder, out_dir),
                              "dim": int(matrix.shape[1]), "count": len(index),
                              "onnx": export and dict(export, path=_relative(export["path"], out_dir))}
            log.info("%s: %d vectors of dim %d -> %s", name, len(index), matrix.shape[1], out_dir / VECTORS / name)

        BM25Index(episode_ids, episodes["text"].astype(str).tolist()).save(tmp / BM25)
        display_metadata(episodes, snippet_chars).to_parquet(tmp / META, index=False)

        manifest = {
            "format_version": FORMAT_VERSION,
            "episodes": len(episode_ids),
            "index_kind": kind,
            "encoders": encoders,
            "fusion": {name: fusion.to_dict() for name, fusion in fusions.items()},
            "systems": systems,
            "default_system": default_system,
            "snippet_chars": int(snippet_chars),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    log.info("index of %d episodes written to %s (systems %s; default %s)", len(episode_ids), out_dir,
             ", ".join(systems), default_system)
    return manifest
