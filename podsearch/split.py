"""Train / eval / test split of the (query, episode) pairs, by episode.

Splitting by episode (not by pair) matters because every episode has several queries: a pair-level split would put
the same episode text in train and test, and the test score would then measure memorisation. The episodes split are
all prepared episodes, not only those that got a query: so every query generator (mix) trains and tests on the same
episodes, and comparisons between mixes compare generators, not splits.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from podsearch.config import from_section
from podsearch.errors import PodsearchError

SPLITS = ("train", "eval", "test")
REQUIRED_COLUMNS = ("query", "episode_id", "generator")


class SplitError(PodsearchError, ValueError):
    """Bad pairs input or fractions that cannot be honoured; the stage turns it into one line."""


@dataclass(frozen=True)
class SplitConfig:
    seed: int = 42
    test_fraction: float = 0.19
    eval_fraction: float = 0.01
    min_eval_episodes: int = 100

    @classmethod
    def from_params(cls, params: dict) -> "SplitConfig":
        return from_section(cls, params, "split")


def validate_pairs(pairs: pd.DataFrame, source: str = "pairs") -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in pairs.columns]
    if missing:
        raise SplitError(f"{source}: missing column(s) {missing}; expected at least {list(REQUIRED_COLUMNS)}")
    for column in ("query", "episode_id"):
        bad = pairs[column].isna() | (pairs[column].astype(str).str.strip() == "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise SplitError(f"{source}: row {row}, column '{column}': expected a non-empty string, got {pairs[column].iloc[row]!r}")
    not_str = ~pairs["episode_id"].map(lambda v: isinstance(v, str))
    if not_str.any():
        row = int(np.flatnonzero(not_str.to_numpy())[0])
        raise SplitError(f"{source}: row {row}, column 'episode_id': ids must be strings, got {pairs['episode_id'].iloc[row]!r}")


def split_sizes(n_episodes: int, config: SplitConfig) -> dict[str, int]:
    """Episodes per split. The eval floor exists because eval_fraction of the sample is a few dozen episodes, too
    few for the in-batch ranking score to mean anything (docs/pipeline.md#training-split-pseudolabel-and-train)."""
    if not (0 <= config.test_fraction < 1 and 0 <= config.eval_fraction < 1):
        raise SplitError(f"split fractions must be in [0, 1): test={config.test_fraction}, eval={config.eval_fraction}")
    n_test = int(round(config.test_fraction * n_episodes))
    n_eval = max(int(round(config.eval_fraction * n_episodes)), config.min_eval_episodes)
    n_train = n_episodes - n_test - n_eval
    if n_train < 1:
        raise SplitError(
            f"{n_episodes} episodes cannot hold test={n_test} + eval={n_eval} (min_eval_episodes="
            f"{config.min_eval_episodes}) and still leave a train split; lower the fractions or min_eval_episodes"
        )
    return {"train": n_train, "eval": n_eval, "test": n_test}


def assign_episodes(episode_ids, config: SplitConfig) -> dict[str, str]:
    """episode_id -> split name. Ids are sorted before the seeded permutation so the result depends only on the set
    of ids and the seed, not on the row order of the input."""
    unique = sorted(set(episode_ids))
    sizes = split_sizes(len(unique), config)
    order = np.random.default_rng(config.seed).permutation(len(unique))
    shuffled = [unique[i] for i in order]
    assignment: dict[str, str] = {}
    start = 0
    for name in ("eval", "test", "train"):
        for episode_id in shuffled[start:start + sizes[name]]:
            assignment[episode_id] = name
        start += sizes[name]
    return assignment


def split_pairs(pairs: pd.DataFrame, config: SplitConfig, episode_ids: list[str] | None = None,
                source: str = "pairs") -> tuple[dict[str, pd.DataFrame], dict]:
    """The pair rows of each split (input row order kept) and the counts recorded in stats/split.json.

    `episode_ids`: the episodes to split (the prepared ones); every pair's episode must be among them. Without it,
    the episodes that have pairs. `source` names the pairs file in error messages.
    """
    validate_pairs(pairs, source)
    if episode_ids is None:
        episode_ids = pairs["episode_id"].tolist()
    else:
        unknown = sorted(set(pairs["episode_id"]) - set(episode_ids))
        if unknown:
            raise SplitError(f"{source}: episode {unknown[0]} has pairs but is not a prepared episode ({len(unknown)} such); "
                             "rerun the pipeline from prepare")
    assignment = assign_episodes(episode_ids, config)
    labels = pairs["episode_id"].map(assignment)
    frames = {name: pairs[labels == name].reset_index(drop=True) for name in SPLITS}
    sizes = Counter(assignment.values())
    stats: dict = {"seed": config.seed, "episodes_total": len(assignment), "pairs_total": int(len(pairs))}
    for name, frame in frames.items():
        stats[f"{name}_episodes"] = sizes[name]
        stats[f"{name}_episodes_with_pairs"] = int(frame["episode_id"].nunique())
        stats[f"{name}_pairs"] = int(len(frame))
    return frames, stats
