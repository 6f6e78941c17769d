"""Tests for robosf_assets.benchmark.efficiency."""

import math

import numpy as np
import pytest

from robosf_assets.benchmark.efficiency import (
    ThresholdResult,
    area_under_curve,
    curves_on_grid,
    efficiency_ratio,
    jumpstart,
    mean_curve_with_ci,
    time_to_threshold,
    value_at,
)

T = [0, 10, 20, 30, 40, 50, 60]


def test_threshold_reached() -> None:
    res = time_to_threshold(T, [0.1, 0.5, 0.95, 0.92, 0.9, 0.97, 1.0], target=0.9, k=3)
    assert res == ThresholdResult(steps=20, censored=False, censored_at=None, index=2)
    assert res.time == 20


def test_threshold_needs_k_consecutive() -> None:
    success = [0.1, 0.95, 0.5, 0.95, 0.95, 0.2, 0.95]
    assert time_to_threshold(T, success, k=1).steps == 10
    assert time_to_threshold(T, success, k=2).steps == 30
    assert time_to_threshold(T, success, k=3).censored  # every streak is cut by a dip


def test_threshold_dip_resets_the_run() -> None:
    success = [0.95, 0.95, 0.3, 0.95, 0.95, 0.95, 0.95]
    assert time_to_threshold(T, success, k=3).steps == 30


def test_threshold_collision_limit_blocks() -> None:
    success = [0.95] * 7
    collision = [0.2, 0.2, 0.01, 0.01, 0.10, 0.0, 0.0]
    assert time_to_threshold(T, success, collision=collision, k=3).censored
    assert time_to_threshold(T, success, collision=collision, k=2).steps == 20
    assert time_to_threshold(T, success, collision=collision, max_collision=0.2, k=3).steps == 0


def test_threshold_censored_and_unconfirmed_tail() -> None:
    res = time_to_threshold(T, [0.0, 0.1, 0.2, 0.3, 0.5, 0.95, 0.95], k=3)
    assert res.censored and res.steps is None and res.censored_at == 60 and res.time == 60
    with pytest.raises(ValueError, match="increasing"):
        time_to_threshold([0, 10, 10], [0.0, 0.0, 0.0])


def _reached(steps: int) -> ThresholdResult:
    return ThresholdResult(steps=steps, censored=False)


def test_ratio_constant_arms() -> None:
    res = efficiency_ratio([_reached(100_000)] * 5, [_reached(400_000)] * 5, n_resamples=300)
    assert res.point == 0.25 and (res.ci_low, res.ci_high) == (0.25, 0.25)
    assert res.n_finetuned == 5 and res.n_baseline == 5 and res.bound == "exact"


def test_ratio_median_and_ci_contains_point() -> None:
    ft = [_reached(s) for s in (80, 100, 120, 90, 110)]
    bl = [_reached(s) for s in (380, 400, 420, 390, 410)]
    res = efficiency_ratio(ft, bl, statistic="median", n_resamples=1000, seed=1)
    assert res.point == pytest.approx(100 / 400)
    assert res.ci_low < res.point < res.ci_high
    assert 80 / 420 <= res.ci_low and res.ci_high <= 120 / 380
    again = efficiency_ratio(ft, bl, statistic="median", n_resamples=1000, seed=1)
    assert (again.ci_low, again.ci_high) == (res.ci_low, res.ci_high)


def test_ratio_iqm_uses_trimmed_mean() -> None:
    ft = [_reached(s) for s in (10, 100, 100, 1000)]  # IQM = 100
    bl = [_reached(s) for s in (1, 200, 200, 9999)]  # IQM = 200
    assert efficiency_ratio(ft, bl, n_resamples=50).point == 0.5


def test_ratio_counts_censored_runs_at_their_censoring_time() -> None:
    bl = [_reached(400), ThresholdResult(steps=None, censored=True, censored_at=500)]
    res = efficiency_ratio([_reached(100)] * 2, bl, statistic="median", n_resamples=100)
    assert res.point == pytest.approx(100 / 450)
    assert res.any_censored_baseline and not res.any_censored_finetuned and res.bound == "upper"
    ft = [ThresholdResult(steps=None, censored=True, censored_at=50)]
    assert efficiency_ratio(ft, bl, n_resamples=10).bound == "indeterminate"


def test_ratio_rejects_zero_baseline() -> None:
    with pytest.raises(ValueError, match="step 0"):
        efficiency_ratio([_reached(10)], [_reached(0)])


def test_area_under_step_curve() -> None:
    assert area_under_curve([0, 100, 200], [0.0, 1.0, 1.0]) == pytest.approx(0.75)
    assert area_under_curve([0, 100, 200], [0.0, 1.0, 1.0], max_steps=400) == pytest.approx(
        0.875
    )  # extended: (50 + 100 + 200) / 400
    assert area_under_curve([0, 100, 200], [0.0, 1.0, 1.0], max_steps=50) == pytest.approx(
        0.25
    )  # truncated at 50 where the line is at 0.5
    assert area_under_curve([0], [0.4]) == 0.4


def test_jumpstart_and_value_at() -> None:
    assert jumpstart([0.3, 0.8]) == 0.3
    with pytest.raises(ValueError, match="step 10"):
        jumpstart([0.3, 0.8], timesteps=[10, 20])
    t, c = [0, 10, 20], [0.5, 0.2, 0.1]
    assert value_at(t, c, 15) == 0.2 and value_at(t, c, 20) == 0.1 and value_at(t, c, 99) == 0.1
    assert math.isnan(value_at([5, 10], [1.0, 2.0], 0))


def test_curves_on_grid_and_band() -> None:
    curves = [([0, 10], [0.0, 1.0]), ([5, 15], [0.5, 0.7])]
    grid = [0, 5, 10, 20]
    m = curves_on_grid(curves, grid)
    np.testing.assert_array_equal(m, [[0.0, 0.0, 1.0, 1.0], [np.nan, 0.5, 0.5, 0.7]])
    band = mean_curve_with_ci(curves, grid, n_resamples=200, seed=0)
    np.testing.assert_allclose(band.mean, [0.0, 0.25, 0.75, 0.85])
    np.testing.assert_array_equal(band.n_runs, [1, 2, 2, 2])
    assert band.ci_low[0] == band.ci_high[0] == 0.0
    assert band.ci_low[2] == 0.5 and band.ci_high[2] == 1.0
    assert np.all(band.ci_low <= band.mean) and np.all(band.mean <= band.ci_high)
