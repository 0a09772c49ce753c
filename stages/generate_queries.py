"""Stage generate_queries: synthetic (query, episode) pairs -> data/pairs/pairs.parquet (params: querygen.*, and
train.base_model for the keyword generator, which ranks phrases against the embed_base vectors; compute.engine,
compute.ray_address and compute.querygen.*: here or on a Ray cluster, the same output either way).

Shards go to data/pairs/shards/<generator>/ as they finish; rerunning after an interruption continues from the last
one. Counts go to stats/querygen.json; wall times to logs/generate_queries.json (not an output of record).
"""
import argparse

from podsearch.artifacts import write_json, write_parquet
from podsearch.compute import Compute
from podsearch.data import load_prepared
from podsearch.embeddings import load_embeddings
from podsearch.errors import exit_on_error
from podsearch.params import load_params, setup_logging
from podsearch.querygen import GenerationContext, generate_pairs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--vectors", default="data/embeddings/base.npy", help="episode vectors (embed_base)")
    parser.add_argument("--out", default="data/pairs/pairs.parquet")
    parser.add_argument("--shards", default="data/pairs/shards")
    parser.add_argument("--stats", default="stats/querygen.json")
    parser.add_argument("--timings", default="logs/generate_queries.json")
    parser.add_argument("--limit", type=int, default=None, help="only the first N episodes (trials)")
    args = parser.parse_args(argv)
    log = setup_logging("generate_queries")
    with exit_on_error("generate_queries"):
        params = load_params("querygen")
        compute = Compute.from_params(load_params("compute"), "querygen")
        episodes = load_prepared(args.episodes)
        context = GenerationContext()
        if int(params["mix"].get("keyword") or 0) > 0:
            ids, matrix = load_embeddings(args.vectors, expected_ids=episodes["episode_id"].tolist())
            context = GenerationContext(load_params("train")["base_model"], dict(zip(ids, matrix)))
        if args.limit is not None:
            episodes = episodes.iloc[: args.limit]
        pairs, stats, timings = generate_pairs(episodes, params, args.shards, context=context, source=args.episodes,
                                               compute=compute)
        write_parquet(pairs, args.out)
        write_json(stats, args.stats)
        write_json(timings, args.timings)
    for name, generator in stats["generators"].items():
        speed = timings[name]["episodes_per_second"]
        log.info("%s: %d pairs (%d episodes without one; rejected %s), %s", name, generator["pairs"],
                 generator["episodes_without_queries"], generator["rejected"],
                 f"{speed} episodes/s" if speed else "every shard reused from an earlier run")
    log.info("%d pairs for %d episodes, median %s words per query; wrote %s and %s", stats["pairs"],
             stats["episodes"], stats["query_words"].get("median"), args.out, args.stats)


if __name__ == "__main__":
    main()
