"""DVC stage `report`: everything a person reads about the run, rendered from the run's own files.

-> reports/README.md (all results tables with CIs and p-values, training, data, query samples),
   reports/curated_test_queries.md (each test query's first relevant rank per system; wins and losses),
   reports/figures/*.png (recall@k per query set, training loss, in-batch MRR@5; the scale bench's own figure is
   linked), and the results block of the project README (between <!-- report:results --> markers).
"""
import argparse
from pathlib import Path

import pandas as pd

from podsearch.artifacts import read_json, read_parquet, reading, write_text
from podsearch.curated import load_judgments, load_queries
from podsearch.errors import exit_on_error, require
from podsearch.params import setup_logging
from podsearch.report import (
    SET_TITLES,
    ReportError,
    per_query_report,
    plot_inbatch,
    plot_loss,
    plot_recall_curves,
    query_samples,
    readme_results,
    replace_block,
    report_markdown,
)


def read_csv(path: str | Path, **kwargs) -> pd.DataFrame:
    with reading(path):
        return pd.read_csv(path, **kwargs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="reports")
    parser.add_argument("--readme", default="README.md", help="file whose results block is rewritten ('' to skip)")
    args = parser.parse_args(argv)
    log = setup_logging("report")
    out = Path(args.out)
    with exit_on_error("report"):
        evaluation = read_json(require("metrics/eval.json", "evaluate"))
        evaluation_stats = read_json(require("stats/eval.json", "evaluate"))
        train = read_json(require("metrics/train.json", "train"))
        train_stats = read_json(require("stats/train.json", "train"))
        querygen_stats = read_json(require("stats/querygen.json", "generate_queries"))
        prepare_stats = read_json(require("stats/prepare.json", "prepare"))
        split_stats = read_json(require("stats/split.json", "split"))
        queries = load_queries("data/curated/queries.yaml")
        judgments = load_judgments("data/curated/judgments.tsv", {q.id for q in queries})

        figures = {}
        for set_name in SET_TITLES:
            curves = Path(f"plots/recall_at_k_{set_name}.csv")
            if curves.exists():
                plot_recall_curves(read_csv(curves), out / "figures" / f"recall_{set_name}.png",
                                   f"Recall@k, {set_name.replace('_', ' ')} queries")
                figures[f"recall_{set_name}"] = f"figures/recall_{set_name}.png"
        plot_loss(read_csv("dvclive/plots/metrics/loss.tsv", sep="\t"), out / "figures" / "loss.png")
        plot_inbatch(train, out / "figures" / "inbatch.png")
        figures.update(loss="figures/loss.png", inbatch="figures/inbatch.png")

        samples = query_samples(read_parquet("data/pairs/pairs.parquet"))
        report = report_markdown(evaluation, evaluation_stats, train, train_stats, querygen_stats, prepare_stats,
                                 split_stats, samples, figures)
        write_text(out / "README.md", report)
        write_text(out / "curated_test_queries.md",
                   per_query_report(queries, judgments, read_parquet("data/eval/runs/curated.parquet")))
        if args.readme:
            readme = Path(args.readme)
            try:
                text = readme.read_text()
            except OSError as error:
                raise ReportError(f"{readme}: {error.strerror}") from None
            write_text(readme, replace_block(text, "results",
                                             readme_results(evaluation, evaluation_stats, train, figures)))
    log.info("report -> %s (%d figures)%s", out / "README.md", len(figures),
             f", results block of {args.readme} rewritten" if args.readme else "")


if __name__ == "__main__":
    main()
