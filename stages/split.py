"""DVC stage `split`: data/pairs/pairs.parquet + the prepared episodes -> data/splits/{train,eval,test}.parquet and
stats/split.json (counts). Whole episodes go to one split; every prepared episode is assigned, with or without pairs."""
import argparse
from pathlib import Path

from podsearch.artifacts import read_parquet, write_json, writing
from podsearch.data import load_prepared
from podsearch.errors import exit_on_error, require
from podsearch.params import load_params, setup_logging
from podsearch.split import SplitConfig, split_pairs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", default="data/pairs/pairs.parquet")
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--out-dir", default="data/splits")
    parser.add_argument("--stats", default="stats/split.json")
    args = parser.parse_args(argv)
    log = setup_logging("split")

    with exit_on_error("split"):
        config = SplitConfig.from_params(load_params("split"))
        pairs = read_parquet(require(args.pairs, "generate_queries"))
        episode_ids = load_prepared(args.episodes)["episode_id"].tolist()
        frames, stats = split_pairs(pairs, config, episode_ids, source=args.pairs)
        # One folder, the DVC output, written whole: never this run's train beside the last run's test.
        with writing(args.out_dir, folder=True) as out_dir:
            for name, frame in frames.items():
                frame.to_parquet(out_dir / f"{name}.parquet", index=False)
        write_json(stats, args.stats)
    for name, frame in frames.items():
        log.info("%s: %d pairs over %d episodes -> %s", name, len(frame), frame["episode_id"].nunique(),
                 Path(args.out_dir) / f"{name}.parquet")
    log.info("counts -> %s", args.stats)


if __name__ == "__main__":
    main()
