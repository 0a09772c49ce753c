"""DVC stage `split`: data/pairs/pairs.parquet + the prepared episodes -> data/splits/{train,eval,test}.parquet and
stats/split.json (counts). Whole episodes go to one split; every prepared episode is assigned, with or without pairs."""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from podsearch.data import DataError, load_prepared  # noqa: E402
from podsearch.params import load_params, setup_logging, write_json  # noqa: E402
from podsearch.split import SplitConfig, SplitError, split_pairs  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", default="data/pairs/pairs.parquet")
    parser.add_argument("--episodes", default="data/prepared/episodes.parquet")
    parser.add_argument("--out-dir", default="data/splits")
    parser.add_argument("--stats", default="stats/split.json")
    args = parser.parse_args(argv)
    log = setup_logging("split")

    config = SplitConfig.from_params(load_params("split"))
    if not Path(args.pairs).exists():
        raise SystemExit(f"{args.pairs}: not found; run the generate_queries stage first")
    pairs = pd.read_parquet(args.pairs)
    try:
        episode_ids = load_prepared(args.episodes)["episode_id"].tolist()
        frames, stats = split_pairs(pairs, config, episode_ids)
    except DataError as error:
        raise SystemExit(f"split: {error}") from None
    except SplitError as error:
        raise SystemExit(f"{args.pairs}: {error}") from None

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
        log.info("%s: %d pairs over %d episodes -> %s", name, len(frame), frame["episode_id"].nunique(),
                 out_dir / f"{name}.parquet")
    write_json(stats, args.stats)
    log.info("counts -> %s", args.stats)


if __name__ == "__main__":
    main()
