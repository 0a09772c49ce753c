"""Uncertainty of retrieval metrics: bootstrap confidence intervals and paired significance tests over queries.

A metric averaged over n queries moves by up to 1/n when one query moves one rank, and a curated query set holds
about a hundred (docs/evaluation.md), so a difference between two systems means something only against the spread
over queries. Both procedures resample the per-query values (`podsearch.metrics.per_query`) with a fixed seed, so the
same rankings always give the same numbers.

They are written out in numpy rather than called through scipy.stats.bootstrap / permutation_test because the
evaluate stage runs dozens of them, each over thousands of synthetic queries, and scipy's general versions took
far longer for that (docs/evaluation.md#uncertainty). `tests/test_stats.py` checks both against scipy on the same
samples.
"""
from __future__ import annotations

import numpy as np

N_RESAMPLES = 10_000
CONFIDENCE = 0.95
_BATCH = 1_000  # resamples per batch: bounds memory at batch x queries values


def bootstrap_ci(values: np.ndarray, seed: int, n_resamples: int = N_RESAMPLES,
                 confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over queries. Percentile rather than BCa: per-query recall is
    mostly 0 or 1 and BCa's acceleration is unstable on such samples."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"bootstrap_ci: need a non-empty 1-d sample, got shape {values.shape}")
    if np.ptp(values) == 0:  # every query scored the same: there is no spread to resample
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = np.concatenate([
        values[rng.integers(0, values.size, size=(min(_BATCH, n_resamples - start), values.size))].mean(axis=1)
        for start in range(0, n_resamples, _BATCH)])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_randomization_test(a: np.ndarray, b: np.ndarray, seed: int, n_resamples: int = N_RESAMPLES) -> float:
    """Two-sided p-value of mean(a - b) under the null that each query's two values are exchangeable: the sign of
    every per-query difference is flipped at random (the paired randomization test used in TREC evaluations).

    Queries where both systems score the same contribute nothing under any flip, so only the others are resampled.
    p = (1 + resamples at least as extreme as observed) / (1 + resamples), never 0.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired_randomization_test: need two equal-length 1-d samples, got {a.shape} and {b.shape}")
    differences = (a - b)[a != b]
    if differences.size == 0:
        return 1.0
    observed = abs(differences.sum())
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, n_resamples, _BATCH):
        signs = rng.integers(0, 2, size=(min(_BATCH, n_resamples - start), differences.size), dtype=np.int8) * 2 - 1
        # A tolerance, because sums of the same values in another order differ in the last bits.
        extreme += int(np.sum(np.abs(signs @ differences) >= observed - 1e-9))
    return (1 + extreme) / (1 + n_resamples)


def auc_interval(y: np.ndarray, scores: np.ndarray, n_resamples: int = 2_000,
                 confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """ROC AUC of `scores` as a detector of the 1s in the 0/1 labels `y`, with a percentile bootstrap interval over
    the items (each resample draws (label, score) pairs together; seeded, so the same inputs give the same interval).

    Returns (AUC, low, high). Through scipy and scikit-learn: a detector study scores a few detectors once, so their
    speed does not matter here as it does above, and they are imported only when called.
    """
    from scipy.stats import bootstrap
    from sklearn.metrics import roc_auc_score

    interval = bootstrap((y, scores), roc_auc_score, paired=True, vectorized=False, n_resamples=n_resamples,
                         confidence_level=confidence, method="percentile", random_state=0).confidence_interval
    return roc_auc_score(y, scores), interval.low, interval.high
