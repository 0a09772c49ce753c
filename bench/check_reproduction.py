"""Reproduce the committed run in a fresh clone and show what came out the same.

Clones the repository at HEAD into a folder beside it (beside, so that `../shared/dvc-store`, the embedded sample's
remote, resolves as in the original), pulls the sample, runs `dvc repro`, then prints:
- every metric of metrics/*.json, committed vs reproduced, with the absolute difference, and the largest one;
- which DVC outputs in dvc.lock are byte-identical (same md5) and which are not.

    python bench/check_reproduction.py [--clone ../reproduction-check] [--keep]

A full run takes as long as `dvc repro` (7-12 minutes on a 2-core CPU). On the same machine every output is expected
to be identical; on another CPU the model weights and embeddings differ in the last bits (float kernels), so their
hashes change while the metrics agree to ~1e-6: this script measures how far.
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clone", default=str(ROOT.parent / "reproduction-check"))
    parser.add_argument("--keep", action="store_true", help="keep the clone afterwards")
    args = parser.parse_args(argv)
    clone = Path(args.clone).resolve()
    if clone.exists():
        shutil.rmtree(clone)
    started = time.perf_counter()
    run(["git", "clone", "-q", str(ROOT), str(clone)], ROOT)
    dvc = [sys.executable, "-m", "dvc"]
    run(dvc + ["pull", "-q", "data/sample/listennotes-dec2017.dvc"], clone)
    run(dvc + ["repro"], clone)
    minutes = (time.perf_counter() - started) / 60

    committed = metrics_of(lambda name: subprocess.run(["git", "show", f"HEAD:{name}"], cwd=ROOT, check=True,
                                                       capture_output=True, text=True).stdout)
    reproduced = metrics_of(lambda name: (clone / name).read_text())
    print(f"\n{'metric':70s} {'committed':>10s} {'reproduced':>10s} {'|diff|':>9s}")
    worst = ("", 0.0)
    for key in sorted(committed.keys() | reproduced.keys()):
        a, b = committed.get(key), reproduced.get(key)
        diff = abs(a - b) if a is not None and b is not None else float("inf")
        worst = max(worst, (key, diff), key=lambda kv: kv[1])
        print(f"{key:70s} {a if a is not None else '-':>10} {b if b is not None else '-':>10} {diff:9.2e}")
    print(f"\nlargest difference: {worst[1]:.2e} ({worst[0] or 'none'}) over {len(committed)} metrics")

    before = output_hashes(subprocess.run(["git", "show", "HEAD:dvc.lock"], cwd=ROOT, check=True,
                                          capture_output=True, text=True).stdout)
    after = output_hashes((clone / "dvc.lock").read_text())
    same = sorted(p for p in before if before[p] == after.get(p))
    different = sorted(p for p in before if before[p] != after.get(p))
    print(f"outputs byte-identical to the committed lock: {len(same)} of {len(before)}")
    for path in different:
        print(f"  differs: {path}")
    print(f"fresh clone + dvc repro took {minutes:.1f} min")
    if not args.keep:
        shutil.rmtree(clone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
