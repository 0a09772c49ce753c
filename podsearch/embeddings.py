"""Encode a corpus once per model and store it, so training, evaluation and the index reuse the same vectors."""
from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from podsearch.errors import PodsearchError


class EmbeddingError(PodsearchError, ValueError):
    """Stored embeddings that do not match what the caller expects; stages print it as one line."""


def normalize(matrix: np.ndarray) -> np.ndarray:
    """L2-normalise rows so inner product = cosine; zero rows (empty text) stay zero instead of becoming NaN."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def encode_texts(encoder, texts: list[str], batch_size: int = 32, desc: str = "encode") -> np.ndarray:
    """Encode texts with any object having `.encode(list[str]) -> array`, returning float32 [n, dim], normalised.

    Batches hold texts of similar length (longest first) because transformer cost per batch follows its longest
    member; random order pads most batches to near max_seq_length. Rows come back in the input order.
    """
    texts = [str(t) for t in texts]
    if not texts:
        raise EmbeddingError(f"{desc}: nothing to encode")
    # SentenceTransformer draws its own per-call bar at INFO logging; one bar per corpus is enough.
    quiet = {"show_progress_bar": False} if _accepts(encoder.encode, "show_progress_bar") else {}
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    chunks: list[np.ndarray] = []
    with tqdm(total=len(texts), desc=desc, unit="text", mininterval=2.0) as bar:
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            chunks.append(np.asarray(encoder.encode(batch, **quiet), dtype=np.float32))
            bar.update(len(batch))
    sorted_matrix = np.concatenate(chunks, axis=0)
    matrix = np.empty_like(sorted_matrix)
    matrix[np.asarray(order)] = sorted_matrix
    return normalize(matrix)


def _accepts(function, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def ids_path(path: str | Path) -> Path:
    path = Path(path)
    stem = path.name[: -len(".npy")] if path.name.endswith(".npy") else path.name
    return path.with_name(stem + ".ids.txt")


def save_embeddings(path: str | Path, ids: list[str], matrix: np.ndarray) -> Path:
    """`<name>.npy` (float32) plus `<name>.ids.txt` (one id per line) so readers can verify row alignment."""
    path = Path(path)
    ids = [str(i) for i in ids]
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(ids):
        raise EmbeddingError(f"{path}: {len(ids)} ids but matrix of shape {matrix.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    ids_path(path).write_text("".join(f"{i}\n" for i in ids))
    return path


def load_embeddings(path: str | Path, expected_ids: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """(ids, matrix). With expected_ids, fail clearly unless rows are exactly those ids in that order."""
    path = Path(path)
    if not path.exists():
        raise EmbeddingError(f"{path}: not found; run the embed stage (stages/embed.py) first")
    if not ids_path(path).exists():
        raise EmbeddingError(f"{ids_path(path)}: not found; embeddings without ids cannot be aligned")
    matrix = np.load(path)
    ids = ids_path(path).read_text().splitlines()
    if matrix.ndim != 2 or matrix.shape[0] != len(ids):
        raise EmbeddingError(f"{path}: {matrix.shape[0]} rows but {len(ids)} ids in {ids_path(path)}")
    if expected_ids is not None and ids != [str(i) for i in expected_ids]:
        raise EmbeddingError(
            f"{path}: rows are not aligned with the prepared episodes ({len(ids)} vs {len(expected_ids)} ids); "
            "re-run the embed stage"
        )
    return ids, matrix.astype(np.float32, copy=False)


def rows_for(ids: list[str], matrix: np.ndarray, wanted: list[str], what: str = "embeddings") -> np.ndarray:
    """Rows of `matrix` for `wanted` ids, in that order (e.g. the test episodes), without re-encoding anything."""
    position = {episode: row for row, episode in enumerate(ids)}
    missing = [w for w in wanted if w not in position]
    if missing:
        raise EmbeddingError(f"{what}: {len(missing)} episode ids have no embedding, e.g. {missing[0]}")
    return matrix[np.asarray([position[w] for w in wanted], dtype=np.int64)] if wanted else matrix[:0]
