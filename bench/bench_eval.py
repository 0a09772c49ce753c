"""Benchmark: full-retrieval evaluation (batch-encode all queries once, one top-k over the index) against the
recipe's per-query loop (encode one query, query the index, repeat) on the same exact index and the same queries.

Prints both wall times and the speed-up ratio. Run from the repository root after the embed stage, e.g.
    python -m bench.bench_eval --model base --queries 300
Queries come from data/splits/test.parquet when it exists, else from the curated collection (data/curated/).
"""
import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from podsearch.curated import load_judgments, load_queries
from podsearch.data import load_prepared
from podsearch.embeddings import encode_texts, load_embeddings, normalize, rows_for
from podsearch.encoders import load_encoder
from podsearch.evaluation import curated_query_set, synthetic_queries
from podsearch.params import load_params
from podsearch.retrieval.index import make_index


def query_set(args, known):
    if Path(args.test).exists():
        return synthetic_queries(pd.read_parquet(args.test), known, source=args.test)
    queries = load_queries(args.curated, known)
    curated = curated_query_set(queries, load_judgments(args.judgments, {q.id for q in queries}, known))
    return curated.subset("curated", [bool(r) for r in curated.relevant])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base", choices=("base", "finetuned", "use"))
    parser.add_argument("--queries", type=int, default=300, help="number of queries timed (both methods)")
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per method; best time kept")
    parser.add_argument("--prepared", default="data/prepared/episodes.parquet")
    parser.add_argument("--test", default="data/splits/test.parquet")
    parser.add_argument("--curated", default="data/curated/queries.yaml")
    parser.add_argument("--judgments", default="data/curated/judgments.tsv")
    parser.add_argument("--embeddings", default="data/embeddings")
    args = parser.parse_args(argv)

    episodes = load_prepared(args.prepared)
    all_ids = episodes["episode_id"].tolist()
    ids, matrix = load_embeddings(Path(args.embeddings) / f"{args.model}.npy", expected_ids=all_ids)
    queries = query_set(args, set(all_ids))
    corpus_ids = sorted(set().union(*queries.relevant)) if queries.name == "synthetic" else all_ids
    texts = queries.queries[: args.queries]
    spec = {"base": load_params("train")["base_model"], "finetuned": "models/podcast-encoder", "use": None}[args.model]
    encoder = load_encoder(args.model, spec)

    index = make_index("exact", matrix.shape[1])
    index.add(corpus_ids, rows_for(ids, matrix, corpus_ids))
    encoder.encode(texts[:8])  # warm-up: first calls pay one-off allocation/thread start costs

    def batched_run():
        vectors = encode_texts(encoder, texts, batch_size=64, desc="batched queries")
        return index.search(vectors, args.k)[1]

    def looped_run():
        ranked = []
        for text in texts:
            vector = normalize(np.asarray(encoder.encode([text]), dtype=np.float32))
            ranked.append(index.search(vector, args.k)[1][0])
        return ranked

    # The machine is shared: alternate the two methods and keep each one's best time, so a burst of someone
    # else's load does not land on one side only.
    batched_s = looped_s = float("inf")
    for _ in range(args.repeats):
        started = time.perf_counter()
        batched = batched_run()
        batched_s = min(batched_s, time.perf_counter() - started)
        started = time.perf_counter()
        looped = looped_run()
        looped_s = min(looped_s, time.perf_counter() - started)

    same_top1 = np.mean([a[:1] == b[:1] for a, b in zip(batched, looped)])
    print(f"model={args.model} index=exact episodes={len(corpus_ids)} queries={len(texts)} k={args.k} "
          f"best of {args.repeats}")
    print(f"per-query loop (recipe): {looped_s:.2f}s  ({len(texts) / looped_s:.1f} queries/s)")
    print(f"full retrieval (batched): {batched_s:.2f}s  ({len(texts) / batched_s:.1f} queries/s)")
    print(f"speed-up: {looped_s / batched_s:.1f}x  (top-1 agreement between the two: {same_top1:.3f})")


if __name__ == "__main__":
    main()
