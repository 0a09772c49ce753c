"""DVC stage `evaluate`: full retrieval for base, finetuned, bm25, hybrid and use on the synthetic test queries and
the curated queries -> metrics/eval.json + plots/recall_at_k_{synthetic,curated}.csv.

Params read (and nothing else, so evaluate-only changes rerun this stage alone): evaluate.* and train.base_model
(to encode queries for the base system).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from podsearch.data import DataError, load_prepared  # noqa: E402
from podsearch.embeddings import EmbeddingError, load_embeddings  # noqa: E402
from podsearch.encoders import FINETUNED_DIR, load_encoder  # noqa: E402
from podsearch.evaluation import (  # noqa: E402
    DENSE_SYSTEMS, HYBRID_PARTS, SYSTEMS, Corpus, DenseModel, EvaluationError, Runner, build_report,
    load_curated, score, synthetic_queries,
)
from podsearch.params import load_params, setup_logging, write_json  # noqa: E402
from podsearch.retrieval.index import VectorIndexError  # noqa: E402


def index_options(params: dict) -> dict:
    return {
        "m": params["hnsw_m"], "ef_search": params["hnsw_ef_search"],
        "name": params["pinecone_index"], "cloud": params["pinecone_cloud"], "region": params["pinecone_region"],
    } if params["index"] != "exact" else {}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prepared", default="data/prepared/episodes.parquet")
    parser.add_argument("--test", default="data/splits/test.parquet")
    parser.add_argument("--curated", default="data/curated_queries.yaml")
    parser.add_argument("--embeddings", default="data/embeddings")
    parser.add_argument("--finetuned", default=FINETUNED_DIR)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma list from {','.join(SYSTEMS)}")
    parser.add_argument("--metrics", default="metrics/eval.json")
    parser.add_argument("--plots", default="plots")
    args = parser.parse_args(argv)
    log = setup_logging("evaluate")

    params = load_params("evaluate")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        raise SystemExit(f"--systems: unknown system {unknown[0]!r}; expected some of {','.join(SYSTEMS)}")
    ks = sorted({int(k) for k in params["ks"]})
    for path, stage in ((args.prepared, "prepare"), (args.test, "split")):
        if not Path(path).exists():
            raise SystemExit(f"{path}: not found; run the {stage} stage first")
    try:
        episodes = load_prepared(args.prepared)
    except DataError as error:
        raise SystemExit(str(error)) from None
    all_ids = episodes["episode_id"].tolist()
    known = set(all_ids)

    try:
        synthetic = synthetic_queries(pd.read_parquet(args.test), known, source=args.test)
        curated = load_curated(args.curated, known)
        needed = set(systems) | (set(HYBRID_PARTS) if "hybrid" in systems else set())
        specs = {"base": load_params("train")["base_model"], "finetuned": args.finetuned, "use": None}
        models = {}
        for name in [s for s in DENSE_SYSTEMS if s in needed]:
            ids, matrix = load_embeddings(Path(args.embeddings) / f"{name}.npy", expected_ids=all_ids)
            models[name] = DenseModel(ids, matrix, load_encoder(name, specs[name]))
        runner = Runner(index_kind=params["index"], index_options=index_options(params), depth=max(
            max(ks), 30, int(params["rrf_depth"])), rrf_k=int(params["rrf_k"]), batch_size=int(params["batch_size"]))

        text_of = dict(zip(all_ids, episodes["text"]))
        test_ids = sorted(set().union(*synthetic.relevant))
        corpora = {"synthetic": Corpus(test_ids, [text_of[i] for i in test_ids]),
                   "curated": Corpus(all_ids, episodes["text"].tolist())}
        per_set, sizes = {}, {}
        for query_set in (synthetic, curated):
            corpus = corpora[query_set.name]
            results = runner.run(systems, models, corpus, query_set)
            per_set[query_set.name], curve = score(results, query_set, ks)
            sizes[query_set.name] = {"queries": len(query_set), "episodes": len(corpus.ids)}
            plot_path = Path(args.plots) / f"recall_at_k_{query_set.name}.csv"
            plot_path.parent.mkdir(parents=True, exist_ok=True)
            # Wide (k, one column per system) so DVC draws one recall@k line per system without a custom template.
            long = pd.DataFrame(curve, columns=["system", "k", "recall"])
            long.pivot(index="k", columns="system", values="recall").reset_index().to_csv(plot_path, index=False)
            log.info("recall@k curves -> %s", plot_path)
    except (EvaluationError, EmbeddingError, VectorIndexError) as error:
        raise SystemExit(str(error)) from None

    report = build_report(per_set, sizes, params["index"], ks)
    write_json(report, args.metrics)
    for set_name in per_set:
        for system, values in per_set[set_name].items():
            log.info("%-9s %-9s recall@%d %.3f  mrr@30 %.3f  ndcg@10 %.3f", set_name, system, max(ks),
                     values[f"recall@{max(ks)}"], values["mrr@30"], values["ndcg@10"])
    log.info("metrics -> %s", args.metrics)


if __name__ == "__main__":
    main()
