"""Summary statistics with bootstrap confidence intervals for benchmark episodes.

Aggregation follows the Robot SF benchmark / SocNavBench convention (REFERENCE §4): each
per-episode metric is reported as mean, median and p95 with a 95% percentile-bootstrap CI
of the mean; boolean outcomes (success, collision, timeout) are reported as rates with
both a bootstrap CI and a Wilson score interval, which stays sensible at rates 0 and 1.
The interquartile mean follows rliable (Agarwal et al. 2021): ``trim_mean(x, 0.25)``.

The bootstrap intervals are rliable's (:mod:`robosf_assets.benchmark.intervals`);
everything is deterministic given ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from loguru import logger
from numpy.typing import ArrayLike
from scipy import stats as sps

from robosf_assets.benchmark.intervals import interval_estimate

# A statistic reduces a 1-D sample to a number (np.mean, np.median, iqm).
Statistic = Callable[..., Any]

DEFAULT_METRIC_KEYS: tuple[str, ...] = (
    "success",
    "collision",
    "collision_pedestrian",
    "collision_obstacle",
    "timeout",
    "steps",
    "time_to_goal",
    "path_length",
    "path_efficiency",
    "min_ped_distance",
    "near_misses",
    "comfort_exposure",
    "jerk",
)
"""Per-episode metrics summarised by :func:`aggregate_episode_metrics` by default."""

BOOLEAN_METRIC_KEYS: frozenset[str] = frozenset(
    {"success", "collision", "collision_pedestrian", "collision_obstacle", "timeout"}
)
"""Metrics always summarised as rates, even when stored as 0/1 numbers."""

def _finite_1d(values: ArrayLike, name: str = "values") -> np.ndarray:
    """Return ``values`` as a non-empty, finite, 1-D float array or raise ``ValueError``.

    :param values: numbers to check.
    :param name: what to call the input in error messages.
    :return: a 1-D float64 array.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError(f"{name} is empty: need at least one value")
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite value(s) (first at index "
            f"{int(np.argmax(bad))}); drop NaN/inf before computing statistics"
        )
    return x


def bootstrap_ci(
    values: ArrayLike,
    statistic: Statistic = np.mean,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic(values)``, by rliable
    (:func:`~robosf_assets.benchmark.intervals.interval_estimate`, one task).

    Deterministic given ``seed``. A single value gives the degenerate CI ``(v, v)``.

    :param values: finite 1-D sample; empty or non-finite input raises ``ValueError``.
    :param statistic: reducer of a 1-D sample (``np.mean``, ``np.median``, :func:`iqm`).
    :param n_resamples: number of bootstrap resamples.
    :param confidence: coverage in (0, 1).
    :param seed: seed for ``np.random.default_rng``.
    :return: ``(low, high)`` as Python floats.
    """
    x = _finite_1d(values)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if x.size == 1:
        v = float(statistic(x))
        return v, v

    def func(runs: np.ndarray) -> np.ndarray:
        return np.array([float(statistic(runs[:, 0]))])

    _, low, high = interval_estimate(
        [x[:, None]], func, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    return float(low[0]), float(high[0])


def iqm(values: ArrayLike, axis: int | None = None) -> Any:
    """Interquartile mean: mean of the middle 50% (rliable: ``trim_mean(x, 0.25)``).

    :param values: finite sample (1-D, or N-D with ``axis``).
    :param axis: axis to reduce; ``None`` reduces the flattened input.
    :return: a float for 1-D input, otherwise an array.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("values is empty: need at least one value for the IQM")
    if not np.isfinite(x).all():
        raise ValueError("values has non-finite entries; drop NaN/inf before the IQM")
    # scipy.stats.trim_mean(x, 0.25, axis)'s own steps (partition, then the mean of the
    # middle slice), without its ~1 ms per-call wrapper: the bootstrap calls this per replicate
    if axis is None:
        x, axis = x.reshape(-1), 0
    n = x.shape[axis]
    low = int(0.25 * n)
    part = np.partition(x, (low, n - low - 1), axis=axis)
    middle = [slice(None)] * part.ndim
    middle[axis] = slice(low, n - low)
    out = np.mean(part[tuple(middle)], axis=axis)
    return float(out) if np.ndim(out) == 0 else out


def summarize(
    values: ArrayLike, *, seed: int = 0, n_resamples: int = 2000
) -> dict[str, float | int]:
    """Mean, median, p95 and the 95% bootstrap CI of the mean.

    :param values: finite 1-D sample.
    :param seed: bootstrap seed.
    :param n_resamples: bootstrap resamples.
    :return: ``{"mean", "median", "p95", "ci_low", "ci_high", "n"}``; floats and an int.
    """
    x = _finite_1d(values)
    ci_low, ci_high = bootstrap_ci(x, np.mean, n_resamples, 0.95, seed)
    return {
        "mean": float(np.mean(x)),
        "median": float(np.median(x)),
        "p95": float(np.percentile(x, 95)),
        "ci_low": ci_low,
        "ci_high": ci_high,
        "n": int(x.size),
    }


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well behaved at 0 and 1).

    :param successes: number of positive outcomes.
    :param n: number of trials (> 0).
    :param confidence: coverage in (0, 1).
    :return: ``(low, high)`` clipped to ``[0, 1]``.
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got successes={successes}, n={n}")
    z = float(sps.norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return float(low), float(high)


def _as_flags(flags: ArrayLike) -> np.ndarray:
    """Validate boolean outcomes (bools or 0/1 numbers) and return them as floats.

    :param flags: outcomes.
    :return: 1-D float array of zeros and ones.
    """
    x = _finite_1d(flags, "flags")
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("flags must be booleans or 0/1 values")
    return x


def rate_with_ci(
    flags: ArrayLike, seed: int = 0, n_resamples: int = 2000, confidence: float = 0.95
) -> dict[str, float | int]:
    """Rate of boolean outcomes with a bootstrap CI and a Wilson score interval.

    Prefer the Wilson bounds for small ``n`` or rates near 0/1: the bootstrap CI of an
    all-False sample collapses to ``(0, 0)``.

    :param flags: per-episode booleans (or 0/1).
    :param seed: bootstrap seed.
    :param n_resamples: bootstrap resamples.
    :param confidence: coverage of both intervals.
    :return: ``{"mean", "ci_low", "ci_high", "wilson_low", "wilson_high", "count", "n"}``
        where ``mean`` is the rate and ``count`` the number of True outcomes.
    """
    x = _as_flags(flags)
    ci_low, ci_high = bootstrap_ci(x, np.mean, n_resamples, confidence, seed)
    count = int(x.sum())
    w_low, w_high = wilson_interval(count, x.size, confidence)
    return {
        "mean": float(x.mean()),
        "ci_low": ci_low,
        "ci_high": ci_high,
        "wilson_low": w_low,
        "wilson_high": w_high,
        "count": count,
        "n": int(x.size),
    }


def _metric_column(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[Any], bool]:
    """Values of ``key`` across records (``None`` for missing) and whether all are bools.

    :param records: episode records.
    :param key: metric name.
    :return: ``(values, all_bool)``; ``all_bool`` is False when no value is present.
    """
    column = [r.get(key) for r in records]
    present = [v for v in column if v is not None]
    all_bool = bool(present) and all(isinstance(v, bool | np.bool_) for v in present)
    return column, all_bool


def _empty_summary(is_rate: bool) -> dict[str, float | int]:
    """Summary for a metric with no finite value: NaN statistics and ``n = 0``.

    :param is_rate: whether the metric is a rate (adds Wilson keys).
    :return: summary dict with NaN floats.
    """
    if is_rate:
        keys = ("mean", "ci_low", "ci_high", "wilson_low", "wilson_high")
        return {**dict.fromkeys(keys, float("nan")), "count": 0, "n": 0}
    keys = ("mean", "median", "p95", "ci_low", "ci_high")
    return {**dict.fromkeys(keys, float("nan")), "n": 0}


def aggregate_episode_metrics(
    records: Sequence[Mapping[str, Any]],
    metric_keys: Iterable[str] | None = None,
    seed: int = 0,
) -> dict[str, dict[str, float | int]]:
    """Summarise each per-episode metric across episodes.

    Boolean metrics (all values bools, or the key in :data:`BOOLEAN_METRIC_KEYS`) go
    through :func:`rate_with_ci`; numeric ones through :func:`summarize`. Missing values,
    ``None`` (how NaN is stored in JSONL) and NaN/inf are skipped, so e.g. ``time_to_goal``
    is summarised over successful episodes only; ``n`` is the number of values used. A
    metric with no usable value gets NaN statistics and ``n = 0``.

    :param records: episode records (see :func:`robosf_assets.benchmark.episodes.episode_record`).
    :param metric_keys: metrics to summarise. ``None`` means :data:`DEFAULT_METRIC_KEYS`,
        silently skipping those no record has; an explicit key that no record has raises
        ``KeyError``.
    :param seed: bootstrap seed (same for every metric).
    :return: ``{metric: summary}``.
    """
    explicit = metric_keys is not None
    keys = list(metric_keys) if explicit else list(DEFAULT_METRIC_KEYS)
    out: dict[str, dict[str, float | int]] = {}
    for key in keys:
        if not any(key in r for r in records):
            if explicit:
                raise KeyError(f"metric {key!r} is in no episode record ({len(records)} records)")
            continue
        column, all_bool = _metric_column(records, key)
        is_rate = all_bool or key in BOOLEAN_METRIC_KEYS
        try:
            x = np.array([np.nan if v is None else v for v in column], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"metric {key!r} has non-numeric values: {err}") from err
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            logger.debug("metric {} has no finite value in {} records", key, len(records))
            out[key] = _empty_summary(is_rate)
        elif is_rate:
            out[key] = rate_with_ci(finite, seed=seed)
        else:
            out[key] = summarize(finite, seed=seed)
    return out
