"""rliable computes the intervals: the wrapper's determinism, its RNG hygiene, and that
the benchmark's CIs are rliable's own numbers."""

from __future__ import annotations

import numpy as np
import pytest
from rliable import library as rly
from scipy import stats as sps

from robosf_assets.benchmark.efficiency import ThresholdResult, efficiency_ratio
from robosf_assets.benchmark.intervals import interval_estimate, seeded_global_rng
from robosf_assets.benchmark.stats import bootstrap_ci, iqm


def test_iqm_equals_scipy_trim_mean_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    for n in range(1, 25):
        x = rng.normal(size=n)
        assert iqm(x) == float(sps.trim_mean(x, 0.25))
        y = rng.normal(size=(3, n))
        assert np.array_equal(iqm(y, axis=-1), sps.trim_mean(y, 0.25, axis=-1))


def test_bootstrap_ci_is_rliables_percentile_interval() -> None:
    x = np.random.default_rng(3).normal(size=12)
    with seeded_global_rng(5):
        _, ci = rly.get_interval_estimates(
            {"x": [x[:, None]]}, lambda a: np.array([np.mean(a[:, 0])]), reps=300
        )
    assert bootstrap_ci(x, n_resamples=300, seed=5) == (float(ci["x"][0, 0]),
                                                         float(ci["x"][1, 0]))


def test_ratio_ci_is_rliables_stratified_independent_bootstrap() -> None:
    ft = [ThresholdResult(steps=s, censored=False) for s in (100, 200, 150, 120, 300)]
    bl = [ThresholdResult(steps=s, censored=False) for s in (400, 500, 450, 420)]
    bl.append(ThresholdResult(steps=None, censored=True, censored_at=600))  # enters at 600
    a = np.array([[100.0], [200], [150], [120], [300]])
    b = np.array([[400.0], [500], [450], [420], [600]])

    def ratio(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.array([sps.trim_mean(x, 0.25, axis=None) / sps.trim_mean(y, 0.25, axis=None)])

    with seeded_global_rng(2):
        point, ci = rly.get_interval_estimates({"r": [a, b]}, ratio, reps=400)
    res = efficiency_ratio(ft, bl, n_resamples=400, seed=2)
    assert res.point == pytest.approx(float(point["r"][0]))
    assert (res.ci_low, res.ci_high) == pytest.approx((ci["r"][0, 0], ci["r"][1, 0]))
    assert res.bound == "upper"


def test_interval_estimate_deterministic_and_leaves_global_rng_alone() -> None:
    x = np.random.default_rng(1).uniform(size=(20, 1))
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    first = interval_estimate([x], lambda a: np.array([a.mean()]), n_resamples=200, seed=9)
    assert np.random.random() == expected_next  # the caller's global stream is untouched
    again = interval_estimate([x], lambda a: np.array([a.mean()]), n_resamples=200, seed=9)
    other = interval_estimate([x], lambda a: np.array([a.mean()]), n_resamples=200, seed=10)
    assert all(np.array_equal(u, v) for u, v in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])
    low, high = first[1][0], first[2][0]
    assert low < first[0][0] < high


def test_interval_estimate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="n_resamples"):
        interval_estimate([np.ones((3, 1))], np.mean, n_resamples=0)
    with pytest.raises(ValueError, match="num_runs"):
        interval_estimate([np.ones(3)], np.mean, n_resamples=10)
