"""Human-readable reports rendered from the pipeline's outputs, never typed by hand.

Everything here reads files the stages wrote (metrics/, stats/, plots/, the run files, the pairs) and formats them:
tables with their confidence intervals and p-values, PNG figures made with matplotlib, the per-query report, and the
results block of the project README (between markers, so the prose around it stays hand-written and the numbers do
not). A rerun with the same inputs writes the same bytes, so `git diff README.md reports/` shows only real changes.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from podsearch.curated import CuratedQuery, relevant_sets
from podsearch.errors import PodsearchError
from podsearch.evaluation import HEADLINE, SHIPPED, QuerySet, first_relevant_ranks
from podsearch.metrics import reciprocal_rank_at_k
from podsearch.runfiles import runs_from_frame

MRR_K = 30
SYSTEM_ORDER = ("shipped", "shipped_v1", "finetuned", "base", "use", "e5", "bm25", "hybrid", "teacher")
SYSTEM_NAMES = {
    "shipped": "shipped (fusion)", "shipped_v1": "shipped before E5 (fusion)", "finetuned": "fine-tuned MiniLM",
    "base": "base MiniLM (zero-shot)",
    "use": "USE multilingual (zero-shot)", "e5": "multilingual E5-small (zero-shot)", "bm25": "BM25",
    "hybrid": "hybrid RRF(BM25, fine-tuned)", "teacher": "teacher (fusion of zero-shot parts)",
}
SET_TITLES = {
    "curated_test": "Curated test queries (never used to choose anything)",
    "curated_dev": "Curated dev queries (every choice was made on these)",
    "synthetic": "Synthetic test queries (the generator's own kind of query)",
}
METRIC_NAMES = {"recall@10": "Recall@10", "recall@30": "Recall@30", "mrr@30": "MRR@30"}
BLOCK = re.compile(r"(<!-- report:(?P<name>[\w-]+) -->\n)(?:.*?\n)?(<!-- /report:(?P=name) -->)", re.S)


class ReportError(PodsearchError, ValueError):
    """A README without the block the report fills."""


def fmt(value: float) -> str:
    return f"{value:.3f}"


def fmt_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def ordered(systems) -> list[str]:
    systems = list(systems)
    return [s for s in SYSTEM_ORDER if s in systems] + sorted(s for s in systems if s not in SYSTEM_ORDER)


def _systems(entry: dict) -> list[str]:
    return ordered(k for k, v in entry.items() if isinstance(v, dict) and "ci95" in v)


def _test(entry: dict, system: str, against: str, metric: str) -> dict | None:
    return next((t for t in entry.get("significance", []) if t["system"] == system and t["against"] == against
                 and t["metric"] == metric), None)


def results_table(entry: dict) -> str:
    """Systems x headline metrics with 95% CIs, and each system's MRR@30 p-value against base and BM25."""
    lines = ["| system | " + " | ".join(f"{METRIC_NAMES[m]} [95% CI]" for m in HEADLINE)
             + " | MRR@30 vs base: p | MRR@30 vs BM25: p |",
             "|---|" + "---:|" * (len(HEADLINE) + 2)]
    for system in _systems(entry):
        cells = [f"{fmt(entry[system][m])} [{fmt(entry[system]['ci95'][m][0])}, {fmt(entry[system]['ci95'][m][1])}]"
                 for m in HEADLINE]
        for against in ("base", "bm25"):
            test = _test(entry, system, against, "mrr@30")
            cells.append(f"{'+' if test['difference'] >= 0 else ''}{fmt(test['difference'])}, p {fmt_p(test['p_value'])}"
                         if test else "")
        name = f"**{SYSTEM_NAMES.get(system, system)}**" if system == SHIPPED else SYSTEM_NAMES.get(system, system)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparisons(entry: dict, pairs: list[tuple[str, str]]) -> list[str]:
    """One line per (system, against) pair: the difference and p-value on each headline metric."""
    lines = []
    for system, against in pairs:
        tests = [_test(entry, system, against, m) for m in HEADLINE]
        if not all(tests):
            continue
        parts = [f"{METRIC_NAMES[t['metric']]} {'+' if t['difference'] >= 0 else ''}{fmt(t['difference'])} "
                 f"(p {fmt_p(t['p_value'])}, {t['wins']} queries better / {t['losses']} worse)" for t in tests]
        lines.append(f"- `{system}` vs `{against}`: " + "; ".join(parts))
    return lines


def subset_table(entry: dict) -> str:
    """Per query style and language: each system's MRR@30 and Recall@10, and `shipped` against BM25 and USE."""
    rows = entry.get("by_subset", [])
    if not rows:
        return ""
    systems = ordered(rows[0]["means"])
    lines = ["| subset | queries | " + " | ".join(f"{s} MRR@30 / R@10" for s in systems)
             + " | shipped vs BM25 (MRR@30) | shipped vs USE (MRR@30) |",
             "|---|---:|" + "---:|" * (len(systems) + 2)]
    for row in rows:
        cells = [f"{fmt(row['means'][s]['mrr@30'])} / {fmt(row['means'][s]['recall@10'])}" for s in systems]
        for against in ("bm25", "use"):
            test = next((t for t in row.get("shipped_vs", []) if t["against"] == against and t["metric"] == "mrr@30"),
                        None)
            cells.append(f"{'+' if test['difference'] >= 0 else ''}{fmt(test['difference'])}, p {fmt_p(test['p_value'])}"
                         if test else "")
        lines.append(f"| {row['subset']} | {row['queries']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def query_samples(pairs: pd.DataFrame, per_generator: int = 12, seed: int = 0) -> str:
    """A seeded random dozen of the training queries of each generator, so a reader sees what the model learned."""
    lines = []
    for generator, group in sorted(pairs.groupby(pairs["generator"].str.split("-").str[0])):
        sample = group.sample(n=min(per_generator, len(group)), random_state=seed)
        shown = ", ".join(f"`{q.replace('`', '')}`" for q in sample["query"])
        lines.append(f"- **{generator}** ({len(group)} pairs): {shown}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ figures


def _figure(title: str, xlabel: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 12, "axes.titlesize": 14, "axes.labelsize": 12, "legend.fontsize": 11,
                         "svg.hashsalt": "podsearch", "figure.dpi": 100})
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from podsearch.artifacts import writing

    fig.tight_layout()
    # No timestamp or version in the file: the same data must give the same bytes (DVC hashes it).
    with writing(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


def plot_recall_curves(curves: pd.DataFrame, path: Path, title: str) -> Path:
    fig, ax = _figure(title, "k (episodes looked at)", "Recall@k")
    for system in ordered(c for c in curves.columns if c != "k"):
        ax.plot(curves["k"], curves[system], label=SYSTEM_NAMES.get(system, system),
                linewidth=3 if system == SHIPPED else 1.6)
    ax.set_xlim(1, int(curves["k"].max()))
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_loss(loss: pd.DataFrame, path: Path) -> Path:
    fig, ax = _figure("Fine-tuning loss (MultipleNegativesRankingLoss)", "optimizer step", "training loss")
    ax.plot(loss["step"], loss["loss"], marker="o", linewidth=1.8)
    return _save(fig, path)


def plot_inbatch(train: dict, path: Path) -> Path:
    fig, ax = _figure("In-batch MRR@5 on the eval split\n(each eval query ranks its episode among all eval episodes)",
                      "", "MRR@5")
    values = [train["inbatch_mrr@5_before"], train["inbatch_mrr@5_after"]]
    bars = ax.bar(["base model (before)", "fine-tuned (after)"], values, color=["#8a93a5", "#1db954"], width=0.5)
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.01, fmt(value), ha="center", fontsize=12)
    ax.set_ylim(0, 1.05)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------ documents


def _rank_cell(rank) -> str:
    return "-" if rank is None or (isinstance(rank, float) and math.isnan(rank)) else str(int(rank))


def per_query_report(queries: list[CuratedQuery], judgments: pd.DataFrame, runs: pd.DataFrame, split: str = "test",
                     against: str = "base") -> str:
    """Markdown: shipped vs `against` by reciprocal rank@30, then one row per query of `split` with the rank of its
    first relevant episode under every system."""
    relevant = relevant_sets(queries, judgments)
    chosen = [q for q in queries if q.split == split and relevant[q.id]]
    query_set = QuerySet(f"curated_{split}", [q.id for q in chosen], [q.query for q in chosen],
                         [relevant[q.id] for q in chosen])
    all_runs = runs_from_frame(runs, query_set.ids)
    systems = ordered(all_runs)
    ranks = first_relevant_ranks({s: all_runs[s] for s in systems}, query_set)
    shipped_rr = [reciprocal_rank_at_k(r, rel, MRR_K) for r, rel in zip(all_runs[SHIPPED].ids, query_set.relevant)]
    other_rr = [reciprocal_rank_at_k(r, rel, MRR_K) for r, rel in zip(all_runs[against].ids, query_set.relevant)]
    outcome = ["win" if a > b else "loss" if a < b else "tie" for a, b in zip(shipped_rr, other_rr)]
    wins, losses = outcome.count("win"), outcome.count("loss")
    depth = int(runs["rank"].max()) if len(runs) else 0
    lines = [
        f"# Curated {split} queries, one by one",
        "",
        f"Rendered by the `report` stage from `data/eval/runs/curated.parquet` and `data/curated/`. For each of the "
        f"{len(chosen)} {split} queries with a judged relevant episode: the rank of its first relevant episode under "
        f"each system (`-`: none in the top {depth}), and whether `{SHIPPED}` ranks it higher (win) or lower (loss) "
        f"than `{against}` (reciprocal rank at {MRR_K}).",
        "",
        f"**{SHIPPED} vs {against}: {wins} wins, {losses} losses, {len(chosen) - wins - losses} ties.**",
        "",
    ]
    for title, kind in (("Largest wins", "win"), ("Largest losses", "loss")):
        moved = sorted((i for i, o in enumerate(outcome) if o == kind),
                       key=lambda i: (-abs(shipped_rr[i] - other_rr[i]), query_set.ids[i]))[:5]
        if moved:
            lines.append(f"{title}: " + "; ".join(
                f"`{query_set.ids[i]}` {query_set.queries[i]!r} ({against} {_rank_cell(ranks[against][i])} -> "
                f"{SHIPPED} {_rank_cell(ranks[SHIPPED][i])})" for i in moved) + ".")
            lines.append("")
    by_id = {q.id: q for q in chosen}
    lines.append("| id | query | style | lang | relevant | " + " | ".join(systems) + f" | {SHIPPED} vs {against} |")
    lines.append("|---|---|---|---|---:|" + "---:|" * len(systems) + "---|")
    for i, query_id in enumerate(query_set.ids):
        q = by_id[query_id]
        cells = " | ".join(_rank_cell(ranks[s][i]) for s in systems)
        lines.append(f"| {query_id} | {q.query.replace('|', '/')} | {q.style} | {q.language} | "
                     f"{len(query_set.relevant[i])} | {cells} | {outcome[i]} |")
    return "\n".join(lines) + "\n"


def replace_block(text: str, name: str, content: str) -> str:
    """`text` with the block between <!-- report:name --> and <!-- /report:name --> replaced by `content`."""
    if not any(m.group("name") == name for m in BLOCK.finditer(text)):
        raise ReportError(f"no <!-- report:{name} --> ... <!-- /report:{name} --> block to fill")
    return BLOCK.sub(lambda m: m.group(1) + content.strip("\n") + "\n" + m.group(3) if m.group("name") == name
                     else m.group(0), text)


KEY_COMPARISONS = [("shipped", "shipped_v1"), ("shipped", "base"), ("finetuned", "base"), ("shipped", "bm25"),
                   ("shipped", "use"), ("shipped", "e5"),
                   ("shipped", "finetuned"), ("shipped", "hybrid")]


def _counts(stats: dict, keys: list[str]) -> str:
    return ", ".join(f"{key.replace('_', ' ')} {stats[key]:,}" for key in keys if key in stats)


def report_markdown(evaluation: dict, evaluation_stats: dict, train: dict, train_stats: dict, querygen: dict,
                    prepare: dict, split: dict, samples: str, figures: dict[str, str]) -> str:
    """reports/README.md: every results table of the run, with the figures (paths relative to reports/)."""
    sizes = evaluation_stats.get("sizes", {})
    fusion = evaluation_stats.get("fusion", {}).get(SHIPPED, {})
    out = [
        "# Results of the committed run",
        "",
        "Rendered by the `report` stage (`stages/report.py`) from `metrics/`, `stats/`, `plots/`, the run files and "
        "the training pairs: do not edit by hand, run `dvc repro`. Every mean comes with its 95% bootstrap confidence "
        "interval over queries; differences between systems with a paired two-sided randomization test (10,000 "
        "resamples, seeded). One query set per section; the test split of the curated queries was never used to "
        "choose anything.",
        "",
        f"`shipped` = {fusion.get('method', '?')} fusion of "
        + ", ".join(f"`{s}` x {w:g}" for s, w in sorted(fusion.get("weights", {}).items()) if w)
        + f" (top {fusion.get('depth', '?')} of each).",
        "",
    ]
    for set_name in ("curated_test", "curated_dev", "synthetic"):
        if set_name not in evaluation:
            continue
        entry, size = evaluation[set_name], sizes.get(set_name, {})
        out += [f"## {SET_TITLES[set_name]}", "",
                f"{size.get('queries', '?')} queries over an index of {size.get('episodes', '?'):,} episodes.", "",
                results_table(entry), "", *comparisons(entry, KEY_COMPARISONS), ""]
        if set_name.startswith("curated"):
            out += ["By query style and language (MRR@30 / Recall@10; the last two columns: `shipped` minus the "
                    "other system on MRR@30, with the p-value):", "", subset_table(entry), ""]
        if f"recall_{set_name}" in figures:
            out += [f"![Recall@k, {set_name}]({figures[f'recall_{set_name}']})", ""]
    out += [
        "## Training", "",
        f"In-batch MRR@5 (each eval query ranks its episode among all {train_stats.get('eval_episodes', '?')} eval "
        f"episodes): {fmt(train['inbatch_mrr@5_before'])} before, {fmt(train['inbatch_mrr@5_after'])} after "
        f"fine-tuning. " + _counts(train_stats, ["trained_pairs", "train_pairs_available", "steps"]) + ".", "",
    ]
    out += [f"![{name}]({figures[name]})" for name in ("inbatch", "loss") if name in figures] + [""]
    generators = querygen.get("generators", {})
    out += [
        "## Data", "",
        "Prepare: " + _counts(prepare, ["episodes_in", "shows_in", "episodes_out"]) + "; dropped by reason: "
        + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in prepare.get("dropped_by_reason", {}).items()) + ".",
        "",
        "Query generation (mix " + ", ".join(f"{k} {v}" for k, v in querygen.get("mix", {}).items()) + f"): "
        f"{querygen.get('pairs', 0):,} pairs, median {querygen.get('query_words', {}).get('median', '?'):g} words per "
        "query; rejected by reason:", "",
        "| generator | pairs | " + " | ".join(r.replace("_", " ") for r in next(iter(generators.values()), {}).get(
            "rejected", {})) + " |",
        "|---|---:|" + "---:|" * len(next(iter(generators.values()), {}).get("rejected", {})),
        *[f"| {name} | {g['pairs']:,} | " + " | ".join(f"{v:,}" for v in g["rejected"].values()) + " |"
          for name, g in generators.items()],
        "",
        "Split (by episode, every prepared episode): " + _counts(split, [
            "train_episodes", "eval_episodes", "test_episodes", "train_pairs", "eval_pairs", "test_pairs"]) + ".",
        "",
        "A seeded random sample of the training queries of each generator:", "", samples, "",
    ]
    # The scale bench is not part of the run: its own committed table and figure are linked, not redrawn.
    out += ["## Cost against corpus size", "", "Measured by `bench/bench_scale.py`, not by this run: the table with peak "
            "memory is [bench/results/scale.md](../bench/results/scale.md).", "",
            "![cost vs size](../bench/results/scale.png)", ""]
    return "\n".join(out)


def versus(entry: dict, system: str, against: str, title: str, subset: str, subset_tests: str) -> list[str]:
    """One line: `system` against `against` on Recall@10 and MRR@30, over all queries and one slice of them (a
    by_subset row, whose tests are under `subset_tests`), from eval.json's paired tests."""
    slices = [("all queries", [t for t in entry.get("significance", [])
                               if t["system"] == system and t["against"] == against])]
    row = next((r for r in entry.get("by_subset", []) if r["subset"] == subset), None)
    if row:
        label = {"language=en": "English", "language=other": "not English"}.get(subset, subset)
        slices.append((f"the {row['queries']} {label}",
                       [t for t in row.get(subset_tests, []) if t.get("against", against) == against]))
    parts = []
    for name, tests in slices:
        cells = [f"{METRIC_NAMES[t['metric']]} {'+' if t['difference'] >= 0 else ''}{fmt(t['difference'])} "
                 f"(p {fmt_p(t['p_value'])})" for t in tests if t["metric"] in ("recall@10", "mrr@30")]
        if cells:
            parts.append(f"{name}: " + ", ".join(cells))
    return [f"{title}, {'; '.join(parts)}.", ""] if parts else []


def key_lines(entry: dict) -> list[str]:
    """The two comparisons the README states: the shipped system against the one before E5 (all queries and the
    non-English ones), the fine-tune against its base model (all and the English ones)."""
    return [*versus(entry, SHIPPED, "shipped_v1", "Shipped vs the shipped system before E5", "language=other",
                    "shipped_vs"),
            *versus(entry, "finetuned", "base", "Fine-tuned vs base MiniLM", "language=en", "finetuned_vs_base")]


def readme_results(evaluation: dict, evaluation_stats: dict, train: dict, figures: dict[str, str]) -> str:
    """The README's results block, kept short: the curated test table, the recipe's in-batch number, one figure.
    The comparisons query by query, the other query sets and the other figures are in reports/README.md."""
    entry = evaluation["curated_test"]
    size = evaluation_stats.get("sizes", {}).get("curated_test", {})
    out = [
        f"Curated **test** queries: {size.get('queries', '?')} queries a listener would type, over all "
        f"{size.get('episodes', 0):,} episodes, never used to choose anything. Means with 95% bootstrap CIs; "
        "p-values from a paired randomization test.",
        "",
        results_table(entry),
        "",
        *key_lines(entry),
        f"In-batch MRR@5, the recipe's own number: {fmt(train['inbatch_mrr@5_before'])} before fine-tuning, "
        f"{fmt(train['inbatch_mrr@5_after'])} after. Each comparison with its wins and losses, dev and synthetic "
        "results, training and data: [reports/README.md](reports/README.md). Every test query: "
        "[reports/curated_test_queries.md](reports/curated_test_queries.md).",
        "",
    ]
    out += [f"![{name}](reports/{figures[name]})" for name in ("recall_curated_test",) if name in figures]
    return "\n".join(out)
