"""Mean learning curves across runs with a bootstrap CI band (the report's success plot).

The band's intervals are rliable's: at each grid point the runs are resampled with
replacement (``StratifiedIndependentBootstrap`` with the grid points as its tasks, via
:func:`~robosf_assets.benchmark.intervals.interval_estimate`), so each point's interval is
the percentile CI of the mean over runs at that point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from robosf_assets.benchmark.curve_arrays import Curve, validate_curve
from robosf_assets.benchmark.intervals import interval_estimate

__all__ = ["CurveBand", "curves_on_grid", "mean_curve_with_ci"]


def curves_on_grid(curves: Sequence[Curve], grid: ArrayLike) -> np.ndarray:
    """Sample runs on a common step grid, carrying the last value forward.

    Grid points before a run's first evaluation are NaN; points after its last
    evaluation hold its last value.

    :param curves: ``(timesteps, values)`` per run.
    :param grid: query steps.
    :return: array of shape ``(n_runs, len(grid))``.
    """
    g = np.asarray(grid).reshape(-1)
    out = np.full((len(curves), g.size), np.nan)
    for row, (timesteps, values) in enumerate(curves):
        t, v = validate_curve(timesteps, values)
        idx = np.searchsorted(t, g, side="right") - 1
        valid = idx >= 0
        out[row, valid] = v[idx[valid]]
    return out


@dataclass(frozen=True)
class CurveBand:
    """Mean learning curve across runs with a bootstrap CI band.

    :param grid: grid steps.
    :param mean: mean over runs with data at each grid point (NaN where none has).
    :param ci_low: lower CI bound per grid point.
    :param ci_high: upper CI bound per grid point.
    :param n_runs: runs with data at each grid point.
    """

    grid: np.ndarray
    mean: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_runs: np.ndarray


def _nanmean_rows(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring mean and count along ``axis`` without empty-slice warnings.

    :param x: array with NaN for missing.
    :param axis: axis to reduce.
    :return: ``(mean, count)``; mean is NaN where count is 0.
    """
    present = ~np.isnan(x)
    count = present.sum(axis=axis)
    total = np.where(present, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), count


def mean_curve_with_ci(
    curves: Sequence[Curve],
    grid: ArrayLike,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> CurveBand:
    """Mean curve on ``grid`` with a percentile bootstrap CI over runs, for CI bands.

    rliable computes every point's interval: the runs with data at that point are
    resampled with replacement, independently per point (rliable's per-task
    stratification, with grid points as tasks), the way rliable draws its sample-efficiency
    curves. Points where only some runs have data (before a run's first evaluation) get
    their own bootstrap over those runs.

    :param curves: ``(timesteps, values)`` per run.
    :param grid: query steps.
    :param n_resamples: bootstrap replicates.
    :param confidence: CI coverage in (0, 1).
    :param seed: bootstrap seed (the same for every point).
    :return: the :class:`CurveBand`.
    """
    if len(curves) == 0:
        raise ValueError("need at least one run")
    g = np.asarray(grid).reshape(-1)
    m = curves_on_grid(curves, g)
    mean, count = _nanmean_rows(m, axis=0)
    low, high = np.full(g.size, np.nan), np.full(g.size, np.nan)

    def column_means(runs: np.ndarray) -> np.ndarray:
        return np.mean(runs, axis=0)

    full = np.flatnonzero(count == m.shape[0])
    groups = [(full, m[:, full])] if full.size else []
    for j in np.flatnonzero((count > 0) & (count < m.shape[0])):
        col = m[:, j]
        groups.append((np.array([j]), col[~np.isnan(col)][:, None]))
    for cols, runs in groups:
        _, lo, hi = interval_estimate(
            [runs], column_means, n_resamples=n_resamples, confidence=confidence, seed=seed
        )
        low[cols], high[cols] = lo, hi
    return CurveBand(grid=g, mean=mean, ci_low=low, ci_high=high, n_runs=count)
