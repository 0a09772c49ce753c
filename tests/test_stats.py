"""Bootstrap CIs and the paired randomization test: against scipy's implementations on the same samples, and the
properties the evaluation relies on (seeded, symmetric, degenerate samples)."""
import numpy as np
import pytest
from scipy import stats

from podsearch.stats import auc_interval, bootstrap_ci, paired_randomization_test


def _binary(rng, p, n):
    return (rng.random(n) < p).astype(float)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bootstrap_ci_matches_scipy_percentile_bootstrap(seed):
    rng = np.random.default_rng(seed)
    values = np.concatenate([_binary(rng, 0.7, 80), rng.random(40)])  # recall-like and MRR-like values
    low, high = bootstrap_ci(values, seed=seed)
    reference = stats.bootstrap((values,), np.mean, n_resamples=10_000, method="percentile",
                                random_state=np.random.default_rng(seed + 100)).confidence_interval
    # Different random draws: the two intervals agree to Monte Carlo error (~0.005 on this sample).
    assert low == pytest.approx(reference.low, abs=0.015) and high == pytest.approx(reference.high, abs=0.015)
    assert low < values.mean() < high


@pytest.mark.parametrize("seed,shift", [(0, 0.0), (1, 0.15), (2, 0.3)])
def test_randomization_test_matches_scipy_paired_permutation_test(seed, shift):
    rng = np.random.default_rng(seed)
    a = _binary(rng, 0.5, 120)
    b = np.where(rng.random(120) < shift, 1.0, a)  # b improves some of a's misses
    ours = paired_randomization_test(b, a, seed=seed)
    reference = stats.permutation_test((b, a), lambda x, y, axis: np.mean(x - y, axis=axis),
                                       permutation_type="samples", vectorized=True, n_resamples=10_000,
                                       random_state=np.random.default_rng(seed + 100)).pvalue
    assert ours == pytest.approx(reference, abs=0.02)


def test_clear_difference_is_significant_and_noise_is_not():
    rng = np.random.default_rng(7)
    base = rng.random(100)
    better = np.clip(base + 0.2, 0, 1)
    assert paired_randomization_test(better, base, seed=0) < 0.001
    noisy = base + rng.normal(0, 0.05, 100)
    assert paired_randomization_test(noisy, base, seed=0) > 0.05


def test_seeded_symmetric_and_degenerate():
    rng = np.random.default_rng(3)
    a, b = rng.random(50), rng.random(50)
    assert paired_randomization_test(a, b, seed=5) == paired_randomization_test(a, b, seed=5)
    assert paired_randomization_test(a, b, seed=5) == paired_randomization_test(b, a, seed=5)
    assert bootstrap_ci(a, seed=5) == bootstrap_ci(a, seed=5)
    assert paired_randomization_test(a, a.copy(), seed=0) == 1.0  # identical systems: no evidence at all
    assert bootstrap_ci(np.ones(20), seed=0) == (1.0, 1.0)
    assert 0 < paired_randomization_test(np.ones(3), np.zeros(3), seed=0) <= 1.0  # never exactly 0
    with pytest.raises(ValueError):
        paired_randomization_test(a, b[:10], seed=0)
    with pytest.raises(ValueError):
        bootstrap_ci(np.array([]), seed=0)


def test_auc_interval_is_mann_whitney_auc_with_a_seeded_interval_around_it():
    rng = np.random.default_rng(11)
    y = _binary(rng, 0.2, 300).astype(int)
    scores = rng.normal(size=300) + 0.8 * y  # a detector that ranks the 1s higher, imperfectly
    auc, low, high = auc_interval(y, scores)
    # AUC is the Mann-Whitney U of the 1s' scores against the 0s', over the number of (1, 0) pairs.
    u = stats.mannwhitneyu(scores[y == 1], scores[y == 0]).statistic
    assert auc == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()))
    assert low < auc < high and 0.5 < low
    assert auc_interval(y, scores) == (auc, low, high)
    assert auc_interval(y, -scores)[0] == pytest.approx(1 - auc)
