"""Which query generator should be the default? Measure it: generate pairs for the same N train episodes with each
offline generator, fine-tune the base model on each set with the train stage's function and params, and score every
fine-tuned model (and the base model) on the curated queries over an index of ALL prepared episodes.

    python bench/compare_generators.py                     # N=160, pseudo vs instruct
    python bench/compare_generators.py -n 64 --generators pseudo,instruct --equal-pairs

Everything runs through the library: podsearch.querygen.generate_pairs (querygen params, method overridden; shards
under --work-dir so data/pairs is untouched), podsearch.training.train_encoder (train params, in-batch eval skipped),
podsearch.encoders/embeddings (embed params) and podsearch.evaluation.Runner/score (the evaluate stage's metrics).
The base model is scored from data/embeddings/base.npy, as the evaluate stage does.

Writes bench/results/compare_generators.{json,md} and prints the markdown table. The curated set is small (41
queries): MRR differences below ~0.02 are noise, so the per-query win/loss counts are printed next to the means.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from podsearch.data import DataError, load_prepared  # noqa: E402
from podsearch.embeddings import EmbeddingError, encode_texts, load_embeddings  # noqa: E402
from podsearch.encoders import load_encoder  # noqa: E402
from podsearch.evaluation import Corpus, DenseModel, EvaluationError, Runner, load_curated, score  # noqa: E402
from podsearch.metrics import reciprocal_rank_at_k  # noqa: E402
from podsearch.params import load_params, setup_logging, write_json  # noqa: E402
from podsearch.querygen import METHODS, QueryGenError, generate_pairs  # noqa: E402
from podsearch.training import (  # noqa: E402
    TrainConfig, TrainDataError, attach_documents, load_model, round_robin_subsample, train_encoder,
)

OFFLINE = ("pseudo", "instruct")  # doc2query needs a hub download
KS = (10, 30)
NOISE_MRR = 0.02  # ~ what one curated query moving a few ranks shifts MRR@30 by, with 41 queries


def sample_episodes(episodes: pd.DataFrame, train: pd.DataFrame, n: int) -> pd.DataFrame:
    """The prepared rows of the first `n` distinct episodes of the train split, in split order."""
    ids = train["episode_id"].astype(str).drop_duplicates().iloc[:n].tolist()
    if len(ids) < n:
        raise SystemExit(f"train split has only {len(ids)} episodes, fewer than -n {n}")
    rows = episodes.set_index("episode_id").loc[ids].reset_index()
    return rows.loc[:, episodes.columns]


def per_query_rr(rankings: list[list[str]], relevant: list[set[str]], k: int = 30) -> list[float]:
    return [reciprocal_rank_at_k(r, rel, k) for r, rel in zip(rankings, relevant)]


def wins(a: list[float], b: list[float]) -> dict[str, int]:
    """Per curated query: a better than b, tie, worse (reciprocal rank @30)."""
    return {"better": sum(x > y for x, y in zip(a, b)), "tie": sum(x == y for x, y in zip(a, b)),
            "worse": sum(x < y for x, y in zip(a, b))}


def markdown(report: dict) -> str:
    gens = report["generators"]
    lines = [
        f"Curated queries: {report['curated_queries']} over {report['index_episodes']} episodes (exact index). "
        f"Each generator: the same {report['sample_episodes']} train-split episodes, "
        f"{report['training']['note']}.",
        "",
        "| system | train pairs | gen episodes/s | rejected / candidates | train s | recall@10 | recall@30 | mrr@30 "
        "| ndcg@10 | RR@30 vs base (better/tie/worse) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, row in report["systems"].items():
        m = row["curated"]
        g = gens.get(row.get("generator"), {})
        vs = row.get("vs_base")
        lines.append(
            f"| {name} | {row.get('trained_pairs', '-')} | {g.get('episodes_per_second', '-')} | "
            + (f"{sum(g['rejected'].values())} / {g['candidates']}" if g else "-")
            + f" | {row.get('train_seconds', '-')} | {m['recall@10']:.3f} | {m['recall@30']:.3f} | "
            f"{m['mrr@30']:.3f} | {m['ndcg@10']:.3f} | "
            + (f"{vs['better']}/{vs['tie']}/{vs['worse']}" if vs else "-") + " |"
        )
    lines += ["", f"Winner (mrr@30, then ndcg@10): **{report['winner']}**. {report['verdict']}", ""]
    lines += ["Rejections by reason: " + "; ".join(
        f"{name}: " + ", ".join(f"{k} {v}" for k, v in g["rejected"].items())
        + f" (episodes with < {report['querygen']['queries_per_episode']} queries: {g['episodes_with_fewer_queries']})"
        for name, g in gens.items()), ""]
    lines += ["Example queries (same episodes):", ""]
    for ex in report["examples"]:
        lines.append(f"- *{ex['title']}* ({ex['show_title']})")
        for name, queries in ex["queries"].items():
            lines.append(f"  - {name}: " + " | ".join(f"`{q}`" for q in queries))
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--episodes-count", type=int, default=160, help="first N train-split episodes")
    parser.add_argument("--generators", default=",".join(OFFLINE), help=f"comma list from {','.join(METHODS)}")
    parser.add_argument("--equal-pairs", action="store_true",
                        help="train every generator on the same number of pairs (the smallest set, round-robin "
                             "subsampled as the train stage does); default: all kept pairs of each")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--examples", type=int, default=3, help="episodes shown with each generator's queries")
    parser.add_argument("--work-dir", default="/tmp/podsearch-compare-generators",
                        help="generation shards (resumed when params and episodes match) and fine-tuned models")
    parser.add_argument("--prepared", default="data/prepared/episodes.parquet")
    parser.add_argument("--train", default="data/splits/train.parquet")
    parser.add_argument("--curated", default="data/curated_queries.yaml")
    parser.add_argument("--base-embeddings", default="data/embeddings/base.npy")
    parser.add_argument("--out", default="bench/results/compare_generators.json")
    args = parser.parse_args(argv)
    log = setup_logging("compare_generators")
    torch.set_num_threads(min(args.threads, 2))
    started_all = time.perf_counter()

    generators = [g.strip() for g in args.generators.split(",") if g.strip()]
    unknown = [g for g in generators if g not in METHODS]
    if unknown or not generators:
        raise SystemExit(f"--generators: {unknown or 'none'}; expected some of {','.join(METHODS)}")
    params_path = ROOT / "params.yaml"
    qparams = load_params("querygen", params_path)
    config = TrainConfig.from_params(load_params("train", params_path))
    embed = load_params("embed", params_path)
    batch_size = int(load_params("evaluate", params_path)["batch_size"])
    work = Path(args.work_dir)

    for path, stage in ((args.prepared, "prepare"), (args.train, "split"), (args.base_embeddings, "embed_base")):
        if not Path(path).exists():
            raise SystemExit(f"{path}: not found; run the {stage} stage first")
    try:
        episodes = load_prepared(args.prepared)
        all_ids = episodes["episode_id"].tolist()
        sample = sample_episodes(episodes, pd.read_parquet(args.train), args.episodes_count)
        curated = load_curated(args.curated, set(all_ids))
        base_ids, base_matrix = load_embeddings(args.base_embeddings, expected_ids=all_ids)
    except (DataError, EvaluationError, EmbeddingError) as error:
        raise SystemExit(str(error)) from None
    corpus = Corpus(all_ids, episodes["text"].tolist())
    runner = Runner(index_kind="exact", depth=100, batch_size=batch_size)
    log.info("%d sample episodes; %d curated queries over %d episodes", len(sample), len(curated), len(all_ids))

    # 1. generate: same episodes, same querygen params, only the method differs
    gen_metrics, pairs_of = {}, {}
    for method in generators:
        params = copy.deepcopy(dict(qparams))
        params["method"] = method
        try:
            pairs, metrics = generate_pairs(sample, params, work / "shards" / method, source=f"{args.train} sample")
        except QueryGenError as error:
            raise SystemExit(f"{method}: {error}") from None
        keep = ("episodes", "pairs", "candidates", "rejected", "surplus_candidates", "episodes_with_fewer_queries",
                "episodes_without_queries", "queries_by_generator", "generation_seconds", "episodes_per_second",
                "queries_per_second", "model_load_seconds", "shards_reused")
        gen_metrics[method] = {k: metrics[k] for k in keep}
        pairs_of[method] = pairs
        log.info("%s: %d pairs, rejected %s, %.3f episodes/s (%.1fs + %.1fs load)", method, metrics["pairs"],
                 metrics["rejected"], metrics["episodes_per_second"] or 0, metrics["generation_seconds"],
                 metrics["model_load_seconds"])

    # 2. fine-tune each, as the train stage does (in-batch eval skipped: the curated score is what decides)
    n_pairs = min(len(p) for p in pairs_of.values()) if args.equal_pairs else None
    note = (f"{n_pairs} pairs each (round-robin subsample, seed {config.seed})" if n_pairs else
            "all kept pairs of each generator") + (
        f", one pass (epochs={config.epochs}, batch {config.batch_size}, lr {config.learning_rate}, "
        f"max_seq_length {config.max_seq_length}, seed {config.seed})")
    systems: dict[str, dict] = {}
    results: dict[str, dict] = {}
    base_encoder = load_encoder("base", config.base_model, max_seq_length=embed["max_seq_length"])
    results["base"] = runner.dense("base", DenseModel(base_ids, base_matrix, base_encoder), corpus, curated)
    systems["base"] = {"model": config.base_model}
    for method in generators:
        name = f"finetuned-{method}"
        try:
            train_pairs = attach_documents(pairs_of[method], episodes, source=f"{method} pairs")
            train_pairs = round_robin_subsample(train_pairs, n_pairs or config.max_train_pairs, config.seed)
        except TrainDataError as error:
            raise SystemExit(str(error)) from None
        model = load_model(config)
        out = work / "models" / method
        result = train_encoder(model, train_pairs, config, work / "checkpoints" / method)
        model.save(str(out), create_model_card=False)
        del model, result.model
        log.info("%s: %d pairs in %d steps, %.1fs, final loss %.4f -> %s", name, result.metrics["trained_pairs"],
                 result.metrics["steps"], result.metrics["train_seconds"], result.metrics["final_loss"], out)

        # 3. encode all episodes with it, exactly as embed_finetuned would, then the evaluate stage's dense search
        encoder = load_encoder("finetuned", str(out), max_seq_length=embed["max_seq_length"])
        started = time.perf_counter()
        matrix = encode_texts(encoder, corpus.texts, int(embed["batch_size"]), desc=f"embed {name}")
        encode_seconds = time.perf_counter() - started
        results[name] = runner.dense(name, DenseModel(all_ids, matrix, encoder), corpus, curated)
        systems[name] = {
            "generator": method, "model": str(out), "encode_seconds": round(encode_seconds, 1),
            **{k: result.metrics[k] for k in ("train_pairs", "trained_pairs", "steps", "train_seconds",
                                               "final_loss")},
        }
        del encoder, matrix

    # 4. score (the evaluate stage's metrics) and compare per query
    metrics, _ = score(results, curated, [1, 5, *KS])
    rr = {name: per_query_rr(res["rankings"], curated.relevant) for name, res in results.items()}
    for name, row in systems.items():
        row["curated"] = metrics[name]
        if name != "base":
            row["vs_base"] = wins(rr[name], rr["base"])
    tuned = [n for n in systems if n != "base"]
    ranked = sorted(tuned, key=lambda n: (metrics[n]["mrr@30"], metrics[n]["ndcg@10"]), reverse=True)
    winner = ranked[0].removeprefix("finetuned-")
    if len(ranked) > 1:
        margin = metrics[ranked[0]]["mrr@30"] - metrics[ranked[1]]["mrr@30"]
        head = wins(rr[ranked[0]], rr[ranked[1]])
        verdict = (f"{ranked[0]} vs {ranked[1]}: mrr@30 +{margin:.3f}, per query better/tie/worse "
                   f"{head['better']}/{head['tie']}/{head['worse']}; "
                   + ("within noise (< %.2f with %d queries)." % (NOISE_MRR, len(curated)) if margin < NOISE_MRR
                      else "larger than the ~%.2f noise level of %d queries." % (NOISE_MRR, len(curated))))
    else:
        verdict = "only one generator compared."

    examples = []
    for row in sample.head(args.examples).itertuples(index=False):
        examples.append({"episode_id": row.episode_id, "title": row.title, "show_title": row.show_title,
                         "queries": {m: p.loc[p["episode_id"] == row.episode_id, "query"].tolist()
                                     for m, p in pairs_of.items()}})
    report = {
        "sample_episodes": len(sample), "curated_queries": len(curated), "index_episodes": len(all_ids),
        "generators": gen_metrics, "systems": systems, "winner": winner, "verdict": verdict, "examples": examples,
        "querygen": {k: v for k, v in qparams.items()},
        "training": {"note": note, "equal_pairs": bool(n_pairs), "config": config.__dict__},
        "threads": torch.get_num_threads(), "total_seconds": round(time.perf_counter() - started_all, 1),
    }
    out_json = Path(args.out)
    write_json(report, out_json)
    out_md = out_json.with_suffix(".md")
    text = markdown(report)
    out_md.write_text(text)
    print(text)
    log.info("done in %.0fs -> %s, %s", report["total_seconds"], out_json, out_md)


if __name__ == "__main__":
    main()
