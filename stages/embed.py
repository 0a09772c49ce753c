"""DVC stage `embed_<model>`: encode every prepared episode once -> data/embeddings/<model>.npy + <model>.ids.txt.

Params read: embed.batch_size; base and finetuned also embed.max_seq_length; base also train.base_model (its spec).
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from podsearch.data import DataError, load_prepared  # noqa: E402
from podsearch.embeddings import EmbeddingError, encode_texts, save_embeddings  # noqa: E402
from podsearch.encoders import ENCODER_KINDS, FINETUNED_DIR, load_encoder  # noqa: E402
from podsearch.params import load_params, setup_logging  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, choices=ENCODER_KINDS)
    parser.add_argument("--prepared", default="data/prepared/episodes.parquet")
    parser.add_argument("--finetuned", default=FINETUNED_DIR, help="folder of the fine-tuned model")
    parser.add_argument("--out", default=None, help="default data/embeddings/<model>.npy")
    parser.add_argument("--limit", type=int, default=None, help="encode only the first N episodes (trials only)")
    parser.add_argument("--max-seq-length", type=int, default=None, help="override embed.max_seq_length (trials only)")
    args = parser.parse_args(argv)
    log = setup_logging(f"embed_{args.model}")

    params = load_params("embed")
    spec = {"base": lambda: load_params("train")["base_model"], "finetuned": lambda: args.finetuned,
            "use": lambda: None}[args.model]()
    out = Path(args.out or f"data/embeddings/{args.model}.npy")
    try:
        episodes = load_prepared(args.prepared)
    except DataError as error:
        raise SystemExit(str(error)) from None
    if args.limit:
        episodes = episodes.head(args.limit)

    # USE has no token limit to set, so embed_use does not read (or depend on) embed.max_seq_length.
    max_seq_length = None if args.model == "use" else args.max_seq_length or params["max_seq_length"]
    encoder = load_encoder(args.model, spec, max_seq_length=max_seq_length)
    started = time.perf_counter()
    try:
        matrix = encode_texts(encoder, episodes["text"].tolist(), int(params["batch_size"]), desc=f"embed {args.model}")
        save_embeddings(out, episodes["episode_id"].tolist(), matrix)
    except EmbeddingError as error:
        raise SystemExit(str(error)) from None
    seconds = time.perf_counter() - started
    log.info("%d episodes -> %s %s in %.0fs (%.1f episodes/s)", len(episodes), out, matrix.shape, seconds,
             len(episodes) / seconds)


if __name__ == "__main__":
    main()
