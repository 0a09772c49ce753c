"""How the pipeline scales from the 5,633-episode sample to the Kaggle dataset's 873,820 episodes (issue 13).

For each size, Kaggle-shaped inputs are made from the real sample (podsearch/scale_inputs.py), then every step runs the
library code the stages call, each in a process of its own so that its peak memory (ru_maxrss) is its own:

    prepare     podsearch.data load_raw + prepare_episodes (params.yaml prepare), parquet written
    querygen    podsearch.querygen generate_pairs, mix {pseudo: 3}, the other querygen params as in params.yaml
    split       podsearch.split split_pairs over every prepared episode, three parquets written
    bm25        podsearch.retrieval BM25Index over every prepared episode, built and saved
    exact       make_index("exact") over the corpus vectors, built and saved; latency of one query
    hnsw        make_index("hnsw") as evaluate builds it: M evaluate.hnsw_m, efSearch evaluate.hnsw_ef_search,
                efConstruction 200 (the default); built, saved; latency; recall@10 against exact
    hnsw_fast   the same index with efConstruction 80 and efSearch 256: about a third of the build time for a little
                less recall (both against exact at every size: bench/results/scale.md, read in docs/scale.md)
    evaluate    podsearch.evaluation Runner: 300 synthetic test queries, BM25 + fine-tuned + hybrid, whole corpus

`inputs` (writing the CSVs) and `vectors` (the corpus vectors) are the benchmark's own set-up, timed apart.

Corpus vectors: the fine-tuned model's real vectors of the sample (data/embeddings/finetuned.npy), tiled to the
corpus size with seeded Gaussian noise (sd 0.035 per dimension) and re-normalised: a copy's cosine to its source is
then 0.82, the median cosine between a real episode and its nearest real neighbour. Every source has ~155 such
copies at full size, a more clustered set than real episodes, so HNSW recall here is if anything pessimistic.
Latency and recall queries are the curated queries (typed by a person) encoded by the same model; latency is one
query per search call, as `search` does. Encoding the corpus itself is measured apart (--encode): the real encoder
on 1,000 real episodes, extrapolated.

    nice -n 19 python -m bench.bench_scale                      # every size: ~2 h on the busy 2-core CPU
    nice -n 19 python -m bench.bench_scale --sizes 1 10         # multiples of the sample; `full` = 873,820
    nice -n 19 python -m bench.bench_scale --encode             # encoder cost per 1,000 episodes
    python -m bench.bench_scale --report                        # table, CSV and plot from the recorded results

Writes bench/results/scale.{md,csv,png} (podsearch/scale_report.py; the CSV is a DVC plot, see dvc.yaml) and keeps
each step's raw record in bench/results/scale.json, merged per size, so a size or a step can be rerun alone.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from podsearch.scale_study import FULL_EPISODES, SAMPLE_EPISODES, STEPS

ROOT = Path(__file__).resolve().parents[1]

HNSW_FAST = {"ef_construction": 80, "ef_search": 256}
NOISE_SD = 0.035
LATENCY_QUERIES = 50
EVAL_QUERIES = 300
SEED = 0
# The checkout whose data/ and models/ hold the sample, the real vectors and the fine-tuned model: this one, or
# --artifacts (e.g. the main checkout when benchmarking code from a git worktree that has no outputs).
ARTIFACTS = ROOT
RESULTS = ROOT / "bench" / "results"


def _artifact(relative: str) -> Path:
    return ARTIFACTS / relative


def size_label(episodes: int) -> str:
    return "full" if episodes == FULL_EPISODES else f"{episodes // SAMPLE_EPISODES}x"


# ------------------------------------------------------------------------------------------------ steps (in a child)


def step_inputs(work: Path, episodes: int) -> dict:
    import pandas as pd

    from podsearch.scale_inputs import write_scaled

    write_scaled(_artifact("data/sample/listennotes-dec2017"), work / "raw", episodes, seed=SEED)
    frame = pd.read_csv(work / "raw" / "episodes.csv", dtype=str, keep_default_na=False)
    description = frame["description"]
    return {"shares": {"empty_description": round(float((description.str.strip() == "").mean()), 3),
                       "markup_description": round(float(description.str.contains("[<&]").mean()), 3),
                       "distinct_description": round(description.nunique() / len(frame), 3),
                       "distinct_title": round(frame["title"].nunique() / len(frame), 3)}}


def step_vectors(work: Path, episodes: int) -> dict:
    """Unit vectors for the prepared episodes: the sample's real vectors, tiled, with seeded noise (docstring)."""
    import pandas as pd

    from podsearch.embeddings import normalize

    n = len(pd.read_parquet(work / "prepared.parquet", columns=["episode_id"]))
    real = np.load(_artifact("data/embeddings/finetuned.npy"))
    rng = np.random.default_rng(SEED)
    out = np.lib.format.open_memmap(work / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, real.shape[1]))
    for start in range(0, n, len(real)):  # a block at a time: no whole-size float64 or temporaries
        block = real[: min(len(real), n - start)] + rng.standard_normal((min(len(real), n - start), real.shape[1]),
                                                                         dtype=np.float32) * NOISE_SD
        out[start:start + len(block)] = normalize(block)
    out.flush()
    return {"vectors": n}


def step_prepare(work: Path, episodes: int) -> dict:
    from podsearch.data import load_raw, prepare_episodes, save_prepared
    from podsearch.params import load_params

    params = load_params("prepare")
    podcasts, raw = load_raw(work / "raw" / "podcasts.csv", work / "raw" / "episodes.csv")
    frame, report = prepare_episodes(podcasts, raw, seed=params["seed"], max_episodes=params.get("max_episodes"),
                                     languages=params.get("languages") or None)
    save_prepared(frame, work / "prepared.parquet")
    return {"episodes_out": report.episodes_out, "dropped": report.dropped}


def step_querygen(work: Path, episodes: int) -> dict:
    from podsearch.data import load_prepared
    from podsearch.params import load_params
    from podsearch.querygen import generate_pairs

    params = dict(load_params("querygen"), mix={"pseudo": 3})
    shutil.rmtree(work / "shards", ignore_errors=True)  # measure generation, never a resumed run
    pairs, stats, _ = generate_pairs(load_prepared(work / "prepared.parquet"), params, work / "shards")
    pairs.to_parquet(work / "pairs.parquet", index=False)
    return {"pairs": stats["pairs"]}


def step_split(work: Path, episodes: int) -> dict:
    import pandas as pd

    from podsearch.data import load_prepared
    from podsearch.params import load_params
    from podsearch.split import SplitConfig, split_pairs

    frames, stats = split_pairs(pd.read_parquet(work / "pairs.parquet"), SplitConfig.from_params(load_params("split")),
                                load_prepared(work / "prepared.parquet")["episode_id"].tolist())
    for name, frame in frames.items():
        frame.to_parquet(work / f"{name}.parquet", index=False)
    return {"test_pairs": stats["test_pairs"]}


def step_bm25(work: Path, episodes: int) -> dict:
    from podsearch.data import load_prepared
    from podsearch.retrieval import BM25Index

    prepared = load_prepared(work / "prepared.parquet")
    BM25Index(prepared["episode_id"].tolist(), prepared["text"].tolist()).save(work / "bm25")
    return {}


def _latency_ms(search, queries: np.ndarray) -> list[float]:
    out = []
    for query in queries[:LATENCY_QUERIES]:
        tick = time.perf_counter()
        search(query)
        out.append((time.perf_counter() - tick) * 1000)
    return out


def _percentiles(latencies: list[float], prefix: str = "") -> dict:
    return {f"{prefix}p50_ms": round(float(np.percentile(latencies, 50)), 3),
            f"{prefix}p95_ms": round(float(np.percentile(latencies, 95)), 3)}


def _vector_step(work: Path, kind: str, name: str, options: dict) -> dict:
    import faiss

    from podsearch.data import load_prepared
    from podsearch.retrieval import make_index

    ids = load_prepared(work / "prepared.parquet")["episode_id"].tolist()
    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    started = time.perf_counter()
    index = make_index(kind, vectors.shape[1], **options)
    index.add(ids, vectors)
    index.save(work / name)
    out = {"build_seconds": round(time.perf_counter() - started, 2), "options": options}
    queries = np.load(work.parent / "curated_query_vectors.npy")
    out.update(_percentiles(_latency_ms(lambda q: index.search(q, 10), queries)))
    if kind == "exact":
        # faiss's default is one OpenMP thread per core; on this busy machine a single query waits for the slowest.
        faiss.omp_set_num_threads(1)
        out.update(_percentiles(_latency_ms(lambda q: index.search(q, 10), queries), "one_thread_"))
    found = index.search(queries, 10)[1]
    if kind == "exact":
        (work / "exact_top10.json").write_text(json.dumps(found))
    else:
        exact = json.loads((work / "exact_top10.json").read_text())
        out["recall@10"] = round(float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(found, exact)])), 4)
    return out


def step_exact(work: Path, episodes: int) -> dict:
    return _vector_step(work, "exact", "exact", {})


def step_hnsw(work: Path, episodes: int) -> dict:
    from podsearch.params import load_params

    evaluate = load_params("evaluate")
    return _vector_step(work, "hnsw", "hnsw", {"m": evaluate["hnsw_m"], "ef_search": evaluate["hnsw_ef_search"]})


def step_hnsw_fast(work: Path, episodes: int) -> dict:
    from podsearch.params import load_params

    return _vector_step(work, "hnsw", "hnsw_fast", {"m": load_params("evaluate")["hnsw_m"], **HNSW_FAST})


def step_evaluate(work: Path, episodes: int) -> dict:
    import pandas as pd

    from podsearch.data import load_prepared
    from podsearch.encoders import load_encoder
    from podsearch.evaluation import Corpus, DenseModel, Runner, details, synthetic_queries
    from podsearch.params import load_params
    from podsearch.retrieval.fusion import load_fusions

    prepared = load_prepared(work / "prepared.parquet")
    ids = prepared["episode_id"].tolist()
    query_set = synthetic_queries(pd.read_parquet(work / "test.parquet"), set(ids))
    keep = np.zeros(len(query_set), dtype=bool)
    keep[np.random.default_rng(SEED).choice(len(query_set), min(EVAL_QUERIES, len(query_set)), replace=False)] = True
    query_set = query_set.subset("synthetic", keep.tolist())
    encoder = load_encoder("finetuned", str(_artifact("models/podcast-encoder")), max_seq_length=128)
    model = DenseModel(ids, np.load(work / "vectors.npy"), encoder)
    fusions = {"hybrid": load_fusions(load_params("fusion"))["hybrid"]}
    runner = Runner(index_kind="exact", depth=int(load_params("evaluate")["depth"]), fusions=fusions)
    runs = runner.run(["bm25", "finetuned", "hybrid"], {"finetuned": model},
                      Corpus(ids, prepared["text"].tolist()), query_set)
    return {"queries": len(query_set), "bm25_recall@10": details(runs, query_set)["bm25"]["recall@10"]}


def step_queries(work: Path, episodes: int) -> dict:
    """The curated queries encoded by the fine-tuned model, once for every size (set-up, not measured)."""
    from podsearch.curated import load_queries
    from podsearch.embeddings import encode_texts
    from podsearch.encoders import load_encoder

    queries = [q.query for q in load_queries(ROOT / "data" / "curated" / "queries.yaml", require_split=False)]
    encoder = load_encoder("finetuned", str(_artifact("models/podcast-encoder")), max_seq_length=128)
    np.save(work / "curated_query_vectors.npy", encode_texts(encoder, queries, 64, desc="curated queries"))
    return {"queries": len(queries)}


def step_encode(work: Path, episodes: int) -> dict:
    """Encoder cost on this CPU: the fine-tuned MiniLM (torch), batch 32, max_seq_length 128, 1,000 real episodes."""
    import torch

    from podsearch.data import load_prepared
    from podsearch.embeddings import encode_texts
    from podsearch.encoders import load_encoder

    texts = load_prepared(_artifact("data/prepared/episodes.parquet")).sample(1000, random_state=SEED)["text"].tolist()
    encoder = load_encoder("finetuned", str(_artifact("models/podcast-encoder")), max_seq_length=128)
    encode_texts(encoder, texts[:64], 32, desc="warm-up")
    started = time.perf_counter()
    encode_texts(encoder, texts, 32, desc="encode 1,000 episodes")
    return {"seconds_per_1000": round(time.perf_counter() - started, 2), "torch_threads": torch.get_num_threads()}


def run_step(step: str, work: Path, episodes: int) -> None:
    """Child side: run one step, print its record as the last stdout line."""
    os.chdir(ROOT)  # params.yaml is read from the repository root, as the stages do
    started = time.perf_counter()
    extra = globals()[f"step_{step}"](work, episodes)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"step": step, "seconds": round(seconds, 2), "peak_mb": round(peak_mb, 1), **extra}))


# ------------------------------------------------------------------------------------------------ driver


def spawn(step: str, work: Path, episodes: int = 0) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    # `-m` from this checkout's root: the child runs this checkout's bench and library, as the driver does.
    proc = subprocess.run([sys.executable, "-m", "bench.bench_scale", "--step", step, "--work", str(work),
                           "--episodes", str(episodes), "--artifacts", str(ARTIFACTS)],
                          cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "TQDM_DISABLE": "1"},
                          check=False)
    if proc.returncode:  # said here with the step's name rather than as CalledProcessError
        raise SystemExit(f"step {step} at {work} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_size(episodes: int, root: Path, steps: list[str]) -> dict:
    work = root / size_label(episodes)
    record = {"episodes": episodes, "steps": {}}
    if not (work / "raw" / "episodes.csv").exists():
        steps = ["inputs", *steps]
    if any(s in steps for s in ("exact", "hnsw", "hnsw_fast", "evaluate")) and not (work / "vectors.npy").exists():
        steps.insert(steps.index("prepare") + 1 if "prepare" in steps else 0, "vectors")
    if not (root / "curated_query_vectors.npy").exists():
        spawn("queries", root)
    for step in steps:
        record["steps"][step] = spawn(step, work, episodes)
        print(f"{size_label(episodes)} {step}: {json.dumps(record['steps'][step])}", flush=True)
    return record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["1", "10", "50", "full"],
                        help="multiples of the 5,633-episode sample, or `full` (873,820 episodes)")
    parser.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/podsearch-scale"), help="inputs and outputs per size")
    parser.add_argument("--record", type=Path, default=RESULTS / "scale.json", help="raw records, merged per size")
    parser.add_argument("--encode", action="store_true", help="measure the encoder per 1,000 episodes and stop")
    parser.add_argument("--report", action="store_true", help="only rebuild table, CSV and plot from the record")
    parser.add_argument("--artifacts", type=Path, default=ROOT,
                        help="checkout holding data/sample, data/embeddings/finetuned.npy and models/podcast-encoder "
                             "(default: this one)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--episodes", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global ARTIFACTS
    ARTIFACTS = args.artifacts.resolve()
    if args.step:
        return run_step(args.step, args.work, args.episodes)

    from podsearch.scale_report import load_record, write_report

    record = load_record(args.record)
    if args.encode:
        record["encode"] = spawn("encode", args.work)
    elif not args.report:
        for size in args.sizes:
            episodes = FULL_EPISODES if size == "full" else int(size) * SAMPLE_EPISODES
            done = run_size(episodes, args.work, list(args.steps))
            previous = record["sizes"].get(size_label(episodes), {"steps": {}})
            record["sizes"][size_label(episodes)] = {**done, "steps": {**previous["steps"], **done["steps"]}}
            args.record.write_text(json.dumps(record, indent=2) + "\n")
    args.record.parent.mkdir(parents=True, exist_ok=True)
    args.record.write_text(json.dumps(record, indent=2) + "\n")
    print(write_report(record, args.record.parent))


if __name__ == "__main__":
    main()
