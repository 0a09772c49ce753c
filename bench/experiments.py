"""The experiments behind the defaults: run them as `dvc exp`s, then compare them on the curated dev queries.

    python bench/experiments.py run        # queues every experiment below that has not run yet, runs the queue
    python bench/experiments.py collect    # -> bench/results/experiments.md

Each experiment is the pipeline with a few params overridden (`dvc exp run -S ...`), so it reruns only the stages
those params affect. `collect` fetches each experiment's curated run file (`dvc get --rev`), scores it against the
current judgments (so judging more of the pool improves every row alike) and tests its fine-tuned and shipped systems
against the reference experiment's with the paired randomization test. Only the dev split is read: the test split
is for reporting the final choice, never for making it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from podsearch.curated import load_judgments, load_queries, relevant_sets
from podsearch.metrics import per_query
from podsearch.report import runs_from_frame
from podsearch.stats import paired_randomization_test

REFERENCE = "default"
# name: (params overridden, what it tests); `default` is the committed run at HEAD, every row is tested against it
EXPERIMENTS: dict[str, tuple[dict[str, object], str]] = {
    "default": ({}, "the committed defaults (params.yaml at HEAD)"),
    "pseudo": ({"querygen.mix.pseudo": 3, "querygen.mix.keyword": 0}, "titles + inverse-cloze sentences, filtered"),
    "mix-p1k2": ({"querygen.mix.pseudo": 1, "querygen.mix.keyword": 2}, "1 pseudo + 2 keyword queries per episode"),
    "mix-k3": ({"querygen.mix.pseudo": 0, "querygen.mix.keyword": 3}, "keyword queries only"),
    "neg-hard": ({"querygen.mix.pseudo": 3, "querygen.mix.keyword": 0, "train.negatives": "hard"},
                 "pseudo + a hard negative mined with the base model"),
    "neg-show": ({"querygen.mix.pseudo": 3, "querygen.mix.keyword": 0, "train.negatives": "same_show"},
                 "pseudo + another episode of the same show as negative"),
    "len256": ({"embed.max_seq_length": 256}, "the default, episodes encoded at 256 tokens instead of 128"),
    "cached256": ({"train.loss": "cached_mnrl", "train.batch_size": 256},
                  "the default, CachedMultipleNegativesRankingLoss with 256 in-batch negatives"),
}
METRICS = ("recall@10", "mrr@30")


def dvc(*args: str, capture: bool = False) -> str:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], check=True, text=True,
                            capture_output=capture)
    return result.stdout if capture else ""


def experiment_revs() -> dict[str, str]:
    """Experiment name -> commit of its finished run, over every baseline commit (the newest run of a name wins).
    Queued and running experiments are left out: dvc shows their baseline's metrics until they finish."""
    revs = {}
    for row in reversed(json.loads(dvc("exp", "show", "--json", "-A", capture=True))):
        for exp in row.get("experiments") or []:
            if (exp.get("executor") or {}).get("state", "success") != "success":
                continue
            for rev in exp.get("revs") or []:
                if rev.get("name"):
                    revs[rev["name"]] = rev["rev"]
    return revs


def _fusion_name(fusion: dict) -> str:
    """The shipped fusion an experiment ran with (params.yaml at its commit), e.g. `score(finetuned, use, bm25)`."""
    return f"{fusion['method']}({', '.join(fusion['weights'])})"


def short_rev(rev: str) -> str:
    """A commit's short hash (`HEAD`, `<sha>^`)."""
    return subprocess.run(["git", "rev-parse", "--short", rev], check=True, text=True,
                          capture_output=True).stdout.strip()


def cmd_run(_args) -> None:
    done = experiment_revs()
    for name, (overrides, _) in EXPERIMENTS.items():
        if name in done or name == REFERENCE:
            continue
        dvc("exp", "run", "--queue", "-n", name, *[f"-S{k}={v}" for k, v in overrides.items()])
    dvc("queue", "start", "-j", "1")
    print("queued; `dvc queue status` shows progress, then run `collect`")


def cmd_collect(args) -> None:
    revs = {REFERENCE: subprocess.run(["git", "rev-parse", "HEAD"], check=True, text=True,
                                      capture_output=True).stdout.strip(), **experiment_revs()}
    missing = [n for n in EXPERIMENTS if n not in revs]
    queries = load_queries(args.queries)
    relevant = relevant_sets(queries, load_judgments(args.judgments, {q.id for q in queries}))
    dev = [q for q in queries if q.split == "dev" and relevant[q.id]]
    ids, rel = [q.id for q in dev], [relevant[q.id] for q in dev]
    values, train, shipped = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in [n for n in EXPERIMENTS if n in revs]:
            path = Path(tmp) / f"{name}.parquet"
            dvc("get", ".", "data/eval/runs/curated.parquet", "--rev", revs[name], "-o", str(path), capture=True)
            runs = runs_from_frame(pd.read_parquet(path), ids)
            values[name] = {(s, m): per_query(runs[s].ids, rel, m) for s in ("finetuned", "shipped") for m in METRICS}
            shown = subprocess.run(["git", "show", f"{revs[name]}:metrics/train.json"], check=True, text=True,
                                   capture_output=True).stdout
            train[name] = json.loads(shown)["inbatch_mrr@5_after"]
            params = yaml.safe_load(subprocess.run(["git", "show", f"{revs[name]}:params.yaml"], check=True, text=True,
                                                   capture_output=True).stdout)
            shipped[name] = _fusion_name(params["fusion"]["shipped"])
    reference = values.get(REFERENCE)
    # An experiment's commit sits on the commit it ran from, so its parent says which code and data it measured.
    baselines = sorted({short_rev(f"{revs[n]}^") for n in values if n != REFERENCE})
    lines = [
        "# Experiments on the curated dev queries",
        "",
        f"Written by `bench/experiments.py collect` from each experiment's run file, scored with the current "
        f"judgments ({len(dev)} dev queries). p: paired randomization test against `{REFERENCE}` (10,000 "
        "resamples). `shipped` is the fusion in params.yaml at the experiment's commit. The test split is not read "
        f"here. `{REFERENCE}` is the committed run at {short_rev(revs[REFERENCE])}; the experiments ran from "
        f"{', '.join(baselines) or 'no commit yet'}.",
        "",
        "| experiment | what it tests | in-batch MRR@5 | fine-tuned R@10 | fine-tuned MRR@30 (p) | shipped | "
        "shipped R@10 | shipped MRR@30 (p) |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, vals in values.items():
        cells = [f"{train[name]:.3f}"]
        for system in ("finetuned", "shipped"):
            if system == "shipped":
                cells.append(shipped[name])
            cells.append(f"{vals[(system, 'recall@10')].mean():.3f}")
            mrr = vals[(system, "mrr@30")]
            p = (f" (p {paired_randomization_test(mrr, reference[(system, 'mrr@30')], seed=0):.3f})"
                 if reference is not None and name != REFERENCE else "")
            cells.append(f"{mrr.mean():.3f}{p}")
        overrides = ", ".join(f"`{k}={v}`" for k, v in EXPERIMENTS[name][0].items())
        what = f"{EXPERIMENTS[name][1]} ({overrides})" if overrides else EXPERIMENTS[name][1]
        lines.append(f"| {name} | {what} | " + " | ".join(cells) + " |")
    if missing:
        lines += ["", "Not run yet: " + ", ".join(missing)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", default="data/curated/queries.yaml")
    parser.add_argument("--judgments", default="data/curated/judgments.tsv")
    parser.add_argument("--out", default="bench/results/experiments.md")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run")
    sub.add_parser("collect")
    args = parser.parse_args(argv)
    {"run": cmd_run, "collect": cmd_collect}[args.command](args)


if __name__ == "__main__":
    main()
