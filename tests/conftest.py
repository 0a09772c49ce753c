"""Shared fixtures: a small slice of the real embedded sample (41 episodes, 12 shows, HTML, empties, duplicates)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def sample_raw_dir(tmp_path) -> Path:
    """A folder laid out like data/raw/ (Kaggle file names) holding the fixture slice."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copyfile(FIXTURES / "mini_podcasts.csv", raw / "podcasts.csv")
    shutil.copyfile(FIXTURES / "mini_episodes.csv", raw / "episodes.csv")
    return raw


@pytest.fixture
def prepared_df(sample_raw_dir) -> pd.DataFrame:
    from podsearch.data import load_raw, prepare_episodes

    podcasts, episodes = load_raw(sample_raw_dir / "podcasts.csv", sample_raw_dir / "episodes.csv")
    frame, _ = prepare_episodes(podcasts, episodes, seed=0)
    return frame
