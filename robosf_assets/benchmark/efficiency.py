"""Sample-efficiency statistics over learning curves (REFERENCE §5).

Conventions follow rliable (Agarwal et al., "Deep RL at the Edge of the Statistical
Precipice", NeurIPS 2021) and transfer-learning metrics from Taylor & Stone (JMLR 2009):
time to threshold, jumpstart, area under the curve, and an IQM/median ratio between arms
with a bootstrap CI by rliable (:mod:`.intervals`). Mean curves with CI bands are in
:mod:`.bands` (re-exported here).

A learning curve is two aligned 1-D arrays: ``timesteps`` (strictly increasing environment
steps at which the policy was evaluated) and a value per evaluation (success rate, and
optionally collision rate). Runs that never reach the threshold are right-censored; they
are kept, never dropped.

Two times to threshold: :func:`time_to_threshold` (the bar met by ``k`` consecutive
evaluations, the field's usual definition) and :func:`time_to_held_threshold` ("reached
and held": from that evaluation on, at least 90% of all evaluations meet the bar). The
first rewards a run that touches the bar and drifts off it; the second does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from robosf_assets.benchmark.bands import CurveBand, curves_on_grid, mean_curve_with_ci
from robosf_assets.benchmark.curve_arrays import Curve, validate_curve
from robosf_assets.benchmark.intervals import interval_estimate
from robosf_assets.benchmark.stats import iqm

__all__ = [
    "Curve",
    "CurveBand",
    "RatioResult",
    "RatioStatistic",
    "ThresholdResult",
    "area_under_curve",
    "bar_met_mask",
    "curves_on_grid",
    "efficiency_ratio",
    "jumpstart",
    "mean_curve_with_ci",
    "share_from",
    "time_to_held_threshold",
    "time_to_threshold",
    "validate_curve",
    "value_at",
]

RatioStatistic = Literal["iqm", "median"]


@dataclass(frozen=True)
class ThresholdResult:
    """Time to threshold of one run.

    :param steps: first evaluation step of the first run of ``k`` consecutive qualifying
        evaluations; ``None`` when censored.
    :param censored: True when the run never qualified within its evaluations.
    :param censored_at: last evaluated step when censored, else ``None``.
    :param index: evaluation index matching ``steps``, else ``None``.
    """

    steps: int | None
    censored: bool
    censored_at: int | None = None
    index: int | None = None

    def __post_init__(self) -> None:
        """Reject inconsistent results (censored without ``censored_at`` and the like)."""
        if self.censored and (self.steps is not None or self.censored_at is None):
            raise ValueError("a censored result needs steps=None and censored_at set")
        if not self.censored and self.steps is None:
            raise ValueError("an uncensored result needs steps")

    @property
    def time(self) -> int:
        """Steps used in ratios: ``steps``, or ``censored_at`` (a lower bound) if censored."""
        return self.censored_at if self.censored else self.steps  # type: ignore[return-value]


def time_to_threshold(
    timesteps: ArrayLike,
    success: ArrayLike,
    *,
    target: float = 0.9,
    collision: ArrayLike | None = None,
    max_collision: float = 0.05,
    k: int = 3,
) -> ThresholdResult:
    """First step at which success >= target (and collision <= max_collision) holds for k evals.

    A qualifying streak still running at the last evaluation but shorter than ``k`` is not
    confirmed, so the run is censored. NaN success or collision never qualifies.

    :param timesteps: evaluation steps.
    :param success: evaluated success rate per evaluation.
    :param target: success threshold (inclusive).
    :param collision: optional collision rate per evaluation.
    :param max_collision: collision ceiling (inclusive), used when ``collision`` is given.
    :param k: consecutive qualifying evaluations required (>= 1).
    :return: the :class:`ThresholdResult`.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    t, s = validate_curve(timesteps, success)
    ok = s >= target
    if collision is not None:
        _, c = validate_curve(t, collision)
        ok &= c <= max_collision
    if ok.size >= k:
        streaks = np.convolve(ok.astype(np.int64), np.ones(k, dtype=np.int64), mode="valid")
        hits = np.flatnonzero(streaks == k)
        if hits.size:
            i = int(hits[0])
            return ThresholdResult(steps=int(t[i]), censored=False, index=i)
    return ThresholdResult(steps=None, censored=True, censored_at=int(t[-1]))


def bar_met_mask(
    success: ArrayLike,
    collision: ArrayLike | None = None,
    *,
    target: float = 0.9,
    max_collision: float = 0.05,
) -> np.ndarray:
    """Per evaluation, whether it meets the bar: success >= target (and collision <=
    max_collision when ``collision`` is given). NaN never meets it.

    :param success: evaluated success rate per evaluation.
    :param collision: optional collision rate per evaluation, aligned with ``success``.
    :param target: success threshold (inclusive).
    :param max_collision: collision ceiling (inclusive).
    :return: boolean array, one entry per evaluation.
    """
    s = np.asarray(success, dtype=np.float64).reshape(-1)
    ok = s >= target
    if collision is not None:
        c = np.asarray(collision, dtype=np.float64).reshape(-1)
        if c.shape != s.shape:
            raise ValueError(f"success and collision must be aligned, got {s.shape} and {c.shape}")
        ok &= c <= max_collision
    return ok


def share_from(ok: ArrayLike, index: int) -> float:
    """Share of evaluations from ``index`` to the end (inclusive) that meet the bar.

    :param ok: :func:`bar_met_mask` of a run.
    :param index: first evaluation counted.
    :return: a share in [0, 1].
    """
    m = np.asarray(ok, dtype=bool).reshape(-1)
    if not 0 <= index < m.size:
        raise ValueError(f"index {index} is outside the {m.size} evaluations")
    return float(np.mean(m[index:]))


def time_to_held_threshold(
    timesteps: ArrayLike,
    success: ArrayLike,
    *,
    target: float = 0.9,
    collision: ArrayLike | None = None,
    max_collision: float = 0.05,
    hold_fraction: float = 0.9,
    min_evals: int = 3,
) -> ThresholdResult:
    """Reached and held: the first evaluation step from which at least ``hold_fraction`` of
    all evaluations to the end of the run (that one included) meet the bar.

    :func:`time_to_threshold` asks for ``k`` qualifying evaluations in a row, so a run that
    touches the bar early and then drifts off it still reads "reached early". This time
    reads the whole rest of the curve: a run that reaches the bar and loses it gets a later
    time (where it regained it for good), or none. Two rules keep it honest:

    - the evaluation at the held time meets the bar itself (a failing evaluation is never
      the start of "held", even when enough later ones succeed);
    - at least ``min_evals`` evaluations lie from the held time to the end: a run meeting
      the bar only in its last one or two evaluations has not shown that it holds it (the
      same reason a streak shorter than ``k`` does not confirm :func:`time_to_threshold`).

    A run with no such evaluation is right-censored at its last evaluated step. The share
    at the held time is at least ``hold_fraction`` by construction; NaN never qualifies.

    :param timesteps: evaluation steps.
    :param success: evaluated success rate per evaluation.
    :param target: success threshold (inclusive).
    :param collision: optional collision rate per evaluation.
    :param max_collision: collision ceiling (inclusive), used when ``collision`` is given.
    :param hold_fraction: share of the remaining evaluations that must meet the bar, in (0, 1].
    :param min_evals: evaluations needed from the held time to the end (>= 1).
    :return: the :class:`ThresholdResult` (``index`` is the held evaluation's index).
    """
    if not 0.0 < hold_fraction <= 1.0:
        raise ValueError(f"hold_fraction must be in (0, 1], got {hold_fraction}")
    if min_evals < 1:
        raise ValueError(f"min_evals must be >= 1, got {min_evals}")
    t, s = validate_curve(timesteps, success)
    if collision is not None:
        _, c = validate_curve(t, collision)
        ok = bar_met_mask(s, c, target=target, max_collision=max_collision)
    else:
        ok = bar_met_mask(s, target=target)
    n = ok.size
    remaining = np.arange(n, 0, -1)  # evaluations from i to the end
    met_from = np.cumsum(ok[::-1].astype(np.int64))[::-1]  # of them, meeting the bar
    # integer comparison (met >= fraction * remaining) without float noise at exactly 90%
    held = ok & (remaining >= min_evals) & (met_from >= hold_fraction * remaining - 1e-9)
    hits = np.flatnonzero(held)
    if hits.size:
        i = int(hits[0])
        return ThresholdResult(steps=int(t[i]), censored=False, index=i)
    return ThresholdResult(steps=None, censored=True, censored_at=int(t[-1]))


@dataclass(frozen=True)
class RatioResult:
    """Ratio of time to threshold, fine-tuned over baseline (below 1 means fewer steps).

    :param statistic: ``"iqm"`` or ``"median"`` across runs.
    :param point: statistic(fine-tuned times) / statistic(baseline times).
    :param ci_low: lower bound of the stratified bootstrap CI.
    :param ci_high: upper bound of the stratified bootstrap CI.
    :param confidence: CI coverage.
    :param finetuned_value: statistic of the fine-tuned times.
    :param baseline_value: statistic of the baseline times.
    :param n_finetuned: runs in the fine-tuned arm.
    :param n_baseline: runs in the baseline arm.
    :param any_censored_finetuned: some fine-tuned run never reached the threshold.
    :param any_censored_baseline: some baseline run never reached the threshold.
    """

    statistic: str
    point: float
    ci_low: float
    ci_high: float
    confidence: float
    finetuned_value: float
    baseline_value: float
    n_finetuned: int
    n_baseline: int
    any_censored_finetuned: bool
    any_censored_baseline: bool

    @property
    def bound(self) -> Literal["exact", "upper", "lower", "indeterminate"]:
        """How to read ``point`` given censoring.

        Censored times are lower bounds and IQM/median are monotone in each run's time, so:
        only baseline censored -> the true ratio is at most ``point`` ("upper");
        only fine-tuned censored -> at least ``point`` ("lower"); both -> "indeterminate".
        """
        ft, bl = self.any_censored_finetuned, self.any_censored_baseline
        if ft and bl:
            return "indeterminate"
        if bl:
            return "upper"
        if ft:
            return "lower"
        return "exact"


def _reduce(samples: np.ndarray, statistic: RatioStatistic) -> np.ndarray:
    """IQM or median along the last axis.

    :param samples: times, runs on the last axis.
    :param statistic: ``"iqm"`` or ``"median"``.
    :return: the reduced array.
    """
    if statistic == "iqm":
        return np.asarray(iqm(samples, axis=-1))
    return np.median(samples, axis=-1)


def _times(results: Sequence[ThresholdResult], arm: str) -> np.ndarray:
    """Times of an arm's runs, censored ones at their censoring step.

    :param results: one :class:`ThresholdResult` per run.
    :param arm: arm name for error messages.
    :return: float array of steps.
    """
    if len(results) == 0:
        raise ValueError(f"{arm} arm has no runs")
    if not all(isinstance(r, ThresholdResult) for r in results):
        raise TypeError(f"{arm} arm must be a list of ThresholdResult")
    return np.array([r.time for r in results], dtype=np.float64)


def efficiency_ratio(
    finetuned: Sequence[ThresholdResult],
    baseline: Sequence[ThresholdResult],
    *,
    statistic: RatioStatistic = "iqm",
    n_resamples: int = 5000,
    seed: int = 0,
    confidence: float = 0.95,
) -> RatioResult:
    """Time-to-threshold ratio fine-tuned / baseline with a stratified bootstrap CI.

    The CI is rliable's percentile interval with ``StratifiedIndependentBootstrap``
    (:func:`~robosf_assets.benchmark.intervals.interval_estimate`): each replicate resamples
    runs with replacement within each arm independently; seeds are not assumed paired.

    Censored runs enter at their censoring step, a lower bound on their true time. A
    censored baseline run therefore shrinks the baseline time and pushes the ratio up,
    against the fine-tuned arm (the reported ratio is then an upper bound); a censored
    fine-tuned run pushes it down (a lower bound). Check the ``any_censored_*`` flags or
    :attr:`RatioResult.bound` before quoting the ratio as an estimate.

    :param finetuned: time-to-threshold results of the fine-tuned (pre-trained) runs.
    :param baseline: results of the from-scratch runs.
    :param statistic: ``"iqm"`` (rliable default) or ``"median"`` across runs.
    :param n_resamples: bootstrap replicates.
    :param seed: seed for ``np.random.default_rng``.
    :param confidence: CI coverage in (0, 1).
    :return: the :class:`RatioResult`.
    """
    if statistic not in ("iqm", "median"):
        raise ValueError(f"statistic must be 'iqm' or 'median', got {statistic!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    ft, bl = _times(finetuned, "finetuned"), _times(baseline, "baseline")
    if np.any(bl <= 0):
        raise ValueError(
            "a baseline run reached the threshold at step 0, so the ratio is undefined; "
            "raise the target or report jumpstart instead"
        )
    ft_value, bl_value = float(_reduce(ft, statistic)), float(_reduce(bl, statistic))

    def ratio(ft_runs: np.ndarray, bl_runs: np.ndarray) -> np.ndarray:
        return np.array([_reduce(ft_runs[:, 0], statistic) / _reduce(bl_runs[:, 0], statistic)])

    _, low, high = interval_estimate(
        [ft[:, None], bl[:, None]], ratio, n_resamples=n_resamples, confidence=confidence,
        seed=seed,
    )
    ci_low, ci_high = float(low[0]), float(high[0])
    return RatioResult(
        statistic=statistic,
        point=ft_value / bl_value,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=confidence,
        finetuned_value=ft_value,
        baseline_value=bl_value,
        n_finetuned=int(ft.size),
        n_baseline=int(bl.size),
        any_censored_finetuned=any(r.censored for r in finetuned),
        any_censored_baseline=any(r.censored for r in baseline),
    )


def area_under_curve(
    timesteps: ArrayLike, success: ArrayLike, *, max_steps: int | None = None
) -> float:
    """Trapezoidal area under the success curve divided by its step span (in [0, 1]).

    With ``max_steps`` the curve is cut (linearly interpolated at ``max_steps``) or
    extended (last value held) to ``[timesteps[0], max_steps]``, so arms trained for
    different lengths are compared on one span. A single evaluation with no span returns
    its value.

    :param timesteps: evaluation steps.
    :param success: success rate per evaluation (values in [0, 1] give an area in [0, 1]).
    :param max_steps: end of the span, > ``timesteps[0]``; ``None`` uses the last evaluation.
    :return: normalised area.
    """
    t, s = validate_curve(timesteps, success)
    if not np.isfinite(s).all():
        raise ValueError("success has NaN/inf; the area is undefined")
    if max_steps is not None:
        if max_steps <= t[0]:
            raise ValueError(f"max_steps={max_steps} must exceed the first step {t[0]}")
        grid = np.append(t[t < max_steps], max_steps)
        s, t = np.interp(grid, t, s), grid
    span = float(t[-1] - t[0])
    if span == 0.0:
        return float(s[0])
    area = np.sum(np.diff(t) * (s[1:] + s[:-1]) / 2.0)
    return float(area / span)


def jumpstart(success: ArrayLike, timesteps: ArrayLike | None = None) -> float:
    """Success at the first evaluation (step 0): the benefit before any fine-tuning.

    :param success: success rate per evaluation.
    :param timesteps: optional evaluation steps; if given, the first must be 0.
    :return: first success value.
    """
    s = np.asarray(success, dtype=np.float64).reshape(-1)
    if s.size == 0:
        raise ValueError("success curve is empty")
    if timesteps is not None:
        t, _ = validate_curve(timesteps, s)
        if t[0] != 0:
            raise ValueError(f"first evaluation is at step {t[0]}, not 0; evaluate before training")
    return float(s[0])


def value_at(timesteps: ArrayLike, values: ArrayLike, step: int) -> float:
    """Last evaluated value at or before ``step`` (NaN if ``step`` precedes the first eval).

    Use it for the collision rate at the threshold point: ``value_at(t, coll, res.steps)``.

    :param timesteps: evaluation steps.
    :param values: value per evaluation.
    :param step: query step.
    :return: the value.
    """
    if step is None:
        raise ValueError("step is None (a censored run?); pass ThresholdResult.time instead")
    t, v = validate_curve(timesteps, values)
    i = int(np.searchsorted(t, step, side="right")) - 1
    return float(v[i]) if i >= 0 else float("nan")
