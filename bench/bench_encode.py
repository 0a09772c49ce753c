"""Benchmark: corpus encoding (the embed stages) with the ONNX export on onnxruntime vs SentenceTransformer on torch.

Same process, same episode texts (a slice of the prepared episodes), the embed stage's settings (length-sorted
batches of embed.batch_size, truncation at embed.max_seq_length, each runtime's default threads: one per core);
the two runs alternate for --rounds rounds and the best time of each is kept. Prints episodes/s and the ratio, the
max abs difference between the two matrices, and the retrieval metrics of both (the synthetic test queries whose
episode is in the slice, searched over the slice, queries encoded once with the same encoder).

Run from the repository root after the export stages, e.g.
    python -m bench.bench_encode --model finetuned --episodes 480
"""
import argparse
import time
from pathlib import Path

import pandas as pd

from podsearch.data import load_prepared
from podsearch.embeddings import encode_texts
from podsearch.encoders import load_encoder
from podsearch.evaluation import HEADLINE, Corpus, DenseModel, Runner, details, synthetic_queries
from podsearch.onnx_encoder import OnnxEncoder
from podsearch.params import load_params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="finetuned", choices=("base", "finetuned"))
    parser.add_argument("--episodes", type=int, default=480, help="prepared episodes encoded (the first N)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prepared", default="data/prepared/episodes.parquet")
    parser.add_argument("--test", default="data/splits/test.parquet")
    parser.add_argument("--finetuned", default="models/podcast-encoder")
    parser.add_argument("--onnx-dir", default="models/onnx")
    args = parser.parse_args(argv)

    params = load_params("embed")
    batch_size, max_seq_length = int(params["batch_size"]), int(params["max_seq_length"])
    episodes = load_prepared(args.prepared).head(args.episodes)
    texts, ids = episodes["text"].tolist(), episodes["episode_id"].tolist()
    spec = load_params("train")["base_model"] if args.model == "base" else args.finetuned
    encoders = {"torch": load_encoder(args.model, spec, max_seq_length=max_seq_length),
                "onnx": OnnxEncoder(Path(args.onnx_dir) / args.model, threads=0, max_seq_length=max_seq_length)}
    for encoder in encoders.values():
        encode_texts(encoder, texts[:batch_size], batch_size, desc="warm-up")

    seconds = {name: [] for name in encoders}
    matrices = {}
    for _ in range(args.rounds):
        for name, encoder in encoders.items():
            started = time.perf_counter()
            matrices[name] = encode_texts(encoder, texts, batch_size, desc=name)
            seconds[name].append(time.perf_counter() - started)
    best = {name: min(times) for name, times in seconds.items()}
    print(f"{len(texts)} episodes ({args.model}), batches of {batch_size}, max_seq_length {max_seq_length}, "
          f"best of {args.rounds} alternating rounds:")
    for name in encoders:
        print(f"  {name:5s} {best[name]:7.1f} s  {len(texts) / best[name]:6.1f} episodes/s  "
              f"(all rounds: {', '.join(f'{s:.1f}' for s in seconds[name])})")
    print(f"  ratio torch/onnx time x{best['torch'] / best['onnx']:.2f}")
    print(f"  max abs diff between the two matrices: {abs(matrices['torch'] - matrices['onnx']).max():.2e}")

    pairs = pd.read_parquet(args.test)
    queries = synthetic_queries(pairs[pairs["episode_id"].isin(set(ids))], set(ids), source=args.test)
    query_encoder = encoders["onnx"]  # the same for both matrices: only the episode vectors differ
    metrics = {name: details({name: Runner().dense(name, DenseModel(ids, matrix, query_encoder), Corpus(ids, texts),
                                                   queries)}, queries)[name] for name, matrix in matrices.items()}
    print(f"  retrieval, {len(queries)} synthetic test queries over the {len(ids)} episodes:")
    for metric in HEADLINE:
        print(f"    {metric:10s} torch {metrics['torch'][metric]:.4f}  onnx {metrics['onnx'][metric]:.4f}  "
              f"delta {metrics['onnx'][metric] - metrics['torch'][metric]:+.4f}")


if __name__ == "__main__":
    main()
