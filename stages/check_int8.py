"""DVC stage `check_int8`: may search encode queries with the int8 ONNX models? -> stats/onnx.json.

For each exported encoder (base, fine-tuned), the synthetic test queries and the curated queries are encoded with
model.onnx (fp32) and model.int8.onnx and searched against the same stored episode vectors (data/embeddings/), as
evaluate does. int8 is used only where every headline metric (recall@10, recall@30, mrr@30) on synthetic,
curated_dev and curated_test stays within onnx.int8_tolerance of fp32. The index stage reads the decision.

Params read: onnx.int8_tolerance.
"""
import argparse
from pathlib import Path

from podsearch.artifacts import write_json
from podsearch.embeddings import load_embeddings
from podsearch.errors import exit_on_error
from podsearch.evaluation import HEADLINE, DenseModel, Runner, add_input_arguments, details, load_eval_data
from podsearch.onnx_encoder import OnnxEncoder
from podsearch.params import load_params, setup_logging

MODELS = ("base", "finetuned")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    add_input_arguments(parser)
    parser.add_argument("--onnx-dir", default="models/onnx", help="holds one export folder per model")
    parser.add_argument("--out", default="stats/onnx.json")
    args = parser.parse_args(argv)
    log = setup_logging("check_int8")

    with exit_on_error("check_int8"):
        tolerance = float(load_params("onnx")["int8_tolerance"])
        report = {"tolerance": tolerance, "compared": list(HEADLINE), "models": {}}
        # The queries, corpora and scored parts evaluate uses.
        data = load_eval_data(args.prepared, args.test, args.queries, args.judgments)
        for name in MODELS:
            ids, matrix = load_embeddings(Path(args.embeddings) / f"{name}.npy", expected_ids=data.episode_ids)
            folder = Path(args.onnx_dir) / name
            metrics = {"fp32": {}, "int8": {}}
            for variant, parts in metrics.items():
                model = DenseModel(ids, matrix, OnnxEncoder(folder, threads=0, int8=variant == "int8"))
                for query_set, corpus, keeps in data.scopes():
                    run = Runner().dense(name, model, corpus, query_set)
                    for part, keep in keeps.items():
                        parts[part] = details({name: run.subset(keep)}, query_set.subset(part, keep))[name]
            delta = {part: {m: round(metrics["int8"][part][m] - fp32[m], 6) for m in HEADLINE}
                     for part, fp32 in metrics["fp32"].items()}
            worst = max(abs(d) for part in delta.values() for d in part.values())
            report["models"][name] = {"use_int8": worst <= tolerance, "max_abs_delta": worst, "delta": delta,
                                      **metrics}
            log.info("%s: int8 vs fp32 max |delta| %.4f on %s -> %s", name, worst, ", ".join(HEADLINE),
                     "int8" if worst <= tolerance else "fp32")
        write_json(report, args.out)
    log.info("int8 decisions -> %s", args.out)


if __name__ == "__main__":
    main()
