"""Writing the persistent search index (`data/index/`) from vectors the embed stages already computed.

Layout of an index folder (read back by `podsearch.search.engine`):
    manifest.json          models (spec + dim), counts, index kind; the engine reads this first
    meta.parquet           display fields per episode, in the prepared-episodes order
    vectors/<model>/       one saved VectorIndex per model (ids inside), e.g. vectors/finetuned, vectors/base
    bm25/                  BM25Index over the episode text, for --hybrid
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from podsearch.retrieval.bm25 import BM25Index
from podsearch.retrieval.index import make_index

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
META = "meta.parquet"
VECTORS = "vectors"
BM25 = "bm25"
META_COLUMNS = ("episode_id", "title", "show_title", "language", "pub_date", "audio", "snippet")
FORMAT_VERSION = 1


class IndexBuildError(ValueError):
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


def build_index(
    out_dir: str | Path,
    episodes: pd.DataFrame,
    embeddings: dict[str, tuple[list[str], np.ndarray]],
    model_specs: dict[str, str],
    kind: str = "exact",
    snippet_chars: int = 200,
    index_options: dict | None = None,
) -> dict:
    """Write a complete index folder and return its manifest.

    `embeddings[name]` = (ids, matrix) rows aligned with `episodes`; `model_specs[name]` is what the engine loads to
    encode queries for that model (a folder such as models/podcast-encoder, or a `package:` spec). Vectors are reused
    as they are: encoding every episode again would take minutes on CPU and could drift from what was evaluated.
    """
    out_dir = Path(out_dir)
    episode_ids = episodes["episode_id"].astype(str).tolist()
    if not episode_ids:
        raise IndexBuildError("no episodes to index")
    if set(embeddings) != set(model_specs):
        raise IndexBuildError(f"embeddings for {sorted(embeddings)} but model specs for {sorted(model_specs)}")

    models = {}
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
        index.save(out_dir / VECTORS / name)
        models[name] = {"spec": model_specs[name], "dim": int(matrix.shape[1]), "count": len(index)}
        log.info("%s: %d vectors of dim %d -> %s", name, len(index), matrix.shape[1], out_dir / VECTORS / name)

    BM25Index(episode_ids, episodes["text"].astype(str).tolist()).save(out_dir / BM25)
    display_metadata(episodes, snippet_chars).to_parquet(out_dir / META, index=False)

    manifest = {
        "format_version": FORMAT_VERSION,
        "episodes": len(episode_ids),
        "index_kind": kind,
        "models": models,
        "default_model": "finetuned" if "finetuned" in models else sorted(models)[0],
        "bm25": True,
        "snippet_chars": int(snippet_chars),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    log.info("index of %d episodes written to %s", len(episode_ids), out_dir)
    return manifest
