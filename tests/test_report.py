"""The report stage: rendered from a small evaluation run, every number in it traced back to its source file, figures
that open as PNGs, the README block replaced and nothing else, and the same bytes on a second render."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from podsearch.report import replace_block
from tests.test_evaluate import SALTS, FakeEncoder, load_stage, write_inputs

README = """# A project

Hand-written prose that the report must not touch: 0.5 is not a result.

<!-- report:results -->
old numbers 0.123
<!-- /report:results -->

More prose.
"""


def leaves(value) -> list:
    if isinstance(value, dict):
        return [x for v in value.values() for x in leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in leaves(v)]
    return [value]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        ids = write_inputs(root)
        evaluate = load_stage("evaluate")
        evaluate.load_encoder = lambda kind, spec: FakeEncoder(salt=SALTS[kind])
        evaluate.main([])
        sources = {
            "metrics/train.json": {"inbatch_mrr@5_before": 0.81234, "inbatch_mrr@5_after": 0.90011},
            "stats/train.json": {"trained_pairs": 3072, "train_pairs_available": 9000, "steps": 49,
                                 "eval_episodes": 100},
            "stats/querygen.json": {"mix": {"pseudo": 1, "keyword": 2}, "pairs": 12345, "query_words": {"median": 3.0},
                                    "generators": {"pseudo": {"pairs": 4000, "rejected": {"empty": 1, "date": 7}},
                                                   "keyword": {"pairs": 8345, "rejected": {"empty": 0, "date": 2}}}},
            "stats/prepare.json": {"episodes_in": 5633, "shows_in": 1000, "episodes_out": 4970,
                                   "dropped_by_reason": {"empty_description": 617, "duplicate_text": 46}},
            "stats/split.json": {"train_episodes": 3970, "eval_episodes": 100, "test_episodes": 900,
                                 "train_pairs": 9000, "eval_pairs": 250, "test_pairs": 2000},
        }
        for name, data in sources.items():
            Path(name).parent.mkdir(parents=True, exist_ok=True)
            Path(name).write_text(json.dumps(data))
        Path("dvclive/plots/metrics").mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"step": [1, 5, 10], "loss": [2.5, 2.0, 1.7]}).to_csv("dvclive/plots/metrics/loss.tsv",
                                                                          sep="\t", index=False)
        Path("data/pairs").mkdir(parents=True)
        pd.DataFrame({"query": ["keto diet", "bitcoin bubble", "Early retirement myths busted"],
                      "episode_id": ids[:3], "generator": ["keyword", "keyword", "pseudo-title"]}
                     ).to_parquet("data/pairs/pairs.parquet")
        Path("README.md").write_text(README)
        report = load_stage("report")
        report.main([])
        first = {p: p.read_bytes() for p in sorted(Path("reports").rglob("*")) if p.is_file()}
        readme_first = Path("README.md").read_text()
        report.main([])
        second = {p: p.read_bytes() for p in sorted(Path("reports").rglob("*")) if p.is_file()}
        yield {"root": root, "first": first, "second": second, "readme": readme_first,
               "readme_again": Path("README.md").read_text(),
               "sources": [json.loads(Path(n).read_text()) for n in (
                   "metrics/eval.json", "stats/eval.json", *sources)]}
    finally:
        os.chdir(cwd)


def test_every_decimal_in_the_report_comes_from_a_source_file(rendered):
    numbers = [x for source in rendered["sources"] for x in leaves(source) if isinstance(x, (int, float))]
    allowed = {f"{x:.3f}" for x in numbers} | {f"{abs(x):.3f}" for x in numbers}
    report = (rendered["root"] / "reports/README.md").read_text()
    block = rendered["readme"].split("<!-- report:results -->")[1].split("<!-- /report:results -->")[0]
    for text, where in ((report, "reports/README.md"), (block, "README.md block")):
        found = re.findall(r"(?<![\d.])\d+\.\d{3}(?![\d])", text)
        assert found, f"no numbers in {where}"
        stray = sorted({n for n in found if n not in allowed})
        assert not stray, f"{where}: numbers with no source: {stray}"
    # Counts and sizes are the sources' own
    assert "5,633" in report and "12,345 pairs" in report and "median 3 words" in report
    assert "0.812 before, 0.900 after" in report


def test_readme_block_is_replaced_and_the_prose_kept(rendered):
    readme = rendered["readme"]
    assert readme.startswith("# A project\n\nHand-written prose that the report must not touch: 0.5 is not a result.")
    assert readme.rstrip().endswith("More prose.") and "old numbers 0.123" not in readme
    assert "](reports/figures/recall_curated_test.png)" in readme
    # The fine-tune against its base on all test queries and the English ones, from eval.json's paired tests
    evaluation = rendered["sources"][0]["curated_test"]
    test = next(t for t in evaluation["significance"] if t["system"] == "finetuned" and t["against"] == "base"
                and t["metric"] == "mrr@30")
    english = next(r for r in evaluation["by_subset"] if r["subset"] == "language=en")
    line = next(line for line in readme.splitlines() if line.startswith("Fine-tuned vs base MiniLM, all queries:"))
    assert f"MRR@30 {test['difference']:+.3f}" in line and f"the {english['queries']} English:" in line
    assert rendered["readme_again"] == readme
    with pytest.raises(ValueError, match="no <!-- report:missing -->"):
        replace_block(readme, "missing", "x")
    empty = "a\n<!-- report:results -->\n<!-- /report:results -->\nb\n"  # as a new README starts
    assert replace_block(empty, "results", "new\n") == "a\n<!-- report:results -->\nnew\n<!-- /report:results -->\nb\n"
    assert replace_block(replace_block(empty, "results", "x"), "results", "y") == replace_block(empty, "results", "y")


def test_figures_are_pngs_a_person_can_read_and_renders_are_identical(rendered):
    figures = [p for p in rendered["first"] if p.suffix == ".png"]
    assert {p.name for p in figures} == {"recall_synthetic.png", "recall_curated_dev.png", "recall_curated_test.png",
                                         "loss.png", "inbatch.png"}
    for path in figures:
        with Image.open(rendered["root"] / path) as image:
            assert image.format == "PNG" and image.size[0] >= 700 and image.size[1] >= 450
    assert rendered["first"] == rendered["second"]
    per_query = (rendered["root"] / "reports/curated_test_queries.md").read_text()
    assert "| q001 | pizza dough |" in per_query and "wins" in per_query

