"""Extending the curated test collection: split new queries, pool what the systems retrieved, judge it.

    python -m podsearch.judging split     # new queries in data/curated/queries.yaml get dev or test (seeded, once)
    dvc repro evaluate                    # writes data/eval/runs/curated.parquet with every system's rankings
    python -m podsearch.judging pool      # data/curated/pool.tsv.gz: + every (query, episode) in any system's top 20
    python -m podsearch.judging judge     # asks y/n for each unjudged pair of the pool, appends judgments.tsv
    python -m podsearch.judging status    # queries per split/style/language, judged pairs, what is left

Judging in bulk (several people, or offline): `sheet` writes the unjudged pairs with the episode text and an empty
`relevant` column to fill with 1 or 0; `merge` reads the filled sheet back. The pool is shuffled per query with a
seed, so a judge never sees which system ranked an episode or how high.

The judged samples of generated training queries (each query 1 if it is feed furniture, else 0) are read here too:
`python -m bench.querygen_sample` draws and scores them, and the furniture studies in bench/ pool them.
"""
from __future__ import annotations

import argparse
import getpass
import glob
import hashlib
import sys
from pathlib import Path

import pandas as pd

from podsearch.artifacts import read_parquet, writing
from podsearch.curated import (
    JUDGMENT_COLUMNS,
    CuratedError,
    assign_splits,
    load_judgments,
    load_queries,
    save_judgments,
    save_queries,
)
from podsearch.errors import PodsearchError

QUERIES = "data/curated/queries.yaml"
JUDGMENTS = "data/curated/judgments.tsv"
# gzip (pandas reads and writes it by the extension): the pool names every system behind every pair, so it is large
# as text (docs/evaluation.md#judging)
POOL = "data/curated/pool.tsv.gz"
RUNS = "data/eval/runs/curated.parquet"
PREPARED = "data/prepared/episodes.parquet"
POOL_DEPTH = 20
QUERIES_HEADER = """\
# Curated evaluation queries: what a listener would type, in three styles (keyword, question, descriptive) and
# several languages. Relevance lives in judgments.tsv (pooled: the top 20 of every system are judged).
# `split` is assigned once, seeded (python -m podsearch.judging split): choose on dev, report test.
# How to add queries and judge them: python -m podsearch.judging --help
"""


def build_pool(runs: pd.DataFrame, query_ids: list[str], depth: int = POOL_DEPTH) -> pd.DataFrame:
    """Every (query, episode) in the top `depth` of any system, with the systems that put it there and its best
    rank (for the record; judges never see them)."""
    top = runs[(runs["rank"] <= depth) & runs["query_id"].isin(query_ids)]
    grouped = top.groupby(["query_id", "episode_id"], observed=True)
    pool = grouped.agg(systems=("system", lambda s: ",".join(sorted(map(str, s)))), best_rank=("rank", "min"))
    return pool.reset_index().sort_values(["query_id", "episode_id"]).reset_index(drop=True)


def merge_pools(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """One pool from an earlier one and a new one: a pair keeps every system that pooled it and its best rank, so
    pooling new systems widens the collection's record instead of replacing it."""
    both = pd.concat([old.astype({"best_rank": int}), new.astype({"best_rank": int})], ignore_index=True)
    merged = both.groupby(["query_id", "episode_id"], sort=True).agg(
        systems=("systems", lambda s: ",".join(sorted(set(",".join(map(str, s)).split(","))))),
        best_rank=("best_rank", "min"))
    return merged.reset_index()


def unjudged(pool: pd.DataFrame, judgments: pd.DataFrame) -> pd.DataFrame:
    judged = set(zip(judgments["query_id"], judgments["episode_id"]))
    keep = [(q, e) not in judged for q, e in zip(pool["query_id"], pool["episode_id"])]
    return pool[keep].reset_index(drop=True)


def blind_order(pairs: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Queries in id order, each query's episodes in a seeded pseudo-random order that hides the systems' ranks."""
    key = [hashlib.sha1(f"{seed}:{q}:{e}".encode()).hexdigest() for q, e in zip(pairs["query_id"], pairs["episode_id"])]
    return pairs.assign(_key=key).sort_values(["query_id", "_key"]).drop(columns="_key").reset_index(drop=True)


def judging_sheet(pairs: pd.DataFrame, queries: dict, episodes: pd.DataFrame, max_chars: int = 600) -> pd.DataFrame:
    """The unjudged pairs with what a judge reads (query, episode title, show, description) and `relevant` empty."""
    info = episodes.set_index("episode_id")
    rows = []
    for query_id, episode_id in zip(pairs["query_id"], pairs["episode_id"]):
        episode = info.loc[episode_id]
        rows.append({"query_id": query_id, "query": queries[query_id].query, "episode_id": episode_id,
                     "show": episode["show_title"], "title": episode["title"],
                     "description": " ".join(str(episode["description"]).split())[:max_chars], "relevant": ""})
    return pd.DataFrame(rows)


def merge_sheet(sheet: pd.DataFrame, judgments: pd.DataFrame, judge: str, source: str = "sheet") -> pd.DataFrame:
    """Add a filled sheet's rows (relevant 1 or 0; empty rows are left for later) to the judgments."""
    for column in ("query_id", "episode_id", "relevant"):
        if column not in sheet.columns:
            raise CuratedError(f"{source}: missing column '{column}'")
    filled = sheet[sheet["relevant"].astype(str).str.strip() != ""]
    bad = ~filled["relevant"].astype(str).str.strip().isin(["0", "1"])
    if bad.any():
        row = int(filled.index[bad.to_numpy()][0]) + 2
        raise CuratedError(f"{source}: row {row}, column 'relevant': {filled['relevant'][bad].iloc[0]!r}; "
                           "expected 1 or 0 (or empty to leave it for later)")
    new = pd.DataFrame({"query_id": filled["query_id"].astype(str), "episode_id": filled["episode_id"].astype(str),
                        "relevant": filled["relevant"].astype(str).str.strip().astype(int), "judge": judge})
    merged = pd.concat([judgments[list(JUDGMENT_COLUMNS)], new], ignore_index=True)
    return merged.drop_duplicates(["query_id", "episode_id"], keep="first")


# ------------------------------------------------------------------------------------------------ judged query samples

# The sample judged on the committed run's pairs (python -m bench.querygen_sample draw/score).
QUERY_SAMPLE = "data/querygen/judged_sample.tsv"
# A new seed for each judged sample: the filters were revised after reading the samples of earlier runs (their rates
# are in bench/results/querygen_sample.txt), so none of those samples can measure the filters now.
QUERY_SAMPLE_SEED = 7
COMMITTED_SAMPLE = f"seed{QUERY_SAMPLE_SEED}"  # the committed sample's name; earlier ones are named by their files
# The samples of earlier runs, kept as judged: seed<N>_<which run>.tsv
EARLIER_SAMPLES = "bench/results/judged"


def judged_samples(earlier: str = EARLIER_SAMPLES, committed: str = QUERY_SAMPLE) -> dict[str, str]:
    """Every judged query sample as {name: path}: the earlier runs' by seed (seed1, seed2, ...), the committed
    run's (COMMITTED_SAMPLE) last."""
    return {**{Path(p).stem.split("_")[0]: p for p in sorted(glob.glob(f"{earlier}/seed*.tsv"))},
            COMMITTED_SAMPLE: committed}


def read_judged(path: str) -> pd.DataFrame:
    """A judged sample with its `boilerplate` column as 0/1 ints; ValueError naming the first row left unjudged."""
    judged = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    blank = ~judged["boilerplate"].isin(["0", "1"])
    if blank.any():
        row = int(blank.to_numpy().argmax())
        raise ValueError(f"{path}: row {row + 2} ({judged['query'][row]!r}): boilerplate must be 1 or 0, "
                         f"got {judged['boilerplate'][row]!r}")
    return judged.assign(boilerplate=judged["boilerplate"].astype(int))


def load_judged(paths: dict[str, str]) -> pd.DataFrame:
    """Every judged sample, {name: path}, in one frame with a `sample` and a 0/1 `flagged` column."""
    frames = [read_judged(path).assign(sample=name) for name, path in paths.items()]
    return pd.concat(frames, ignore_index=True).rename(columns={"boilerplate": "flagged"})


# ------------------------------------------------------------------------------------------------ CLI


def _load(args, known_ids=None):
    queries = load_queries(args.queries, known_ids, require_split=False)
    return queries, load_judgments(args.judgments, {q.id for q in queries}, known_ids)


def cmd_split(args) -> None:
    queries = load_queries(args.queries, require_split=False)
    new = [q.id for q in queries if not q.split]
    save_queries(assign_splits(queries, args.seed, args.test_fraction), args.queries, QUERIES_HEADER)
    print(f"{len(new)} new queries assigned a split in {args.queries}" if new else "every query already has a split")


def cmd_pool(args) -> None:
    queries, judgments = _load(args)
    frames, paths = [], args.runs or [RUNS]
    for path in paths:
        if not Path(path).exists():
            raise CuratedError(f"{path}: not found; run `dvc repro evaluate` first")
        frame = read_parquet(path)
        if len(paths) > 1:  # the same system name in two experiments' run files is two systems
            frame["system"] = Path(path).stem + "/" + frame["system"].astype(str)
        frames.append(frame)
    pool = build_pool(pd.concat(frames, ignore_index=True), [q.id for q in queries], args.depth)
    if Path(args.pool).exists():
        pool = merge_pools(pd.read_csv(args.pool, sep="\t", dtype=str), pool)
    # mtime 0: the same pool is the same bytes (gzip would stamp the time of writing)
    with writing(args.pool) as tmp:  # named as args.pool: gzip records the name
        pool.to_csv(tmp, sep="\t", index=False, compression={"method": "infer", "mtime": 0})
    left = unjudged(pool, judgments)
    print(f"pool of {len(pool)} pairs (with the top {args.depth} of every system) -> {args.pool}; {len(left)} not judged yet "
          f"over {left['query_id'].nunique()} queries")


def cmd_sheet(args) -> None:
    queries, judgments = _load(args)
    pool = pd.read_csv(args.pool, sep="\t", dtype=str)
    left = blind_order(unjudged(pool, judgments))
    if args.query_ids:
        left = left[left["query_id"].isin(args.query_ids.split(","))]
    sheet = judging_sheet(left, {q.id: q for q in queries}, read_parquet(args.prepared))
    with writing(args.out) as tmp:
        sheet.to_csv(tmp, sep="\t", index=False)
    print(f"{len(sheet)} pairs to judge -> {args.out}; fill `relevant` with 1 or 0, then `merge --sheet {args.out}`")


def cmd_merge(args) -> None:
    queries, judgments = _load(args)
    sheet = pd.read_csv(args.sheet, sep="\t", dtype=str, keep_default_na=False)
    merged = merge_sheet(sheet, judgments, args.judge, source=args.sheet)
    unknown = sorted(set(merged["query_id"]) - {q.id for q in queries})
    if unknown:
        raise CuratedError(f"{args.sheet}: query id {unknown[0]!r} is not in {args.queries}")
    save_judgments(merged, args.judgments)
    print(f"{len(merged) - len(judgments)} judgments added -> {args.judgments}")


def cmd_judge(args) -> None:
    queries, judgments = _load(args)
    by_id = {q.id: q for q in queries}
    pool = pd.read_csv(args.pool, sep="\t", dtype=str)
    left = blind_order(unjudged(pool, judgments))
    sheet = judging_sheet(left, by_id, read_parquet(args.prepared))
    print(f"{len(sheet)} pairs to judge. Relevant = a listener who typed the query would be glad to find this "
          "episode. Answer y / n, s to skip, q to stop (what you judged is saved).")
    added = []
    for row in sheet.itertuples():
        print(f"\nquery  [{row.query_id}] {row.query}\nshow   {row.show}\ntitle  {row.title}\n       {row.description}")
        answer = ""
        while answer not in ("y", "n", "s", "q"):
            answer = input("relevant? [y/n/s/q] ").strip().lower()[:1]
        if answer == "q":
            break
        if answer in ("y", "n"):
            added.append({"query_id": row.query_id, "episode_id": row.episode_id, "relevant": int(answer == "y"),
                          "judge": args.judge})
    if added:
        save_judgments(pd.concat([judgments, pd.DataFrame(added)], ignore_index=True), args.judgments)
    print(f"{len(added)} judgments added -> {args.judgments}")


def cmd_status(args) -> None:
    queries, judgments = _load(args)
    frame = pd.DataFrame([q.to_entry() for q in queries])
    frame["split"] = frame.get("split", pd.Series(dtype=str)).fillna("(none)")
    frame["english"] = frame["language"].eq("en").map({True: "en", False: "other"})
    print(f"{len(queries)} queries")
    print(frame.groupby(["split", "style", "english"]).size().unstack(fill_value=0).to_string())
    positives = judgments[judgments["relevant"] == 1].groupby("query_id").size()
    print(f"\n{len(judgments)} judged pairs, {int(judgments['relevant'].sum())} relevant; "
          f"queries with no relevant episode: {sum(q.id not in positives.index for q in queries)}")
    if Path(args.pool).exists():
        pool = pd.read_csv(args.pool, sep="\t", dtype=str)
        print(f"pool {args.pool}: {len(pool)} pairs, {len(unjudged(pool, judgments))} not judged yet")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m podsearch.judging", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", default=QUERIES)
    parser.add_argument("--judgments", default=JUDGMENTS)
    parser.add_argument("--pool", default=POOL)
    sub = parser.add_subparsers(dest="command", required=True)
    split = sub.add_parser("split", help="assign dev/test to queries that have no split yet")
    split.add_argument("--seed", type=int, default=2026)
    split.add_argument("--test-fraction", type=float, default=0.6)
    pool = sub.add_parser("pool", help="pool the top of every system's run")
    pool.add_argument("--runs", action="append", help=f"run file(s) to pool (repeatable; default {RUNS}); with "
                      "several, systems are named <file stem>/<system>")
    pool.add_argument("--depth", type=int, default=POOL_DEPTH)
    sheet = sub.add_parser("sheet", help="write the unjudged pairs as a sheet to fill in")
    sheet.add_argument("--out", required=True)
    sheet.add_argument("--prepared", default=PREPARED)
    sheet.add_argument("--query-ids", default="", help="comma list: only these queries")
    merge = sub.add_parser("merge", help="add a filled sheet to the judgments")
    merge.add_argument("--sheet", required=True)
    merge.add_argument("--judge", required=True, help="who judged (a name or handle, recorded per row)")
    judge = sub.add_parser("judge", help="judge the unjudged pool pairs interactively")
    judge.add_argument("--prepared", default=PREPARED)
    judge.add_argument("--judge", default=getpass.getuser())
    sub.add_parser("status", help="what the collection holds and what is left to judge")
    args = parser.parse_args(argv)
    try:
        {"split": cmd_split, "pool": cmd_pool, "sheet": cmd_sheet, "merge": cmd_merge, "judge": cmd_judge,
         "status": cmd_status}[args.command](args)
    except (PodsearchError, OSError) as exc:
        print(f"judging: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("\nstopped; nothing from this session was saved", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
