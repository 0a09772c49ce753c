"""Compare systems across runs of the pipeline, query by query, on the curated queries.

    python -m podsearch.compare 'distillation-default-s*' 'distillation-kl4-s*'     # two variants, three seeds each
    python -m podsearch.compare workspace:shipped_v1 workspace:shipped              # two systems of one run

A side is one or more runs (experiment names or globs over them, git revs, or `workspace`: see
podsearch.experiments.resolve), optionally followed by `:SYSTEM`. Each run's curated run file
(data/eval/runs/curated.parquet) is read through DVC from its commit. A query's metric is its mean over the side's runs
(a variant's training seeds), so the test compares recipes rather than single training runs. Printed, on the dev
split by default: both sides' means with 95% bootstrap CIs, B - A with the paired randomization test's p-value, per
group of queries (all; English; not English in the language of their episodes; cross-lingual), and the share of its
teacher's MRR@30 lead over base that each side's system closes.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from podsearch.curated import LANGUAGE_GROUPS, CuratedQuery, language_groups, split_queries
from podsearch.errors import exit_on_error
from podsearch.evaluation import HEADLINE
from podsearch.experiments import Experiment, ExperimentError, Study, read_bytes, read_params, resolve
from podsearch.metrics import per_query
from podsearch.retrieval.fusion import Fusion
from podsearch.runfiles import Run, RunFileError, read_runs, system_run
from podsearch.stats import bootstrap_ci, paired_randomization_test

RUNS_FILE = "data/eval/runs/curated.parquet"
GAP_METRIC = "mrr@30"
_SIDE = re.compile(r"^(?P<runs>[^:]+)(?::(?P<system>[\w-]+))?$")


@dataclass
class Curated:
    """The scored queries of one split, their relevant episodes and the groups they are read in."""

    split: str
    queries: list[CuratedQuery]
    relevant: list[set[str]]
    groups: dict[str, np.ndarray]  # "all" and LANGUAGE_GROUPS -> boolean mask

    @property
    def ids(self) -> list[str]:
        return [q.id for q in self.queries]


def load_curated(split: str = "dev", root: str | Path = ".") -> Curated:
    """The curated queries of `split`, grouped by language with the prepared episodes' show languages."""
    from podsearch.data import load_prepared

    root = Path(root)
    queries, relevant = split_queries(split, root / "data/curated/queries.yaml", root / "data/curated/judgments.tsv")
    episodes = load_prepared(root / "data/prepared/episodes.parquet")
    languages = dict(zip(episodes["episode_id"], episodes["language"]))
    groups = {"all": np.ones(len(queries), bool)}
    groups.update({k: np.asarray(v, bool) for k, v in language_groups(queries, relevant, languages).items()})
    return Curated(split, queries, relevant, groups)


@dataclass
class Side:
    """The runs one side of a comparison reads, and the system it compares."""

    spec: str
    system: str
    experiments: list[Experiment]
    runs: list[dict[str, Run]]

    @property
    def label(self) -> str:
        names = [e.name for e in self.experiments]
        return f"{', '.join(names)} ({len(names)} run{'s' * (len(names) > 1)}): {self.system}"

    def values(self, curated: Curated, metric: str, system: str | None = None) -> np.ndarray:
        """Each query's `metric` for `system` (the side's by default), averaged over the side's runs."""
        system = system or self.system
        return np.mean([per_query(system_run(runs, system, e.name).ids, curated.relevant, metric)
                        for e, runs in zip(self.experiments, self.runs)], axis=0)

    def gap_closed(self, curated: Curated, keep: np.ndarray) -> float | None:
        """(system - base) / (teacher - base) on MRR@30, summed over the kept queries: the share of its teacher's
        lead over base the side's system recovers (each run's own teacher and base). None without a lead."""
        teacher, base = (self.values(curated, GAP_METRIC, s)[keep] for s in ("teacher", "base"))
        lead = float((teacher - base).sum())
        if lead <= 0:
            return None
        return float((self.values(curated, GAP_METRIC)[keep] - base).sum()) / lead


def fused_values(fusion: Fusion, runs: list[dict[str, Run]], relevant: list[set[str]],
                 metrics: tuple[str, ...] = ("recall@10", "mrr@30")) -> dict[str, np.ndarray]:
    """Each query's metrics for `fusion` built from each run's parts (a single part: its own ranking), averaged over
    the runs: how a fused system not in the run files would have scored."""
    out: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for run in runs:
        if len(fusion.parts) == 1:
            ranked = run[fusion.parts[0]].ids
        else:
            ranked = fusion.fuse({p: (run[p].scores, run[p].ids) for p in fusion.parts}, 30)[1]
        for metric in metrics:
            out[metric].append(per_query(ranked, relevant, metric))
    return {m: np.mean(v, axis=0) for m, v in out.items()}


def load_side(spec: str, system: str, curated: Curated, root: str | Path = ".") -> Side:
    match = _SIDE.match(spec.strip())
    if not match:
        raise ExperimentError(f"{spec!r}: expected RUNS[:SYSTEM]")
    experiments = resolve(match["runs"], root)
    runs = [read_runs(read_bytes(e, RUNS_FILE, root), curated.ids, name=f"{e.name}:{RUNS_FILE}") for e in experiments]
    return Side(spec, match["system"] or system, experiments, runs)


def compare(a: Side, b: Side, curated: Curated, seed: int = 42, resamples: int = 10_000) -> list[dict]:
    """One row per (group, metric): both sides' means and 95% CIs, B - A, its p-value, queries B wins and loses."""
    rows = []
    for group, keep in curated.groups.items():
        if not keep.any():
            continue
        for metric in HEADLINE:
            va, vb = a.values(curated, metric)[keep], b.values(curated, metric)[keep]
            rows.append({"group": group, "queries": int(keep.sum()), "metric": metric,
                         "a": float(va.mean()), "a_ci": bootstrap_ci(va, seed, resamples),
                         "b": float(vb.mean()), "b_ci": bootstrap_ci(vb, seed, resamples),
                         "difference": float(vb.mean() - va.mean()),
                         "p_value": paired_randomization_test(vb, va, seed, resamples),
                         "wins": int((vb > va).sum()), "losses": int((vb < va).sum())})
    return rows


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def render(a: Side, b: Side, curated: Curated, rows: list[dict]) -> str:
    lines = [f"A = {a.label}", f"B = {b.label}", f"curated {curated.split}: {len(curated.queries)} queries", "",
             "| queries | n | metric | A [95% CI] | B [95% CI] | B - A | p | B better / worse |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['group']} | {r['queries']} | {r['metric']} | {r['a']:.3f} [{r['a_ci'][0]:.3f}, "
                     f"{r['a_ci'][1]:.3f}] | {r['b']:.3f} [{r['b_ci'][0]:.3f}, {r['b_ci'][1]:.3f}] | "
                     f"{r['difference']:+.3f} | {r['p_value']:.3f} | {r['wins']} / {r['losses']} |")
    gaps = []
    for name, side in (("A", a), ("B", b)):
        try:
            shares = [_share(side.gap_closed(curated, keep)) for keep in curated.groups.values()]
        except RunFileError:  # a run without base or teacher (an older run file): no gap to read
            continue
        gaps.append(f"| {name} | " + " | ".join(shares) + " |")
    if gaps:
        lines += ["", f"Share of the teacher's {GAP_METRIC} lead over base that the system closes:", "",
                  "| side | " + " | ".join(curated.groups) + " |", "|---|" + "---:|" * len(curated.groups), *gaps]
    return "\n".join(lines) + "\n"


def study_table(study: Study, split: str = "dev", resamples: int = 10_000, root: str | Path = ".") -> str:
    """A study's table: every variant (seed means) against the reference variant, query by query; the variant's
    fine-tune alone, and inside params.yaml's shipped fusion (built from each run's parts)."""
    from podsearch.params import load_params
    from podsearch.retrieval.fusion import load_fusions

    curated = load_curated(split, root)
    sides = {}
    for variant in study.variants:
        try:
            sides[variant] = load_side(study.runs(variant), study.system, curated, root)
        except ExperimentError:
            continue  # not run yet: listed below the table
    if study.reference not in sides:
        raise ExperimentError(f"{study.name}: the reference variant {study.reference!r} has no run yet; "
                              f"`python -m podsearch.experiments queue {study.name} --variant {study.reference}`")
    reference = sides[study.reference]
    seed = int(read_params(reference.experiments[0], root).get("evaluate", {}).get("seed", 42))
    base, teacher = (reference.values(curated, GAP_METRIC, s).mean() for s in ("base", "teacher"))
    shipped = load_fusions(load_params("fusion", Path(root) / "params.yaml"))["shipped"]
    shipped_name = f"{shipped.method}({', '.join(shipped.parts)})"

    def scores(side: Side) -> dict[str, dict[str, np.ndarray]]:
        return {"alone": {m: side.values(curated, m) for m in ("recall@10", "mrr@30")},
                "shipped": fused_values(shipped, side.runs, curated.relevant)}

    ref_scores = scores(reference)
    lines = [
        f"# {study.name}: {study.what}",
        "",
        f"Written by `python -m podsearch.experiments table {study.name} --split {split}` from the DVC experiments "
        f"`{study.name}-<variant>-s<seed>` (experiments.yaml). {len(curated.queries)} curated {split} queries "
        f"({', '.join(f'{int(curated.groups[g].sum())} {g}' for g in LANGUAGE_GROUPS)}). Each variant's per-query "
        f"metric is its mean over its seeds; p: paired randomization test against `{study.reference}` "
        f"({resamples:,} resamples); gap closed: (`{study.system}` - base) / (teacher - base) on MRR@30, each run "
        f"with its own teacher (fusion.teacher), over all queries / English / same-language / cross-lingual. "
        f"`{study.reference}`'s base: MRR@30 {base:.3f}; its teacher: {teacher:.3f}. In the shipped system: the "
        f"variant's `{study.system}` in params.yaml's `fusion.shipped`, {shipped_name}, built from each run's parts.",
        "",
        f"| variant | what it tests | seeds | {study.system} Recall@10 (p) | {study.system} MRR@30 (p) | "
        "gap closed: all / English / same-language / cross-lingual | in the shipped system: Recall@10 (p) | "
        "MRR@30 (p) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for variant, side in sides.items():
        seeds = sorted(int(read_params(e, root).get("train", {}).get("seed", 0)) for e in side.experiments)
        mine, cells = scores(side), []
        for where in ("alone", "shipped"):
            for metric in ("recall@10", "mrr@30"):
                values = mine[where][metric]
                if variant == study.reference:
                    cells.append(f"{values.mean():.3f}")
                else:
                    p = paired_randomization_test(values, ref_scores[where][metric], seed, resamples)
                    cells.append(f"{values.mean():.3f} ({p:.3f})")
            if where == "alone":
                cells.append(" / ".join(_share(side.gap_closed(curated, keep)) for keep in curated.groups.values()))
        sets = ", ".join(f"`{k}={v}`" for k, v in study.variants[variant].set.items())
        what = study.variants[variant].what + (f" ({sets})" if sets else "")
        name = f"**{variant}** (reference)" if variant == study.reference else variant
        lines.append(f"| {name} | {what} | {', '.join(map(str, seeds))} | " + " | ".join(cells) + " |")
    missing = [v for v in study.variants if v not in sides]
    if missing:
        lines += ["", "Declared, not run yet: " + ", ".join(f"`{v}`" for v in missing)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m podsearch.compare", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("a", help="RUNS[:SYSTEM]: experiment names or globs, git revs or `workspace`, comma-separated")
    parser.add_argument("b", help="the same, for the side compared with A")
    parser.add_argument("--system", default="finetuned", help="the system compared where a side names none")
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    parser.add_argument("--seed", type=int, default=42, help="seeds the bootstrap and the randomization test")
    parser.add_argument("--resamples", type=int, default=10_000)
    args = parser.parse_args(argv)
    with exit_on_error("compare"):
        curated = load_curated(args.split)
        a, b = (load_side(spec, args.system, curated) for spec in (args.a, args.b))
        print(render(a, b, curated, compare(a, b, curated, args.seed, args.resamples)))


if __name__ == "__main__":
    main()
