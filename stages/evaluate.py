"""DVC stage `evaluate`: every system on the synthetic test queries and the curated queries.

-> metrics/eval.json (headline metrics with 95% bootstrap CIs and paired randomization tests, per query set:
   synthetic, curated_dev, curated_test), stats/eval.json (more cut-offs, judged@10, sizes), the run files
   data/eval/runs/{synthetic,curated}.parquet, and plots/recall_at_k_<set>.csv.

Params read (and nothing else, so evaluate-only changes rerun this stage alone): evaluate.*, fusion.* and
train.base_model (to encode queries for the base system).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from podsearch.curated import CuratedError, load_judgments, load_queries  # noqa: E402
from podsearch.data import DataError, load_prepared  # noqa: E402
from podsearch.embeddings import EmbeddingError, load_embeddings  # noqa: E402
from podsearch.encoders import FINETUNED_DIR, load_encoder  # noqa: E402
from podsearch.evaluation import (  # noqa: E402
    DENSE_SYSTEMS, Corpus, DenseModel, EvaluationError, Runner, StatsConfig, curated_query_set, curated_splits,
    details, needed_systems, recall_curves, runs_frame, score_set, score_subsets, synthetic_queries, system_order,
)
from podsearch.params import load_params, setup_logging, write_json  # noqa: E402
from podsearch.retrieval.fusion import FusionError, load_fusions  # noqa: E402
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
    parser.add_argument("--queries", default="data/curated/queries.yaml")
    parser.add_argument("--judgments", default="data/curated/judgments.tsv")
    parser.add_argument("--embeddings", default="data/embeddings")
    parser.add_argument("--finetuned", default=FINETUNED_DIR)
    parser.add_argument("--systems", default=None, help="comma list (default: every single and fused system)")
    parser.add_argument("--metrics", default="metrics/eval.json")
    parser.add_argument("--stats", default="stats/eval.json")
    parser.add_argument("--runs", default="data/eval/runs")
    parser.add_argument("--plots", default="plots")
    args = parser.parse_args(argv)
    log = setup_logging("evaluate")

    params = load_params("evaluate")
    for path, stage in ((args.prepared, "prepare"), (args.test, "split")):
        if not Path(path).exists():
            raise SystemExit(f"{path}: not found; run the {stage} stage first")
    try:
        fusions = load_fusions(load_params("fusion"))
        systems = system_order(fusions) if args.systems is None else [
            s.strip() for s in args.systems.split(",") if s.strip()]
        singles = needed_systems(systems, fusions)
        episodes = load_prepared(args.prepared)
        all_ids = episodes["episode_id"].tolist()
        known = set(all_ids)
        synthetic = synthetic_queries(pd.read_parquet(args.test), known, source=args.test)
        curated_queries = load_queries(args.queries, known)
        curated = curated_query_set(curated_queries, load_judgments(
            args.judgments, {q.id for q in curated_queries}, known))
        specs = {"base": load_params("train")["base_model"], "finetuned": args.finetuned, "use": None}
        models = {}
        for name in [s for s in DENSE_SYSTEMS if s in singles]:
            ids, matrix = load_embeddings(Path(args.embeddings) / f"{name}.npy", expected_ids=all_ids)
            models[name] = DenseModel(ids, matrix, load_encoder(name, specs[name]))
        runner = Runner(index_kind=params["index"], index_options=index_options(params), depth=int(params["depth"]),
                        batch_size=int(params["batch_size"]), fusions=fusions)
        stats = StatsConfig(seed=int(params["seed"]), n_resamples=int(params["resamples"]))

        text_of = dict(zip(all_ids, episodes["text"]))
        test_ids = sorted(set().union(*synthetic.relevant))
        corpora = {"synthetic": Corpus(test_ids, [text_of[i] for i in test_ids]),
                   "curated": Corpus(all_ids, episodes["text"].tolist())}
        metrics, detail, sizes = {}, {}, {}
        for query_set in (synthetic, curated):
            runs = runner.run(systems, models, corpora[query_set.name], query_set)
            run_path = Path(args.runs) / f"{query_set.name}.parquet"
            run_path.parent.mkdir(parents=True, exist_ok=True)
            runs_frame(query_set, runs).to_parquet(run_path, index=False)
            log.info("%s runs -> %s", query_set.name, run_path)
            scored = {"synthetic": [True] * len(synthetic)} if query_set is synthetic else curated_splits(curated)
            for set_name, keep in scored.items():
                part = query_set.subset(set_name, keep)
                if not len(part):
                    raise EvaluationError(f"{set_name}: no query with a judged relevant episode")
                part_runs = {s: r.subset(keep) for s, r in runs.items()}
                log.info("%s: %d queries, bootstrap and paired tests (%d resamples)", set_name, len(part),
                         stats.n_resamples)
                metrics[set_name] = score_set(part_runs, part, stats)
                if set_name.startswith("curated"):
                    metrics[set_name]["by_subset"] = score_subsets(part_runs, part, stats)
                detail[set_name] = details(part_runs, part)
                sizes[set_name] = {"queries": len(part), "episodes": len(corpora[query_set.name].ids)}
                plot_path = Path(args.plots) / f"recall_at_k_{set_name}.csv"
                plot_path.parent.mkdir(parents=True, exist_ok=True)
                recall_curves(part_runs, part).to_csv(plot_path, index=False)
            if query_set is curated:
                sizes["curated_unjudged"] = sum(1 for r in curated.relevant if not r)
    except (CuratedError, DataError, EvaluationError, EmbeddingError, FusionError, VectorIndexError) as error:
        raise SystemExit(f"evaluate: {error}") from None

    write_json(metrics, args.metrics)
    write_json({"index": params["index"], "sizes": sizes, "systems": detail,
                "fusion": {name: fusion.to_dict() for name, fusion in fusions.items()}}, args.stats)
    for set_name, per_system in metrics.items():
        for system in systems:
            values = per_system[system]
            log.info("%-13s %-9s recall@10 %.3f [%.3f, %.3f]  mrr@30 %.3f [%.3f, %.3f]", set_name, system,
                     values["recall@10"], *values["ci95"]["recall@10"], values["mrr@30"], *values["ci95"]["mrr@30"])
    log.info("metrics -> %s, details -> %s", args.metrics, args.stats)


if __name__ == "__main__":
    main()
