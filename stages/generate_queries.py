"""Stage generate_queries: synthetic (query, episode) pairs -> data/pairs/pairs.parquet (params: querygen.*).

Shards go to data/pairs/shards/ as they finish; rerunning after an interruption continues from the last one.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from podsearch.data import DataError, load_prepared  # noqa: E402
from podsearch.params import load_params, setup_logging, write_json  # noqa: E402
from podsearch.querygen import QueryGenError, generate_pairs  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--out", default="data/pairs/pairs.parquet")
    parser.add_argument("--shards", default="data/pairs/shards")
    parser.add_argument("--metrics", default="metrics/querygen.json")
    parser.add_argument("--limit", type=int, default=None, help="only the first N episodes (trials)")
    args = parser.parse_args(argv)
    log = setup_logging("generate_queries")
    params = load_params("querygen")
    try:
        episodes = load_prepared(args.episodes)
        if args.limit is not None:
            episodes = episodes.iloc[: args.limit]
        pairs, metrics = generate_pairs(episodes, params, args.shards, source=args.episodes)
    except (DataError, QueryGenError) as exc:
        sys.exit(f"generate_queries: {exc}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pairs.to_parquet(out, index=False)
    write_json(metrics, args.metrics)
    log.info(
        "%s: %d pairs for %d episodes (%d with fewer than %d queries; rejected %s) at %s episodes/s; wrote %s and %s",
        params["method"], metrics["pairs"], metrics["episodes"], metrics["episodes_with_fewer_queries"],
        params["queries_per_episode"], metrics["rejected"], metrics["episodes_per_second"], out, args.metrics,
    )


if __name__ == "__main__":
    main()
