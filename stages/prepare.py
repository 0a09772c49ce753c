"""Stage prepare: validate, join, clean, dedupe, shuffle -> data/prepared/episodes.parquet, and stats/prepare.json
(rows in, out, and dropped by reason). Params: prepare.*."""
import argparse
from pathlib import Path

from podsearch.artifacts import write_json
from podsearch.data import PrepareConfig, load_raw, prepare_episodes, save_prepared
from podsearch.errors import exit_on_error
from podsearch.params import load_params, setup_logging


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--out", default="data/prepared/episodes.parquet")
    parser.add_argument("--stats", default="stats/prepare.json")
    args = parser.parse_args(argv)
    log = setup_logging("prepare")
    with exit_on_error("prepare"):
        config = PrepareConfig.from_params(load_params("prepare"))
        podcasts, episodes = load_raw(Path(args.raw) / "podcasts.csv", Path(args.raw) / "episodes.csv")
        frame, report = prepare_episodes(
            podcasts,
            episodes,
            seed=config.seed,
            max_episodes=config.max_episodes,
            languages=config.languages or None,
        )
        save_prepared(frame, args.out)
        write_json(report.as_stats(), args.stats)
    log.info(
        "%d episodes in, %d out (dropped: %s); wrote %s and %s",
        report.episodes_in, report.episodes_out, report.dropped, args.out, args.stats,
    )


if __name__ == "__main__":
    main()
