"""DVC stage `check_int8`: may search encode queries with the int8 ONNX models? -> stats/onnx.json.

For each exported encoder (base, fine-tuned), the synthetic test queries and the curated queries are encoded with
model.onnx (fp32) and model.int8.onnx and searched against the same stored episode vectors (data/embeddings/), as
evaluate does. int8 is used only where every headline metric (recall@10, recall@30, mrr@30) on synthetic,
curated_dev and curated_test stays within onnx.int8_tolerance of fp32. The index stage reads the decision.

Params read: onnx.int8_tolerance.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from podsearch.curated import CuratedError, load_judgments, load_queries  # noqa: E402
from podsearch.data import DataError, load_prepared  # noqa: E402
from podsearch.embeddings import EmbeddingError, load_embeddings  # noqa: E402
from podsearch.evaluation import (  # noqa: E402
    HEADLINE, Corpus, DenseModel, EvaluationError, Runner, curated_query_set, curated_splits, details,
    synthetic_queries,
)
from podsearch.onnx_encoder import META, OnnxEncoder, OnnxError  # noqa: E402
from podsearch.params import load_params, setup_logging, write_json  # noqa: E402

MODELS = ("base", "finetuned")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepared", default="data/prepared/episodes.parquet")
    parser.add_argument("--test", default="data/splits/test.parquet")
    parser.add_argument("--queries", default="data/curated/queries.yaml")
    parser.add_argument("--judgments", default="data/curated/judgments.tsv")
    parser.add_argument("--embeddings", default="data/embeddings")
    parser.add_argument("--onnx-dir", default="models/onnx", help="holds one export folder per model")
    parser.add_argument("--out", default="stats/onnx.json")
    args = parser.parse_args(argv)
    log = setup_logging("check_int8")

    tolerance = float(load_params("onnx")["int8_tolerance"])
    report = {"tolerance": tolerance, "compared": list(HEADLINE), "models": {}}
    try:
        episodes = load_prepared(args.prepared)
        all_ids = episodes["episode_id"].tolist()
        known = set(all_ids)
        synthetic = synthetic_queries(pd.read_parquet(args.test), known, source=args.test)
        queries = load_queries(args.queries, known)
        curated = curated_query_set(queries, load_judgments(args.judgments, {q.id for q in queries}, known))
        text_of = dict(zip(all_ids, episodes["text"]))
        test_ids = sorted(set().union(*synthetic.relevant))
        # As evaluate: synthetic queries over every test episode, curated ones (dev, test) over every episode.
        sets = [(synthetic, Corpus(test_ids, [text_of[i] for i in test_ids]), {"synthetic": [True] * len(synthetic)}),
                (curated, Corpus(all_ids, episodes["text"].tolist()), curated_splits(curated))]
        for name in MODELS:
            ids, matrix = load_embeddings(Path(args.embeddings) / f"{name}.npy", expected_ids=all_ids)
            folder = Path(args.onnx_dir) / name
            metrics = {"fp32": {}, "int8": {}}
            for variant, parts in metrics.items():
                model = DenseModel(ids, matrix, OnnxEncoder(folder, threads=0, int8=variant == "int8"))
                for query_set, corpus, keeps in sets:
                    run = Runner().dense(name, model, corpus, query_set)
                    for part, keep in keeps.items():
                        parts[part] = details({name: run.subset(keep)}, query_set.subset(part, keep))[name]
            delta = {part: {m: round(metrics["int8"][part][m] - fp32[m], 6) for m in HEADLINE}
                     for part, fp32 in metrics["fp32"].items()}
            worst = max(abs(d) for part in delta.values() for d in part.values())
            report["models"][name] = {"use_int8": worst <= tolerance, "max_abs_delta": worst, "delta": delta,
                                      **metrics, "probes": json.loads((folder / META).read_text())["probes"]}
            log.info("%s: int8 vs fp32 max |delta| %.4f on %s -> %s", name, worst, ", ".join(HEADLINE),
                     "int8" if worst <= tolerance else "fp32")
    except (CuratedError, DataError, EmbeddingError, EvaluationError, OnnxError) as error:
        raise SystemExit(f"check_int8: {error}") from None
    write_json(report, args.out)


if __name__ == "__main__":
    main()
