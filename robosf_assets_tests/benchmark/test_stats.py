"""Tests for robosf_assets.benchmark.stats."""

import math

import numpy as np
import pytest

from robosf_assets.benchmark.stats import (
    aggregate_episode_metrics,
    bootstrap_ci,
    iqm,
    rate_with_ci,
    summarize,
    wilson_interval,
)


def test_summarize_known_array() -> None:
    out = summarize(np.arange(1, 101), n_resamples=200)
    assert out["mean"] == 50.5
    assert out["median"] == 50.5
    assert out["p95"] == pytest.approx(95.05)  # numpy linear: 95 + 0.05 * (96 - 95)
    assert out["n"] == 100
    assert out["ci_low"] < 50.5 < out["ci_high"]
    assert all(type(out[k]) is float for k in ("mean", "median", "p95", "ci_low", "ci_high"))


def test_iqm_known_arrays() -> None:
    assert iqm(np.arange(1, 9)) == 4.5  # mean of 3, 4, 5, 6
    assert iqm([0.0, 1.0, 2.0, 3.0, 1000.0, -1000.0, 1.5, 2.5]) == pytest.approx(1.75)
    rows = np.array([np.arange(1, 9), np.arange(1, 9) * 2.0])
    np.testing.assert_allclose(iqm(rows, axis=1), [4.5, 9.0])


def test_wilson_hand_computed() -> None:
    z = 1.959963984540054
    # 0 successes: upper bound is z^2 / (n + z^2).
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(z * z / (10 + z * z))
    # 8 / 10: the textbook (0.4902, 0.9433).
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0


def test_rate_with_ci_at_zero_and_one() -> None:
    zero = rate_with_ci([False] * 20)
    assert zero["mean"] == 0.0 and zero["count"] == 0 and zero["n"] == 20
    assert (zero["ci_low"], zero["ci_high"]) == (0.0, 0.0)
    assert zero["wilson_low"] == 0.0 and 0.1 < zero["wilson_high"] < 0.2
    one = rate_with_ci(np.ones(20, dtype=bool))
    assert one["mean"] == 1.0 and one["wilson_high"] == 1.0 and 0.8 < one["wilson_low"] < 0.9
    with pytest.raises(ValueError, match="0/1"):
        rate_with_ci([0, 1, 2])


def test_bootstrap_ci_deterministic_and_seed_sensitive() -> None:
    x = np.random.default_rng(1).normal(size=40)
    a = bootstrap_ci(x, n_resamples=500, seed=7)
    assert a == bootstrap_ci(x, n_resamples=500, seed=7)
    assert a != bootstrap_ci(x, n_resamples=500, seed=8)


def test_bootstrap_ci_single_value_and_bad_input() -> None:
    assert bootstrap_ci([3.5]) == (3.5, 3.5)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_ci([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap_ci([1.0, float("inf")])


def test_bootstrap_ci_accepts_statistic_without_axis() -> None:
    x = np.arange(20.0)
    vectorised = bootstrap_ci(x, statistic=np.median, n_resamples=300, seed=3)
    looped = bootstrap_ci(x, statistic=lambda v: float(np.median(v)), n_resamples=300, seed=3)
    assert vectorised == pytest.approx(looped)


def test_bootstrap_ci_coverage_normal_mean() -> None:
    trials, covered = 200, 0
    for seed in range(trials):
        sample = np.random.default_rng(1000 + seed).normal(0.0, 1.0, size=50)
        low, high = bootstrap_ci(sample, n_resamples=400, seed=seed)
        covered += low <= 0.0 <= high
    assert 0.90 <= covered / trials <= 0.99


def test_bootstrap_ci_coverage_iqm_uniform() -> None:
    # IQM of U(0, 1) is 0.5 by symmetry.
    trials, covered = 150, 0
    for seed in range(trials):
        sample = np.random.default_rng(5000 + seed).uniform(size=40)
        low, high = bootstrap_ci(sample, statistic=iqm, n_resamples=400, seed=seed)
        covered += low <= 0.5 <= high
    assert 0.88 <= covered / trials <= 0.99


def test_aggregate_episode_metrics() -> None:
    records = [
        {"success": True, "collision": False, "time_to_goal": 0.4, "path_length": 10.0},
        {"success": True, "collision": False, "time_to_goal": 0.6, "path_length": 12.0},
        {"success": False, "collision": True, "time_to_goal": None, "path_length": 3.0},
        {"success": False, "collision": False, "time_to_goal": float("nan"), "path_length": 20.0},
    ]
    out = aggregate_episode_metrics(records, seed=0)
    assert set(out) == {"success", "collision", "time_to_goal", "path_length"}
    assert out["success"]["mean"] == 0.5 and out["success"]["n"] == 4
    assert "wilson_low" in out["success"] and "median" not in out["success"]
    assert out["collision"]["count"] == 1
    assert out["time_to_goal"]["n"] == 2
    assert out["time_to_goal"]["mean"] == pytest.approx(0.5)
    assert out["path_length"]["median"] == 11.0 and out["path_length"]["n"] == 4


def test_aggregate_boolean_key_stored_as_numbers_is_a_rate() -> None:
    out = aggregate_episode_metrics([{"timeout": 1}, {"timeout": 0}], metric_keys=["timeout"])
    assert out["timeout"]["mean"] == 0.5 and "wilson_high" in out["timeout"]


def test_aggregate_all_missing_and_unknown_key() -> None:
    out = aggregate_episode_metrics([{"jerk": None}, {"jerk": None}])
    assert out["jerk"]["n"] == 0 and math.isnan(out["jerk"]["mean"])
    with pytest.raises(KeyError, match="nope"):
        aggregate_episode_metrics([{"jerk": 1.0}], metric_keys=["nope"])
    with pytest.raises(ValueError, match="path_length"):
        aggregate_episode_metrics([{"path_length": "far"}])
