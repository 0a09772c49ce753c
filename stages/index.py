"""DVC stage `index`: build the persistent search index (data/index/) from the embed stages' vectors.

No episode is re-encoded: the base, fine-tuned, USE and E5 vectors in data/embeddings/ are indexed as they are, with the
prepared episodes supplying BM25 text and display fields. The fused systems of params.yaml `fusion` (hybrid, shipped)
go into the manifest, so search serves exactly what evaluate measured; `shipped` is its default. The base and
fine-tuned encoders' ONNX exports (models/onnx/<model>) go in too, with check_int8's decision (stats/onnx.json) on
whether queries use the int8 file, and USE's uncompressed weights (unpack_use's models/use).
"""
import argparse
from pathlib import Path

from podsearch.artifacts import read_json
from podsearch.data import load_prepared
from podsearch.embeddings import load_embeddings
from podsearch.encoders import FINETUNED_DIR, encoder_spec
from podsearch.errors import exit_on_error
from podsearch.params import load_params, setup_logging
from podsearch.retrieval.fusion import load_fusions
from podsearch.search.build import IndexConfig, build_index

ENCODERS = ("base", "finetuned", "use", "e5")
ONNX_ENCODERS = ("base", "finetuned")  # use is numpy already, e5 has its own engine


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepared", default="data/prepared/episodes.parquet")
    parser.add_argument("--embeddings-dir", default="data/embeddings")
    parser.add_argument("--finetuned-model", default=FINETUNED_DIR,
                        help="folder the search loads to encode queries for the fine-tuned vectors")
    parser.add_argument("--onnx-dir", default="models/onnx", help="holds one export folder per model (export stages)")
    parser.add_argument("--onnx-stats", default="stats/onnx.json", help="check_int8's decision: int8 or fp32 queries")
    parser.add_argument("--use-weights", default="models/use", help="unpack_use's folder: USE queries load from it")
    parser.add_argument("--out", default="data/index")
    return parser.parse_args(argv)


def onnx_exports(onnx_dir: str, stats_path: str, log) -> dict[str, dict]:
    """{model: {"path", "int8"}} for the exports that exist; search serves the others with SentenceTransformer."""
    decisions = {}
    if Path(stats_path).exists():
        decisions = read_json(stats_path)["models"]
    exports = {}
    for name in ONNX_ENCODERS:
        folder = Path(onnx_dir) / name
        if not folder.exists():
            log.warning("%s does not exist; search will encode %s queries with SentenceTransformer", folder, name)
            continue
        if name not in decisions:
            log.warning("%s has no int8 decision for %s; its queries use fp32", stats_path, name)
        exports[name] = {"path": folder.as_posix(), "int8": bool(decisions.get(name, {}).get("use_int8", False))}
    return exports


def main(argv=None) -> None:
    args = parse_args(argv)
    log = setup_logging("index")
    if not Path(args.finetuned_model).exists():
        log.warning("%s does not exist yet; search with the finetuned or shipped system will fail until the train stage ran",
                    args.finetuned_model)
    with exit_on_error("index"):
        onnx = onnx_exports(args.onnx_dir, args.onnx_stats, log)
        config = IndexConfig.from_params(load_params("index"))
        base_model = load_params("train")["base_model"]  # the model embed_base encoded with
        e5_model = load_params("e5")["model"]  # and embed_e5
        fusions = load_fusions(load_params("fusion"))
        episodes = load_prepared(args.prepared)
        expected = episodes["episode_id"].astype(str).tolist()
        embeddings = {
            name: load_embeddings(Path(args.embeddings_dir) / f"{name}.npy", expected_ids=expected)
            for name in ENCODERS
        }
        manifest = build_index(
            args.out, episodes, embeddings,
            encoder_specs={name: encoder_spec(name, base_model, args.finetuned_model, e5_model)
                           for name in ENCODERS},
            fusions=fusions, kind=config.kind, snippet_chars=config.snippet_chars, onnx=onnx,
            use_weights=args.use_weights if Path(args.use_weights).exists() else None,
            index_options=config.index_options(),
        )
    log.info("indexed %d episodes for systems %s in %s", manifest["episodes"], ", ".join(manifest["systems"]), args.out)


if __name__ == "__main__":
    main()
