"""DVC stage `report`: render the human-readable reports from the evaluation's outputs.

data/eval/runs/curated.parquet + data/curated/{queries.yaml,judgments.tsv} -> reports/curated_test_queries.md (each
test query's first relevant rank per system, and the shipped system's wins and losses against the base model).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from podsearch.curated import CuratedError, load_judgments, load_queries  # noqa: E402
from podsearch.params import setup_logging  # noqa: E402
from podsearch.report import per_query_report  # noqa: E402

SYSTEMS = ["shipped", "finetuned", "base", "use", "bm25", "hybrid"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default="data/eval/runs/curated.parquet")
    parser.add_argument("--queries", default="data/curated/queries.yaml")
    parser.add_argument("--judgments", default="data/curated/judgments.tsv")
    parser.add_argument("--out", default="reports/curated_test_queries.md")
    args = parser.parse_args(argv)
    log = setup_logging("report")
    if not Path(args.runs).exists():
        raise SystemExit(f"report: {args.runs}: not found; run the evaluate stage first")
    try:
        queries = load_queries(args.queries)
        judgments = load_judgments(args.judgments, {q.id for q in queries})
    except CuratedError as error:
        raise SystemExit(f"report: {error}") from None
    text = per_query_report(queries, judgments, pd.read_parquet(args.runs), SYSTEMS)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    log.info("per-query report -> %s", out)


if __name__ == "__main__":
    main()
