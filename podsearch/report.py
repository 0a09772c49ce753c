"""Human-readable reports rendered from the evaluate stage's outputs (run files, metrics), never typed by hand.

`per_query_report`: for each curated test query, the rank of its first relevant episode under every system, and
where the shipped system wins or loses against the base model. An average hides which queries moved; this shows them.
"""
from __future__ import annotations

import math

import pandas as pd

from podsearch.curated import CuratedQuery, relevant_sets
from podsearch.evaluation import SHIPPED, QuerySet, Run, first_relevant_ranks
from podsearch.metrics import reciprocal_rank_at_k

MRR_K = 30


def runs_from_frame(frame: pd.DataFrame, query_ids: list[str]) -> dict[str, Run]:
    """Run files (system, query_id, episode_id, rank, score) back into per-system Runs in `query_ids` order."""
    runs = {}
    frame = frame.sort_values(["system", "query_id", "rank"])
    for system, rows in frame.groupby("system", observed=True, sort=False):
        by_query = {q: (g["episode_id"].tolist(), g["score"].astype(float).tolist())
                    for q, g in rows.groupby("query_id", sort=False)}
        runs[str(system)] = Run([by_query.get(q, ([], []))[0] for q in query_ids],
                                [by_query.get(q, ([], []))[1] for q in query_ids])
    return runs


def _rank_cell(rank) -> str:
    return "-" if rank is None or (isinstance(rank, float) and math.isnan(rank)) else str(int(rank))


def per_query_report(queries: list[CuratedQuery], judgments: pd.DataFrame, runs: pd.DataFrame, systems: list[str],
                     split: str = "test", against: str = "base") -> str:
    """Markdown: summary of shipped vs `against` by reciprocal rank@30, then one row per query of `split`."""
    relevant = relevant_sets(queries, judgments)
    chosen = [q for q in queries if q.split == split and relevant[q.id]]
    query_set = QuerySet(f"curated_{split}", [q.id for q in chosen], [q.query for q in chosen],
                         [relevant[q.id] for q in chosen])
    all_runs = runs_from_frame(runs, query_set.ids)
    systems = [s for s in systems if s in all_runs]
    ranks = first_relevant_ranks({s: all_runs[s] for s in systems}, query_set)
    shipped_rr = [reciprocal_rank_at_k(r, rel, MRR_K) for r, rel in zip(all_runs[SHIPPED].ids, query_set.relevant)]
    other_rr = [reciprocal_rank_at_k(r, rel, MRR_K) for r, rel in zip(all_runs[against].ids, query_set.relevant)]
    outcome = ["win" if a > b else "loss" if a < b else "tie" for a, b in zip(shipped_rr, other_rr)]
    wins, losses = outcome.count("win"), outcome.count("loss")

    lines = [
        f"# Curated {split} queries, one by one",
        "",
        f"Rendered by the `report` stage from `data/eval/runs/curated.parquet` and `data/curated/`. For each of the "
        f"{len(chosen)} {split} queries with a judged relevant episode: the rank of its first relevant episode under "
        f"each system (`-`: none in the top {int(runs['rank'].max()) if len(runs) else 0}), and whether `{SHIPPED}` "
        f"ranks it higher (win) or lower (loss) than `{against}` (reciprocal rank at {MRR_K}).",
        "",
        f"**{SHIPPED} vs {against}: {wins} wins, {losses} losses, {len(chosen) - wins - losses} ties.**",
        "",
    ]
    for title, kind in (("Largest wins", "win"), ("Largest losses", "loss")):
        moved = sorted((i for i, o in enumerate(outcome) if o == kind),
                       key=lambda i: -abs(shipped_rr[i] - other_rr[i]))[:5]
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
        text = q.query.replace("|", "\\|")
        cells = " | ".join(_rank_cell(ranks[s][i]) for s in systems)
        lines.append(f"| {query_id} | {text} | {q.style} | {q.language} | {len(query_set.relevant[i])} | {cells} | "
                     f"{outcome[i]} |")
    return "\n".join(lines) + "\n"
