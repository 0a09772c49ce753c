"""DVC stage `embed_<model>`: encode every prepared episode once -> data/embeddings/<model>.npy + <model>.ids.txt.

base and finetuned are encoded with their ONNX export (the export stages' models/onnx/<model>): onnxruntime's fused
graph gives SentenceTransformer's vectors (max abs diff ~2e-7) 1.2-1.3x faster (bench/bench_encode.py). use: numpy.

Params read: embed.batch_size; base and finetuned also embed.max_seq_length.
"""
import argparse
import time
from pathlib import Path

from podsearch.data import load_prepared
from podsearch.embeddings import encode_texts, save_embeddings
from podsearch.encoders import ENCODER_KINDS, EncoderError, load_encoder
from podsearch.errors import exit_on_error
from podsearch.onnx_encoder import OnnxEncoder
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
        episodes = load_prepared(args.prepared)
        if args.limit:
            episodes = episodes.head(args.limit)
        if args.model == "use":  # no token limit to set, so embed_use does not read (or depend on) max_seq_length
            encoder = load_encoder("use")
        elif not args.onnx:
            raise EncoderError(f"--onnx is required (the export stage's models/onnx/{args.model})")
        else:
            # threads=0: one per core, the whole machine is this stage's
            encoder = OnnxEncoder(args.onnx, threads=0,
                                  max_seq_length=args.max_seq_length or int(params["max_seq_length"]))
        started = time.perf_counter()
        matrix = encode_texts(encoder, episodes["text"].tolist(), int(params["batch_size"]), desc=f"embed {args.model}")
        save_embeddings(out, episodes["episode_id"].tolist(), matrix)
    seconds = time.perf_counter() - started
    log.info("%d episodes -> %s %s in %.0fs (%.1f episodes/s)", len(episodes), out, matrix.shape, seconds,
             len(episodes) / seconds)


if __name__ == "__main__":
    main()
