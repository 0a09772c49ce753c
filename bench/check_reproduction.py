"""Reproduce the committed run in a fresh clone and show what came out the same: metrics and bytes, separately.

Clones the repository at HEAD into a folder beside it (beside, so that `../shared/dvc-store`, the embedded sample's
remote, resolves as in the original), pulls the sample, runs `dvc repro`, then prints:
- metrics: every metric of the metrics files dvc.yaml declares, committed vs reproduced, the absolute difference, how
  many agree within --tolerance (and how many exactly), and the largest difference;
- bytes: which DVC outputs of dvc.lock are byte-identical (same md5) and which are not.

    python -m bench.check_reproduction [--clone ../reproduction-check] [--keep] [--tolerance 1e-6]
    python -m bench.check_reproduction --revs A B     # the same comparison between two commits' recorded runs

The run takes as long as `dvc repro`. On the same CPU type every output is expected to be identical; on another one
the float outputs (embeddings, the fine-tuned model, pseudo-labels, run files) differ in their last bits while the
metrics agree within the tolerance (docs/reproducibility.md). `--revs` needs no run: it compares what two commits
recorded, e.g. the same pipeline run on two machines.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path) -> None:
    print("$", " ".join(args), flush=True)
    # Stage commands say `python -m stages.<name>`: the interpreter running this script must be first on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(args, cwd=cwd, check=True, env=env)


def flatten(value, prefix: str = "") -> dict[str, float]:
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: float(value)} if isinstance(value, (int, float)) and not isinstance(value, bool) else {}


def metrics_of(read) -> dict[str, float]:
    """Every numeric leaf of the metrics files dvc.yaml declares, keyed file:path."""
    stages = yaml.safe_load(read("dvc.yaml"))["stages"]
    files = [next(iter(m)) if isinstance(m, dict) else m for s in stages.values() for m in s.get("metrics", [])]
    out = {}
    for name in files:
        out.update({f"{name}:{k}": v for k, v in flatten(json.loads(read(name))).items()})
    return out


def output_hashes(lock_text: str) -> dict[str, str]:
    lock = yaml.safe_load(lock_text)
    return {o["path"]: o.get("md5", "") for stage in lock["stages"].values() for o in stage.get("outs", [])}


def git_show(rev: str, name: str) -> str:
    return subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def compare(before: dict[str, float], after: dict[str, float], lock_before: str, lock_after: str,
            tolerance: float) -> None:
    """Print the metrics side by side, then which outputs are byte-identical."""
    print(f"\n{'metric':70s} {'before':>10s} {'after':>10s} {'|diff|':>9s}")
    worst, within, exact = ("", 0.0), 0, 0
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        diff = abs(a - b) if a is not None and b is not None else float("inf")
        worst = max(worst, (key, diff), key=lambda kv: kv[1])
        within += diff <= tolerance
        exact += diff == 0
        print(f"{key:70s} {a if a is not None else '-':>10} {b if b is not None else '-':>10} {diff:9.2e}")
    total = len(before.keys() | after.keys())
    print(f"\nmetrics: {within} of {total} within {tolerance:g} ({exact} exactly equal); largest difference "
          f"{worst[1]:.2e} ({worst[0] or 'none'})")
    hashes_before, hashes_after = output_hashes(lock_before), output_hashes(lock_after)
    same = sorted(p for p in hashes_before if hashes_before[p] == hashes_after.get(p))
    different = sorted(p for p in hashes_before if hashes_before[p] != hashes_after.get(p))
    print(f"bytes: outputs byte-identical: {len(same)} of {len(hashes_before)}")
    for path in different:
        print(f"  differs: {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clone", default=str(ROOT.parent / "reproduction-check"))
    parser.add_argument("--keep", action="store_true", help="keep the clone afterwards")
    parser.add_argument("--tolerance", type=float, default=1e-6, help="metrics this close count as reproduced")
    parser.add_argument("--revs", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two commits' recorded runs")
    args = parser.parse_args(argv)
    if args.revs:
        before, after = args.revs
        compare(metrics_of(lambda name: git_show(before, name)), metrics_of(lambda name: git_show(after, name)),
                git_show(before, "dvc.lock"), git_show(after, "dvc.lock"), args.tolerance)
        return 0
    clone = Path(args.clone).resolve()
    if clone.exists():
        shutil.rmtree(clone)
    started = time.perf_counter()
    run(["git", "clone", "-q", str(ROOT), str(clone)], ROOT)
    dvc = [sys.executable, "-m", "dvc"]
    run(dvc + ["pull", "-q", "data/sample/listennotes-dec2017.dvc"], clone)
    run(dvc + ["repro"], clone)
    minutes = (time.perf_counter() - started) / 60

    compare(metrics_of(lambda name: git_show("HEAD", name)), metrics_of(lambda name: (clone / name).read_text()),
            git_show("HEAD", "dvc.lock"), (clone / "dvc.lock").read_text(), args.tolerance)
    print(f"fresh clone + dvc repro took {minutes:.1f} min")
    if not args.keep:
        shutil.rmtree(clone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
