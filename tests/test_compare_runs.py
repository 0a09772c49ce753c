"""bench/compare_runs.py: a side of several run files (training seeds) is scored per query as their mean."""
import numpy as np
import pandas as pd

from bench.compare_runs import mean_per_query, side


def _run_file(path, rankings: dict[str, list[str]]):
    rows = [{"system": "finetuned", "query_id": q, "episode_id": e, "rank": r + 1, "score": 1.0 - r / 10}
            for q, ranked in rankings.items() for r, e in enumerate(ranked)]
    pd.DataFrame(rows).to_parquet(path)
    return f"{path}:finetuned"


def test_several_runs_average_each_querys_metric(tmp_path):
    ids = ["q1", "q2"]
    relevant = [{"a"}, {"b"}]
    one = _run_file(tmp_path / "seed1.parquet", {"q1": ["a", "x"], "q2": ["x", "b"]})  # RR 1 and 1/2
    two = _run_file(tmp_path / "seed2.parquet", {"q1": ["x", "y", "a"], "q2": ["y", "z"]})  # RR 1/3 and 0
    keep = [True, True]
    assert np.allclose(mean_per_query(side(one, ids), keep, relevant, "mrr@30"), [1.0, 0.5])
    assert np.allclose(mean_per_query(side(f"{one},{two}", ids), keep, relevant, "mrr@30"), [2 / 3, 0.25])
    assert np.allclose(mean_per_query(side(f"{one},{two}", ids), [False, True], relevant[1:], "mrr@30"), [0.25])
    assert len(side(f"{tmp_path}/seed*.parquet:finetuned", ids)) == 2  # a glob takes every matching run file
