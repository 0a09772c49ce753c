"""DVC stage `report`: everything a person reads about the run, rendered from the run's own files.

-> reports/README.md (all results tables with CIs and p-values, training, data, query samples),
   reports/curated_test_queries.md (each test query's first relevant rank per system; wins and losses),
   reports/figures/*.png (recall@k per query set, training loss, in-batch MRR@5, cost vs size when the scale bench
   has run), and the results block of the project README (between <!-- report:results --> markers).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from podsearch.curated import CuratedError, load_judgments, load_queries  # noqa: E402
from podsearch.params import setup_logging  # noqa: E402
from podsearch.report import (  # noqa: E402
    SET_TITLES, per_query_report, plot_inbatch, plot_loss, plot_recall_curves, plot_scale, query_samples,
    readme_results, replace_block, report_markdown,
)


def read_json(path: str) -> dict:
    if not Path(path).exists():
        raise SystemExit(f"report: {path}: not found; run `dvc repro` up to the stage that writes it")
    return json.loads(Path(path).read_text())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="reports")
    parser.add_argument("--readme", default="README.md", help="file whose results block is rewritten ('' to skip)")
    parser.add_argument("--scale", default="bench/results/scale.csv", help="scale bench table, used when present")
    args = parser.parse_args(argv)
    log = setup_logging("report")
    out = Path(args.out)
    evaluation, evaluation_stats = read_json("metrics/eval.json"), read_json("stats/eval.json")
    train, train_stats = read_json("metrics/train.json"), read_json("stats/train.json")
    try:
        queries = load_queries("data/curated/queries.yaml")
        judgments = load_judgments("data/curated/judgments.tsv", {q.id for q in queries})
    except CuratedError as error:
        raise SystemExit(f"report: {error}") from None

    figures = {}
    for set_name in SET_TITLES:
        curves = Path(f"plots/recall_at_k_{set_name}.csv")
        if curves.exists():
            plot_recall_curves(pd.read_csv(curves), out / "figures" / f"recall_{set_name}.png",
                               f"Recall@k, {set_name.replace('_', ' ')} queries")
            figures[f"recall_{set_name}"] = f"figures/recall_{set_name}.png"
    plot_loss(pd.read_csv("plots/train_loss.csv"), out / "figures" / "loss.png")
    plot_inbatch(train, out / "figures" / "inbatch.png")
    figures.update(loss="figures/loss.png", inbatch="figures/inbatch.png")
    if args.scale and Path(args.scale).exists():
        plot_scale(pd.read_csv(args.scale), out / "figures" / "scale.png")
        figures["scale"] = "figures/scale.png"

    samples = query_samples(pd.read_parquet("data/pairs/pairs.parquet"))
    report = report_markdown(evaluation, evaluation_stats, train, train_stats, read_json("stats/querygen.json"),
                             read_json("stats/prepare.json"), read_json("stats/split.json"), samples, figures)
    (out / "README.md").write_text(report)
    (out / "curated_test_queries.md").write_text(
        per_query_report(queries, judgments, pd.read_parquet("data/eval/runs/curated.parquet")))
    if args.readme:
        readme = Path(args.readme)
        try:
            readme.write_text(replace_block(readme.read_text(), "results",
                                            readme_results(evaluation, evaluation_stats, train, figures)))
        except (OSError, ValueError) as error:
            raise SystemExit(f"report: {args.readme}: {error}") from None
    log.info("report -> %s (%d figures)%s", out / "README.md", len(figures),
             f", results block of {args.readme} rewritten" if args.readme else "")


if __name__ == "__main__":
    main()
