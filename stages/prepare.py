"""Stage prepare: validate, join, clean, dedupe, shuffle -> data/prepared/episodes.parquet, and stats/prepare.json
(rows in, out, and dropped by reason). Params: prepare.*."""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from podsearch.data import DataError, load_raw, prepare_episodes, save_prepared  # noqa: E402
from podsearch.params import load_params, setup_logging, write_json  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", default="data/raw")
    parser.add_argument("--out", default="data/prepared/episodes.parquet")
    parser.add_argument("--stats", default="stats/prepare.json")
    args = parser.parse_args(argv)
    log = setup_logging("prepare")
    params = load_params("prepare")
    try:
        podcasts, episodes = load_raw(Path(args.raw) / "podcasts.csv", Path(args.raw) / "episodes.csv")
        frame, report = prepare_episodes(
            podcasts,
            episodes,
            seed=params["seed"],
            max_episodes=params.get("max_episodes"),
            languages=params.get("languages") or None,
        )
    except DataError as exc:
        sys.exit(f"prepare: {exc}")
    save_prepared(frame, args.out)
    write_json(report.as_stats(), args.stats)
    log.info(
        "%d episodes in, %d out (dropped: %s); wrote %s and %s",
        report.episodes_in, report.episodes_out, report.dropped, args.out, args.stats,
    )


if __name__ == "__main__":
    main()
