"""The scaled inputs of the scale bench (podsearch.scale_inputs): Kaggle-shaped (they load and prepare like the
sample) and seeded."""
import re

import pandas as pd

from podsearch.data import load_raw, prepare_episodes
from podsearch.scale_inputs import write_scaled

SIZE = 100  # the 41-episode fixture: two whole replicas and a partial third


def test_scaled_inputs_are_kaggle_shaped(sample_raw_dir, tmp_path):
    out = write_scaled(sample_raw_dir, tmp_path / "scaled", SIZE, seed=3)
    podcasts, episodes = load_raw(out / "podcasts.csv", out / "episodes.csv")  # ids unique, every show present
    sample = pd.read_csv(sample_raw_dir / "episodes.csv", dtype=str, keep_default_na=False)
    shows = pd.read_csv(sample_raw_dir / "podcasts.csv", dtype=str, keep_default_na=False)
    assert list(episodes.columns) == list(sample.columns) and list(podcasts.columns) == list(shows.columns)
    assert len(episodes) == SIZE and len(podcasts) == 3 * len(shows)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in [*episodes["uuid"], *podcasts["uuid"]])
    assert not set(episodes["uuid"]) & set(sample["uuid"])
    # Empty descriptions stay empty: the two whole replicas hold exactly twice the sample's.
    empty = (sample["description"].str.strip() == "").sum()
    assert (episodes["description"].iloc[: 2 * len(sample)].str.strip() == "").sum() == 2 * empty
    frame, report = prepare_episodes(podcasts, episodes, seed=0)
    assert report.episodes_out == len(frame) > 0.6 * SIZE


def test_scaled_inputs_are_seeded(sample_raw_dir, tmp_path):
    first = write_scaled(sample_raw_dir, tmp_path / "a", SIZE, seed=3)
    again = write_scaled(sample_raw_dir, tmp_path / "b", SIZE, seed=3)
    other = write_scaled(sample_raw_dir, tmp_path / "c", SIZE, seed=4)
    for name in ("podcasts.csv", "episodes.csv"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
        assert (first / name).read_bytes() != (other / name).read_bytes()
