"""Encode a corpus once per model and store it, so training, evaluation and the index reuse the same vectors."""
from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from podsearch.artifacts import damaged, reading, writing
from podsearch.compute import Compute, map_on_actors
from podsearch.errors import PodsearchError

if TYPE_CHECKING:
    from podsearch.encoders import Encoder


class EmbeddingError(PodsearchError, ValueError):
    """Stored embeddings that do not match what the caller expects; stages print it as one line."""


def normalize(matrix: np.ndarray) -> np.ndarray:
    """L2-normalise rows so inner product = cosine; zero rows (empty text) stay zero instead of becoming NaN."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Row indices grouped into batches of similar length, longest first (ties in input order).

    Transformer cost per batch follows its longest member, so padding to it is wasted compute; sorting makes
    neighbours alike. Longest first means a batch too big for memory fails at once rather than at the end. The last
    batch may be short, never dropped. Corpus encoding and the seq2seq/chat query generators all batch this way.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def first_words(text: str, n: int | None) -> str:
    """The first `n` whitespace-separated words of `text`, joined by single spaces; the whole text when n is None."""
    return text if n is None else " ".join(str(text).split()[:int(n)])


def encode_texts(encoder: Encoder, texts: list[str], batch_size: int = 32, desc: str = "encode") -> np.ndarray:
    """Encode texts with any object having `.encode(list[str]) -> array`, returning float32 [n, dim], normalised.

    Batches hold texts of similar length (length_sorted_batches): random order pads most batches to near
    max_seq_length. Rows come back in the input order.
    """
    from tqdm.auto import tqdm  # here, not at import: the search engine imports this module for `normalize`

    texts = _checked(texts, desc)
    batches = length_sorted_batches([len(t) for t in texts], batch_size)
    encode = BatchEncoder(lambda: encoder)
    chunks: list[np.ndarray] = []
    with tqdm(total=len(texts), desc=desc, unit="text", mininterval=2.0) as bar:
        for rows in batches:
            chunks.extend(encode([[texts[i] for i in rows]]))
            bar.update(len(rows))
    return _assemble(batches, chunks)


class BatchEncoder:
    """Builds its encoder once (on a Ray actor: one encoder per actor) and encodes lists of batches, each batch in
    one `.encode` call, so the padding, and the vectors, are the local engine's."""

    def __init__(self, make_encoder: Callable[[], Encoder]):
        self.encoder = make_encoder()
        # SentenceTransformer draws its own per-call bar at INFO logging; one bar per corpus is enough.
        self.quiet = {"show_progress_bar": False} if _accepts(self.encoder.encode, "show_progress_bar") else {}

    def __call__(self, batches: list[list[str]]) -> list[np.ndarray]:
        return [np.asarray(self.encoder.encode(batch, **self.quiet), dtype=np.float32) for batch in batches]


def encode_texts_on_ray(compute: Compute, make_encoder: Callable[[], Encoder], texts: list[str],
                        batch_size: int = 32, desc: str = "encode") -> np.ndarray:
    """encode_texts on a Ray actor pool (compute.embed), one encoder per actor built by `make_encoder` (picklable):
    the same batches, sent a run of batches per task, so the matrix is encode_texts' with the same encoder."""
    from tqdm.auto import tqdm

    texts = _checked(texts, desc)
    batches = length_sorted_batches([len(t) for t in texts], batch_size)
    # ~8 tasks per actor keeps every actor busy to the end; at most 64 batches keeps a task's result a few MB.
    per_task = max(1, min(64, math.ceil(len(batches) / (8 * compute.actors))))
    tasks = [batches[start:start + per_task] for start in range(0, len(batches), per_task)]
    results: list[list[np.ndarray]] = [[] for _ in tasks]
    with tqdm(total=len(texts), desc=desc, unit="text", mininterval=2.0) as bar:
        for k, chunks in map_on_actors(compute, [[[texts[i] for i in rows] for rows in task] for task in tasks],
                                       functools.partial(BatchEncoder, make_encoder), what=desc):
            results[k] = chunks
            bar.update(sum(len(rows) for rows in tasks[k]))
    return _assemble(batches, [chunk for chunks in results for chunk in chunks])


def _checked(texts: list[str], desc: str) -> list[str]:
    texts = [str(t) for t in texts]
    if not texts:
        raise EmbeddingError(f"{desc}: nothing to encode")
    return texts


def _assemble(batches: list[list[int]], chunks: list[np.ndarray]) -> np.ndarray:
    """The batches' vectors back in input order, normalised."""
    sorted_matrix = np.concatenate(chunks, axis=0)
    matrix = np.empty_like(sorted_matrix)
    matrix[np.concatenate([np.asarray(rows) for rows in batches])] = sorted_matrix
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
    # Both files complete before either is renamed into place: vectors never sit beside another run's ids.
    with writing(path) as tmp_matrix:
        np.save(tmp_matrix, matrix)
        with writing(ids_path(path)) as tmp_ids:
            tmp_ids.write_text("".join(f"{i}\n" for i in ids))
    return path


def load_embeddings(path: str | Path, expected_ids: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """(ids, matrix). With expected_ids, fail clearly unless rows are exactly those ids in that order."""
    path = Path(path)
    if not path.exists():
        raise EmbeddingError(f"{path}: not found; run the embed stage (stages/embed.py) first")
    if not ids_path(path).exists():
        raise EmbeddingError(f"{ids_path(path)}: not found; embeddings without ids cannot be aligned")
    with reading(path):
        matrix = np.load(path)
    with reading(ids_path(path)):
        ids = ids_path(path).read_text().splitlines()
    if matrix.ndim != 2 or matrix.shape[0] != len(ids):
        raise damaged(path, f"{matrix.shape[0] if matrix.ndim else 0} rows but {len(ids)} ids in {ids_path(path)}")
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
