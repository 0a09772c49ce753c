"""DVC experiments of this pipeline: find them by name, read their outputs through DVC, and run the studies declared
in experiments.yaml (variants x training seeds) as `dvc exp run --queue` experiments.

    python -m podsearch.experiments list                       # the studies, and which of their runs exist
    python -m podsearch.experiments queue distillation --run   # queue what is missing, then run the queue
    python -m podsearch.experiments queue --name my-kl -S train.loss=kldiv --seeds 42 43 44   # one outside the file
    python -m podsearch.experiments table distillation         # -> bench/results/distillation_dev.md

Every run is the real pipeline with params overridden (`-S key=value`), named `<study>-<variant>-s<seed>`, listed by
`dvc exp show`, its outputs in the DVC cache (`dvc exp push <remote> <name>` shares them). `python -m
podsearch.compare` compares any of them query by query; `table` does it for a whole study against its reference.
"""
from __future__ import annotations

import argparse
import fnmatch
import io
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from podsearch.errors import PodsearchError, exit_on_error

STUDIES_FILE = "experiments.yaml"
WORKSPACE = "workspace"  # a side of a comparison that reads the checkout's own files
SEED_PARAM = "train.seed"


class ExperimentError(PodsearchError, ValueError):
    """An experiment, rev or study that cannot be found or read; the message says what exists."""


# ------------------------------------------------------------------------------------------------ experiments


@dataclass(frozen=True)
class Experiment:
    """A run to read: an experiment (by name), a git rev, or the workspace (rev None)."""

    name: str
    rev: str | None
    baseline: str | None = None


def _git(root: str | Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise ExperimentError(f"git {' '.join(args)}: {result.stderr.strip() or 'failed'}")
    return result.stdout


def short_rev(rev: str, root: str | Path = ".") -> str:
    """A commit's short hash (`HEAD`, `<sha>^`): what a result file names as the commit it was measured at."""
    return _git(root, "rev-parse", "--short", rev).strip()


def list_experiments(root: str | Path = ".") -> list[Experiment]:
    """Every experiment DVC keeps in this repository (its refs/exps/<baseline>/<name> git refs), newest first."""
    lines = _git(root, "for-each-ref", "--sort=-committerdate", "--format=%(refname) %(objectname)",
                 "refs/exps").split("\n")
    found = []
    for line in filter(None, lines):
        ref, sha = line.split()
        parts = ref.split("/")  # refs, exps, baseline[:2], baseline[2:], name
        if len(parts) == 5:
            found.append(Experiment(parts[4], sha, parts[2] + parts[3]))
    return found


def resolve(spec: str, root: str | Path = ".") -> list[Experiment]:
    """The runs a comma-separated `spec` names: `workspace`, experiment names or globs over them (`kl-s*`: one
    variant's seeds), or git revs. A name run from several baselines is read from HEAD's, else from its newest."""
    head = _git(root, "rev-parse", "HEAD").strip()
    known = list_experiments(root)
    chosen: list[Experiment] = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        if item == WORKSPACE:
            chosen.append(Experiment(WORKSPACE, None))
            continue
        names = sorted({e.name for e in known if fnmatch.fnmatchcase(e.name, item)})
        if names:
            for name in names:
                runs = [e for e in known if e.name == name]
                chosen.append(next((e for e in runs if e.baseline == head), runs[0]))
            continue
        result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{item}^{{commit}}"], cwd=root,
                                capture_output=True, text=True)
        if result.returncode != 0:
            shown = ", ".join(sorted({e.name for e in known})[:12]) or "none yet"
            raise ExperimentError(f"{item!r} is no experiment, git rev or `{WORKSPACE}`; experiments: {shown}")
        chosen.append(Experiment(item, result.stdout.strip()))
    if not chosen:
        raise ExperimentError(f"{spec!r} names no run")
    return chosen


def read_bytes(experiment: Experiment, path: str, root: str | Path = ".") -> io.BytesIO:
    """A DVC-tracked (or git-tracked) file as `experiment` has it: the workspace's file, else through DVC from
    the experiment's commit (the local cache, else the remote: `dvc exp pull` or `dvc pull` fetch it)."""
    if experiment.rev is None:
        return io.BytesIO((Path(root) / path).read_bytes())
    import dvc.api

    try:
        with dvc.api.open(path, repo=str(root), rev=experiment.rev, mode="rb") as handle:
            return io.BytesIO(handle.read())
    except Exception as exc:  # noqa: BLE001 - dvc raises its own tree of errors for a missing file or cache entry
        raise ExperimentError(f"{experiment.name}: cannot read {path} ({type(exc).__name__}: {exc}); "
                              f"`dvc exp pull <remote> {experiment.name}` fetches an experiment's outputs") from None


def read_params(experiment: Experiment, root: str | Path = ".") -> dict:
    """params.yaml as the run used it."""
    if experiment.rev is None:
        text = (Path(root) / "params.yaml").read_text()
    else:
        text = _git(root, "show", f"{experiment.rev}:params.yaml")
    return yaml.safe_load(text) or {}


def param(params: Mapping, dotted: str) -> Any:
    node: Any = params
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


# ------------------------------------------------------------------------------------------------ studies


@dataclass
class Variant:
    name: str
    what: str
    set: dict[str, Any] = field(default_factory=dict)  # params overridden: dotted key -> value


@dataclass
class Study:
    """A question answered by comparing variants of the pipeline, each trained with every seed."""

    name: str
    what: str
    seeds: list[int]
    reference: str  # the variant every other one is compared with, query by query
    variants: dict[str, Variant]
    system: str = "finetuned"  # the system compared

    def run_name(self, variant: str, seed: int) -> str:
        return f"{self.name}-{variant}-s{seed}"

    def runs(self, variant: str) -> str:
        """The glob that names every seed of `variant` (the compare command's side)."""
        return f"{self.name}-{variant}-s*"


def load_studies(path: str | Path = STUDIES_FILE) -> dict[str, Study]:
    path = Path(path)
    if not path.exists():
        raise ExperimentError(f"{path}: not found; run from the repository root")
    data = yaml.safe_load(path.read_text()) or {}
    studies = {}
    for name, entry in data.items():
        where = f"{path} {name}"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("variants"), Mapping) or not entry["variants"]:
            raise ExperimentError(f"{where}: expected what, seeds, reference and variants: {{name: {{what, set}}}}")
        variants = {}
        for variant, spec in entry["variants"].items():
            spec = spec or {}
            overrides = spec.get("set") or {}
            if not isinstance(overrides, Mapping) or SEED_PARAM in overrides:
                raise ExperimentError(f"{where}.variants.{variant}.set: expected {{param: value}} without "
                                      f"{SEED_PARAM} (the study's seeds set it)")
            variants[str(variant)] = Variant(str(variant), str(spec.get("what", "")), dict(overrides))
        seeds = entry.get("seeds") or [42]
        if not all(isinstance(s, int) for s in seeds):
            raise ExperimentError(f"{where}.seeds: expected a list of whole numbers, got {seeds!r}")
        reference = str(entry.get("reference", next(iter(variants))))
        if reference not in variants:
            raise ExperimentError(f"{where}.reference: {reference!r} is not one of its variants")
        studies[str(name)] = Study(str(name), str(entry.get("what", "")), list(seeds), reference, variants,
                                   str(entry.get("system", "finetuned")))
    return studies


def override(key: str, value: Any) -> str:
    """`-S key=value` as DVC (Hydra's override grammar) reads it back as `value`."""
    return f"{key}={'null' if value is None else str(value).lower() if isinstance(value, bool) else value}"


def queue_command(name: str, overrides: Mapping[str, Any], seed: int) -> list[str]:
    command = [sys.executable, "-m", "dvc", "exp", "run", "--queue", "-n", name]
    for key, value in {**overrides, SEED_PARAM: seed}.items():
        command += ["-S", override(key, value)]
    return command


def finished(root: str | Path = ".") -> set[str]:
    """Names of the experiments run from HEAD."""
    head = _git(root, "rev-parse", "HEAD").strip()
    return {e.name for e in list_experiments(root) if e.baseline == head}


def queue(variants: Mapping[str, Mapping[str, Any]], seeds: list[int], root: str | Path = ".",
          force: bool = False) -> list[str]:
    """`dvc exp run --queue` for every variant (run name -> params overridden, the seed appended to the name) and
    seed not yet run from HEAD (all of them with `force`). Returns the names queued."""
    done = set() if force else finished(root)
    queued = []
    for prefix, overrides in variants.items():
        for seed in seeds:
            name = f"{prefix}-s{seed}"
            if name in done:
                print(f"{name}: already run from HEAD (--force queues it again)")
                continue
            _dvc(queue_command(name, overrides, seed), root, f"queueing {name}")
            queued.append(name)
    return queued


def run_queue(root: str | Path = ".", jobs: int = 1) -> None:
    """Run everything queued, one experiment at a time by default (each is CPU-bound), following their logs."""
    _dvc([sys.executable, "-m", "dvc", "exp", "run", "--run-all", "-j", str(jobs)], root, "running the queue")


def _dvc(command: list[str], root: str | Path, doing: str) -> None:
    """A dvc command whose own output the user sees; its failure as one line (DVC has printed why above it)."""
    code = subprocess.run(command, cwd=root).returncode
    if code != 0:
        raise ExperimentError(f"{doing}: `{' '.join(command[2:])}` failed (exit {code}); DVC says why above "
                              "(`dvc queue status`, `dvc queue logs <name>`)")


# ------------------------------------------------------------------------------------------------ command line


def _parse_set(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ExperimentError(f"-S {item}: expected key=value")
        out[key] = yaml.safe_load(value)
    return out


def cmd_list(args) -> None:
    studies = load_studies(args.file)
    done = finished()
    for study in studies.values():
        print(f"{study.name}: {study.what} (seeds {', '.join(map(str, study.seeds))}; reference {study.reference})")
        for variant in study.variants.values():
            ran = [s for s in study.seeds if study.run_name(variant.name, s) in done]
            sets = ", ".join(override(k, v) for k, v in variant.set.items()) or "committed params"
            print(f"  {variant.name:28s} {len(ran)}/{len(study.seeds)} run from HEAD  [{sets}]  {variant.what}")


def cmd_queue(args) -> None:
    if args.name:
        variants = {args.name: _parse_set(args.set)}
        seeds = args.seeds or [42]
    else:
        if not args.study:
            raise ExperimentError("name a study of experiments.yaml, or a run with --name and -S")
        studies = load_studies(args.file)
        if args.study not in studies:
            raise ExperimentError(f"no study {args.study!r} in {args.file}; it has {', '.join(studies)}")
        study = studies[args.study]
        unknown = [v for v in args.variant if v not in study.variants]
        if unknown:
            raise ExperimentError(f"{study.name}: no variant {unknown[0]!r}; it has {', '.join(study.variants)}")
        picked = args.variant or list(study.variants)
        variants = {f"{study.name}-{v}": study.variants[v].set for v in picked}
        seeds = args.seeds or study.seeds
    queued = queue(variants, seeds, force=args.force)
    print(f"queued {len(queued)}: {', '.join(queued) or 'nothing'}")
    if args.run and queued:
        run_queue(jobs=args.jobs)
    elif queued:
        print("run them with `dvc exp run --run-all` (or `dvc queue start`; `dvc queue status` follows)")


def cmd_table(args) -> None:
    from podsearch.compare import study_table

    studies = load_studies(args.file)
    if args.study not in studies:
        raise ExperimentError(f"no study {args.study!r} in {args.file}; it has {', '.join(studies)}")
    text = study_table(studies[args.study], split=args.split, resamples=args.resamples)
    out = Path(args.out or f"bench/results/{args.study}_{args.split}.md")
    from podsearch.artifacts import write_text

    write_text(out, text)
    print(text)
    print(f"-> {out}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m podsearch.experiments", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default=STUDIES_FILE, help="the studies (default experiments.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the studies and which of their runs exist")
    q = sub.add_parser("queue", help="queue a study's missing runs (or one run given by --name and -S)")
    q.add_argument("study", nargs="?")
    q.add_argument("--variant", action="append", default=[], help="only this variant (repeatable)")
    q.add_argument("--seeds", type=int, nargs="+", help="override the study's seeds")
    q.add_argument("--name", help="a run outside experiments.yaml: its name (the seed is appended)")
    q.add_argument("-S", "--set", action="append", default=[], help="with --name: a param override key=value")
    q.add_argument("--force", action="store_true", help="queue runs that already ran from HEAD again")
    q.add_argument("--run", action="store_true", help="then run the queue (`dvc exp run --run-all`)")
    q.add_argument("-j", "--jobs", type=int, default=1, help="experiments at a time with --run")
    t = sub.add_parser("table", help="a study's table on curated queries, every variant against the reference")
    t.add_argument("study")
    t.add_argument("--split", default="dev", choices=("dev", "test"))
    t.add_argument("--resamples", type=int, default=10_000)
    t.add_argument("--out", help="default bench/results/<study>_<split>.md")
    args = parser.parse_args(argv)
    with exit_on_error("experiments"):
        {"list": cmd_list, "queue": cmd_queue, "table": cmd_table}[args.command](args)


if __name__ == "__main__":
    main()
