"""DVC stage `embed_<model>`: encode every prepared episode once -> data/embeddings/<model>.npy + <model>.ids.txt.

base and finetuned are encoded with their ONNX export (the export stages' models/onnx/<model>): onnxruntime's fused
graph gives SentenceTransformer's vectors, and search encodes queries with the same graph (docs/onnx.md). use: numpy.
e5: multilingual-e5-small (e5.model) on each episode's first e5.max_words words, with E5's "passage: " prefix.

Params read: embed.batch_size; base and finetuned also embed.max_seq_length; e5 also e5.model and e5.max_words;
compute.engine, compute.ray_address and compute.embed.* (with `ray`, Ray actors encode the same batches: the same
matrix).
"""
import argparse
import functools
import time
from pathlib import Path

from podsearch.compute import Compute
from podsearch.data import load_prepared
from podsearch.embeddings import encode_texts, encode_texts_on_ray, first_words, save_embeddings
from podsearch.encoders import ENCODER_KINDS, USE_THREADS, E5Encoder, EncoderError, load_use
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
        onnx = args.model in ("base", "finetuned")
        if onnx and not args.onnx:
            raise EncoderError(f"--onnx is required (the export stage's models/onnx/{args.model})")
        # a token limit only for the ONNX encoders, so embed_use and embed_e5 do not read (or depend on) it
        max_seq_length = (args.max_seq_length or int(params["max_seq_length"])) if onnx else None
        texts, batch_size, desc = episodes["text"].tolist(), int(params["batch_size"]), f"embed {args.model}"
        # How to build the encoder: once here, or once per Ray actor with the actor's CPUs as its threads. Here it
        # gets threads=0, one per core: the whole machine is this stage's.
        threads = compute.threads if compute.is_ray else 0
        if args.model == "use":
            make = functools.partial(load_use, threads=USE_THREADS)
        elif args.model == "e5":
            e5 = load_params("e5")
            texts = [first_words(text, e5["max_words"]) for text in texts]
            make = functools.partial(E5Encoder, e5["model"], "passage", threads)
        elif compute.is_ray:  # the export's files travel with the task, to actors on any machine
            make = OnnxBundle(args.onnx, threads=threads, max_seq_length=max_seq_length)
        else:
            make = functools.partial(OnnxEncoder, args.onnx, threads=threads, max_seq_length=max_seq_length)
        started = time.perf_counter()
        if compute.is_ray:
            matrix = encode_texts_on_ray(compute, make, texts, batch_size, desc=desc)
        else:
            matrix = encode_texts(make(), texts, batch_size, desc=desc)
        save_embeddings(out, episodes["episode_id"].tolist(), matrix)
    seconds = time.perf_counter() - started
    log.info("%d episodes -> %s %s in %.0fs (%.1f episodes/s)", len(episodes), out, matrix.shape, seconds,
             len(episodes) / seconds)


if __name__ == "__main__":
    main()
