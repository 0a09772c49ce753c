"""DVC stage `evaluate`: every system on the synthetic test queries and the curated queries.

-> metrics/eval.json (headline metrics with 95% bootstrap CIs and paired randomization tests, per query set:
   synthetic, curated_dev, curated_test), stats/eval.json (more cut-offs, judged@10, sizes), the run files
   data/eval/runs/{synthetic,curated}.parquet, and plots/recall_at_k_<set>.csv.

Params read (and nothing else, so evaluate-only changes rerun this stage alone): evaluate.*, fusion.*,
train.base_model and e5.model (to encode queries for the base and e5 systems).
"""
import argparse
from pathlib import Path

from podsearch.artifacts import write_json, writing
from podsearch.embeddings import load_embeddings
from podsearch.encoders import FINETUNED_DIR, encoder_spec, load_encoder
from podsearch.errors import exit_on_error
from podsearch.evaluation import (
    DENSE_SYSTEMS,
    DenseModel,
    EvaluateConfig,
    add_input_arguments,
    evaluate,
    load_eval_data,
    needed_systems,
    system_order,
)
from podsearch.params import load_params, setup_logging
from podsearch.retrieval.fusion import load_fusions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    add_input_arguments(parser)
    parser.add_argument("--finetuned", default=FINETUNED_DIR)
    parser.add_argument("--systems", default=None, help="comma list (default: every single and fused system)")
    parser.add_argument("--metrics", default="metrics/eval.json")
    parser.add_argument("--stats", default="stats/eval.json")
    parser.add_argument("--runs", default="data/eval/runs")
    parser.add_argument("--plots", default="plots")
    args = parser.parse_args(argv)
    log = setup_logging("evaluate")

    with exit_on_error("evaluate"):
        config = EvaluateConfig.from_params(load_params("evaluate"))
        fusions = load_fusions(load_params("fusion"))
        systems = system_order(fusions) if args.systems is None else [
            s.strip() for s in args.systems.split(",") if s.strip()]
        singles = needed_systems(systems, fusions)
        data = load_eval_data(args.prepared, args.test, args.queries, args.judgments)
        dense = [s for s in DENSE_SYSTEMS if s in singles]
        base_model = load_params("train")["base_model"] if "base" in dense else None
        e5_model = load_params("e5")["model"] if "e5" in dense else None
        models = {}
        for name in dense:
            ids, matrix = load_embeddings(Path(args.embeddings) / f"{name}.npy", expected_ids=data.episode_ids)
            spec = encoder_spec(name, base_model, args.finetuned, e5_model)
            models[name] = DenseModel(ids, matrix, load_encoder(name, spec))
        result = evaluate(data, config.runner(fusions), systems, models, config.stats())

        with writing(args.runs, folder=True) as runs:  # the DVC output folder, whole
            for name, frame in result.runs.items():
                frame.to_parquet(runs / f"{name}.parquet", index=False)
        for name, curves in result.curves.items():
            with writing(Path(args.plots) / f"recall_at_k_{name}.csv") as path:
                curves.to_csv(path, index=False)
        write_json(result.metrics, args.metrics)
        write_json({"index": config.index, "sizes": result.sizes, "systems": result.details,
                    "fusion": {name: fusion.to_dict() for name, fusion in fusions.items()}}, args.stats)
    for name in result.runs:
        log.info("%s runs -> %s", name, Path(args.runs) / f"{name}.parquet")
    for set_name, per_system in result.metrics.items():
        for system in systems:
            values = per_system[system]
            log.info("%-13s %-9s recall@10 %.3f [%.3f, %.3f]  mrr@30 %.3f [%.3f, %.3f]", set_name, system,
                     values["recall@10"], *values["ci95"]["recall@10"], values["mrr@30"], *values["ci95"]["mrr@30"])
    log.info("metrics -> %s, details -> %s, recall curves -> %s", args.metrics, args.stats, args.plots)


if __name__ == "__main__":
    main()
