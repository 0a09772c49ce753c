"""Split stage: by episode, seeded, eval floor honoured, clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from podsearch.split import SplitConfig, SplitError, split_pairs, split_sizes

ROOT = Path(__file__).resolve().parents[1]


def _pairs(n_episodes: int, per_episode: int = 3) -> pd.DataFrame:
    rows = [
        {"query": f"query {k} for {i}", "episode_id": f"{i:032x}", "generator": "pseudo-title"}
        for i in range(n_episodes) for k in range(per_episode)
    ]
    return pd.DataFrame(rows)


def test_no_episode_in_two_splits_and_all_pairs_kept():
    pairs = _pairs(1000)
    frames, metrics = split_pairs(pairs, SplitConfig(seed=3, test_fraction=0.19, eval_fraction=0.01,
                                                     min_eval_episodes=100))
    ids = {name: set(frame["episode_id"]) for name, frame in frames.items()}
    assert not ids["train"] & ids["eval"] and not ids["train"] & ids["test"] and not ids["eval"] & ids["test"]
    assert sum(len(f) for f in frames.values()) == len(pairs) == metrics["pairs_total"]
    assert metrics["test_episodes"] == 190 and metrics["eval_episodes"] == 100  # floor beats 1% of 1000
    assert metrics["train_episodes"] == 710 and metrics["train_pairs"] == 2130
    assert all(frame["episode_id"].value_counts().eq(3).all() for frame in frames.values())
    assert list(frames["train"].columns) == list(pairs.columns)


def test_split_is_seeded_and_independent_of_row_order():
    pairs = _pairs(300)
    config = SplitConfig(seed=1, min_eval_episodes=10)
    first, _ = split_pairs(pairs, config)
    again, _ = split_pairs(pairs.sample(frac=1.0, random_state=0).reset_index(drop=True), config)
    other, _ = split_pairs(pairs, SplitConfig(seed=2, min_eval_episodes=10))
    for name in first:
        assert set(first[name]["episode_id"]) == set(again[name]["episode_id"])
    assert set(first["test"]["episode_id"]) != set(other["test"]["episode_id"])


def test_every_prepared_episode_is_split_whether_or_not_it_has_pairs():
    """Two query mixes give pairs for different episodes; the split must not move with them."""
    episode_ids = [f"{i:032x}" for i in range(300)]
    config = SplitConfig(seed=1, min_eval_episodes=10)
    some, stats = split_pairs(_pairs(300).iloc[: 3 * 250], config, episode_ids)  # 50 episodes have no pairs
    all_pairs, _ = split_pairs(_pairs(300), config, episode_ids)
    for name in some:
        assert set(some[name]["episode_id"]) <= set(all_pairs[name]["episode_id"])
    assert stats["episodes_total"] == 300 and stats["test_episodes"] == 57
    assert stats["test_episodes_with_pairs"] <= stats["test_episodes"]
    with pytest.raises(SplitError, match="has pairs but is not a prepared episode"):
        split_pairs(_pairs(300), config, episode_ids[:-1])


def test_eval_fraction_wins_over_floor_on_large_inputs():
    assert split_sizes(20000, SplitConfig(eval_fraction=0.01, min_eval_episodes=100))["eval"] == 200
    assert split_sizes(5000, SplitConfig(eval_fraction=0.01, min_eval_episodes=100))["eval"] == 100


def test_too_few_episodes_and_bad_input_are_clear_errors():
    with pytest.raises(SplitError, match="cannot hold"):
        split_pairs(_pairs(50), SplitConfig(min_eval_episodes=100))
    with pytest.raises(SplitError, match=r"missing column\(s\) \['generator'\]"):
        split_pairs(_pairs(5).drop(columns="generator"), SplitConfig(min_eval_episodes=1))
    bad = _pairs(5)
    bad.loc[4, "query"] = " "
    with pytest.raises(SplitError, match=r"row 4, column 'query'"):
        split_pairs(bad, SplitConfig(min_eval_episodes=1))


def test_split_stage_writes_parquets_and_stats(tmp_path, monkeypatch):
    import stages.split as stage
    from podsearch.data import PREPARED_COLUMNS

    pairs = _pairs(200)
    pairs["passage"] = "a chunk"  # optional generator column must travel through untouched
    pairs.to_parquet(tmp_path / "pairs.parquet")
    episodes = pd.DataFrame({c: "x" for c in PREPARED_COLUMNS}, index=range(200))
    episodes["episode_id"] = [f"{i:032x}" for i in range(200)]
    episodes.to_parquet(tmp_path / "episodes.parquet")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"split": {
        "seed": 42, "test_fraction": 0.19, "eval_fraction": 0.01, "min_eval_episodes": 20}}))
    monkeypatch.chdir(tmp_path)
    stage.main(["--pairs", "pairs.parquet", "--episodes", "episodes.parquet", "--out-dir", "splits", "--stats",
                "split.json"])
    metrics = json.loads(Path("split.json").read_text())
    assert (metrics["train_episodes"], metrics["eval_episodes"], metrics["test_episodes"]) == (142, 20, 38)
    for name in ("train", "eval", "test"):
        frame = pd.read_parquet(f"splits/{name}.parquet")
        assert len(frame) == metrics[f"{name}_pairs"] and "passage" in frame.columns

    with pytest.raises(SystemExit, match="missing.parquet: not found"):
        stage.main(["--pairs", "missing.parquet"])
