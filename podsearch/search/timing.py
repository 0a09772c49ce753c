"""Timing whole `search` commands, as a user types them: a fresh process each (interpreter, imports, index, the
system's encoders, one query, output). For the latency benchmark and for choosing the shipped system, which both
time systems the index may not serve yet: `with_fusions` adds them to a copy of the index."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

QUERIES = [
    "eat better during xmas holidays", "how to train for a marathon", "bitcoin bubble explained",
    "true crime murder mystery", "learn spanish for beginners", "history of the roman empire",
    "startup fundraising advice", "meditation for anxiety", "nba playoffs predictions", "christmas sermon",
]


def with_fusions(index_dir: str | Path, fusions: Mapping[str, Mapping[str, float]]) -> Path:
    """A copy of the index whose manifest also serves `fusions` (name -> score-fusion weights): every other entry is
    a link to the original, and the copy sits beside it, so the manifest's relative model paths still resolve.
    Remove it with shutil.rmtree when done."""
    index_dir = Path(index_dir)
    copy = index_dir.with_name(f".tmp-timing-{index_dir.name}")
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir()
    for entry in index_dir.iterdir():
        if entry.name != "manifest.json":
            (copy / entry.name).symlink_to(entry.resolve())
    manifest = json.loads((index_dir / "manifest.json").read_text())
    depth, rrf_k = next((f["depth"], f["rrf_k"]) for f in manifest["fusion"].values())
    for name, weights in fusions.items():
        manifest["fusion"][name] = {"method": "score", "weights": dict(weights), "rrf_k": rrf_k, "depth": depth}
        manifest["systems"].append(name)
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return copy


def command_seconds(index_dir: str | Path, systems: list[str], runs: int = 3, cwd: str | Path = ".",
                    queries: list[str] = QUERIES) -> dict[str, list[float]]:
    """Wall seconds of `runs` whole `search` commands per system, the systems alternating query by query (the machine
    is shared and noisy: each system meets the same moments)."""
    times: dict[str, list[float]] = {system: [] for system in systems}
    for query in [queries[i % len(queries)] for i in range(runs)]:
        for system in systems:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "podsearch.search.cli", query, "--index", str(index_dir),
                            "--system", system], cwd=cwd, check=True, capture_output=True)
            times[system].append(time.perf_counter() - started)
    return times
