"""DVC stage `embed_<model>`: encode every prepared episode once -> data/embeddings/<model>.npy + <model>.ids.txt.

base and finetuned are encoded with their ONNX export (the export stages' models/onnx/<model>): onnxruntime's fused
graph gives SentenceTransformer's vectors (max abs diff ~2e-7) 1.2-1.3x faster (bench/bench_encode.py). use: numpy.

Params read: embed.batch_size; base and finetuned also embed.max_seq_length; compute.engine, compute.ray_address and
compute.embed.* (with `ray`, Ray actors encode the same batches: the same matrix).
"""
import argparse
import functools
import time
from pathlib import Path

from podsearch.compute import Compute
from podsearch.data import load_prepared
from podsearch.embeddings import encode_texts, encode_texts_on_ray, save_embeddings
from podsearch.encoders import ENCODER_KINDS, USE_THREADS, EncoderError, load_encoder, load_use
from podsearch.errors import exit_on_error
from podsearch.onnx_encoder import OnnxBundle, OnnxEncoder
from podsearch.params import load_params, setup_logging


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, choices=ENCODER_KINDS)
    parser.add_argument("--prepared", default="data/prepared/episodes.parquet")
    parser.add_argument("--onnx", default=None, help="the model's ONNX export folder (base and finetuned)")
    parser.add_argument("--out", default=None, help="default data/embeddings/<model>.npy")
    parser.add_argument("--limit", type=int, default=None, help="encode only the first N episodes (trials only)")
    parser.add_argument("--max-seq-length", type=int, default=None, help="override embed.max_seq_length (trials only)")
    args = parser.parse_args(argv)
    log = setup_logging(f"embed_{args.model}")

    out = Path(args.out or f"data/embeddings/{args.model}.npy")
    with exit_on_error(f"embed_{args.model}"):
        params = load_params("embed")
        compute = Compute.from_params(load_params("compute"), "embed")
        episodes = load_prepared(args.prepared)
        if args.limit:
            episodes = episodes.head(args.limit)
        if args.model != "use" and not args.onnx:
            raise EncoderError(f"--onnx is required (the export stage's models/onnx/{args.model})")
        # no token limit to set for use, so embed_use does not read (or depend on) max_seq_length
        max_seq_length = None if args.model == "use" else args.max_seq_length or int(params["max_seq_length"])
        texts, batch_size, desc = episodes["text"].tolist(), int(params["batch_size"]), f"embed {args.model}"
        if compute.is_ray:
            # One encoder per actor, with the actor's CPUs as its threads (USE: USE_THREADS); the actors load it.
            make = (functools.partial(load_use, threads=USE_THREADS) if args.model == "use"
                    else OnnxBundle(args.onnx, threads=compute.threads, max_seq_length=max_seq_length))
            started = time.perf_counter()
            matrix = encode_texts_on_ray(compute, make, texts, batch_size, desc=desc)
        else:
            # threads=0: one per core, the whole machine is this stage's
            encoder = (load_encoder("use") if args.model == "use"
                       else OnnxEncoder(args.onnx, threads=0, max_seq_length=max_seq_length))
            started = time.perf_counter()
            matrix = encode_texts(encoder, texts, batch_size, desc=desc)
        save_embeddings(out, episodes["episode_id"].tolist(), matrix)
    seconds = time.perf_counter() - started
    log.info("%d episodes -> %s %s in %.0fs (%.1f episodes/s)", len(episodes), out, matrix.shape, seconds,
             len(episodes) / seconds)


if __name__ == "__main__":
    main()
