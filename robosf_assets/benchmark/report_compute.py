"""The numbers of a comparison report, as frozen dataclasses (no prose, no I/O).

:func:`compute` takes :class:`~robosf_assets.benchmark.report_inputs.ComparisonInputs` and
returns a :class:`Comparison`: per run both times to threshold (k in a row, and reached
and held; right-censored, never dropped) and the per-run metrics; per arm the IQM and
median of both times and the means of the rates, each with a CI; both ratios fine-tuned /
baseline; the verdict's outcome as reason codes; the step countings; and the success
bands. Every CI is rliable's (:mod:`robosf_assets.benchmark.intervals`): censored times
enter at their censoring step, as before, and are then handed to rliable.
:mod:`.report_result` turns a :class:`Comparison` into the ``report.json`` dict (that is
where the sentences are written).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from robosf_assets.benchmark.efficiency import (
    CurveBand,
    RatioResult,
    ThresholdResult,
    area_under_curve,
    bar_met_mask,
    efficiency_ratio,
    jumpstart,
    mean_curve_with_ci,
    time_to_held_threshold,
    time_to_threshold,
    value_at,
)
from robosf_assets.benchmark.report_inputs import (
    ARMS,
    CONFIDENCE,
    STATISTICS,
    ComparisonInputs,
    curve_arrays,
)
from robosf_assets.benchmark.stats import bootstrap_ci, iqm, summarize

__all__ = [
    "COUNTINGS",
    "RATE_KEYS",
    "ArmNumbers",
    "Comparison",
    "RunNumbers",
    "StepCounting",
    "TimeStats",
    "VerdictNumbers",
    "compute",
    "success_bands",
]

RATE_KEYS: tuple[str, ...] = (
    "jumpstart", "auc_success", "final_success", "final_collision", "collision_at_threshold",
    "held_after_threshold", "held_after_held_threshold",
)
"""Per-run values each arm reports as a mean over runs with a CI (runs without one skipped)."""
COUNTINGS: tuple[str, ...] = ("a", "b", "c_amortised", "c_total")
"""The step countings of REFERENCE §5: (a) fine-tuning steps only, (b) plus the
demonstration transitions, (c) plus the expert's steps, amortised over the seeds or total."""


@dataclass(frozen=True)
class RunNumbers:
    """One run's numbers; ``None`` where a value does not exist (e.g. censored)."""

    time_to_threshold: ThresholdResult
    collision_at_threshold: float | None
    held_after_threshold: float | None
    min_success_after_threshold: float | None
    time_to_held_threshold: ThresholdResult
    collision_at_held_threshold: float | None
    held_after_held_threshold: float | None
    jumpstart: float
    auc_success: float
    final_success: float
    final_collision: float
    final_timesteps: int
    n_evals: int


@dataclass(frozen=True)
class TimeStats:
    """IQM and median of an arm's times (censored runs at their censoring step)."""

    iqm: float
    iqm_ci: tuple[float, float]
    median: float
    median_ci: tuple[float, float]
    is_lower_bound: bool


@dataclass(frozen=True)
class ArmNumbers:
    """One arm across its runs.

    :param rates: :data:`RATE_KEYS` -> :func:`~robosf_assets.benchmark.stats.summarize`
        dict over the runs that have the value, ``None`` when none has.
    """

    n_runs: int
    censored_seeds: tuple[int, ...]
    censored_held_seeds: tuple[int, ...]
    time_to_threshold: TimeStats
    time_to_held_threshold: TimeStats
    rates: Mapping[str, Mapping[str, float | int] | None]


@dataclass(frozen=True)
class VerdictNumbers:
    """The verdict on the held-time ratio of the fine-tuning steps.

    :param ratio: that ratio, ``None`` when undefined (a baseline run at step 0).
    :param reasons: why the target is not met, as codes in this order (empty: met):
        ``all_finetuned_censored``, ``some_finetuned_censored``, ``ratio_undefined``,
        ``ci_above_target``, ``too_few_seeds``.
    """

    statistic: str
    ratio_target: float
    ratio: RatioResult | None
    reasons: tuple[str, ...]

    @property
    def target_met(self) -> bool:
        """No reason against it."""
        return not self.reasons


@dataclass(frozen=True)
class StepCounting:
    """One step counting: ``extra`` steps charged to every fine-tuned run."""

    key: str
    extra: int
    ratio: RatioResult | None
    meets_target: bool


@dataclass(frozen=True)
class Comparison:
    """Everything :mod:`.report_result` and the plots need, computed from ``inputs``.

    :param max_steps: end of the AUC span, the shortest run's last evaluation.
    :param longest: the longest run's last evaluation.
    :param runs: arm -> seed -> :class:`RunNumbers`.
    :param ratio: statistic -> k-in-a-row ratio (``None``: undefined).
    :param ratio_held: statistic -> reached-and-held ratio.
    :param expert_share: the expert's steps charged per seed when amortised (ceil).
    :param bands: arm -> mean success with a CI band on the common grid.
    """

    inputs: ComparisonInputs
    max_steps: int
    longest: int
    runs: Mapping[str, Mapping[int, RunNumbers]]
    arms: Mapping[str, ArmNumbers]
    ratio: Mapping[str, RatioResult | None]
    ratio_held: Mapping[str, RatioResult | None]
    verdict: VerdictNumbers
    expert_share: int
    countings: tuple[StepCounting, ...]
    bands: Mapping[str, CurveBand]

    @property
    def n_runs_total(self) -> int:
        """Runs of both arms."""
        return sum(len(r) for r in self.runs.values())


# ---------------------------------------------------------------------- per run


def run_numbers(
    t: np.ndarray, s: np.ndarray, c: np.ndarray, inputs: ComparisonInputs, max_steps: int
) -> RunNumbers:
    """One run's numbers from its (timesteps, success, collision) arrays."""
    bar = {"target": inputs.target_success, "max_collision": inputs.max_collision}
    res = time_to_threshold(t, s, collision=c, k=inputs.k, **bar)
    held = time_to_held_threshold(
        t, s, collision=c, hold_fraction=inputs.hold_fraction, min_evals=inputs.k, **bar
    )
    ok = bar_met_mask(s, c, **bar)
    after = None if res.censored else t >= res.steps
    return RunNumbers(
        time_to_threshold=res,
        collision_at_threshold=None if res.censored else value_at(t, c, res.steps),
        # whether the run kept the bar once it reached it (k in a row asks for k only)
        held_after_threshold=None if after is None else float(np.mean(ok[after])),
        min_success_after_threshold=None if after is None else float(np.nanmin(s[after])),
        time_to_held_threshold=held,
        collision_at_held_threshold=None if held.censored else value_at(t, c, held.steps),
        held_after_held_threshold=None if held.censored else float(np.mean(ok[held.index:])),
        jumpstart=jumpstart(s, t),
        auc_success=area_under_curve(t, s, max_steps=max_steps),
        final_success=float(s[-1]),
        final_collision=float(c[-1]),
        final_timesteps=int(t[-1]),
        n_evals=int(t.size),
    )


# ---------------------------------------------------------------------- per arm


def _time_stats(results: Sequence[ThresholdResult], inputs: ComparisonInputs) -> TimeStats:
    times = np.array([r.time for r in results], dtype=np.float64)
    n, seed = inputs.n_resamples, inputs.seed
    return TimeStats(
        iqm=iqm(times),
        iqm_ci=bootstrap_ci(times, iqm, n, CONFIDENCE, seed),
        median=float(np.median(times)),
        median_ci=bootstrap_ci(times, np.median, n, CONFIDENCE, seed),
        is_lower_bound=any(r.censored for r in results),
    )


def _rate_summary(
    values: Sequence[float | None], inputs: ComparisonInputs
) -> dict[str, Any] | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return summarize(finite, seed=inputs.seed, n_resamples=inputs.n_resamples)


def arm_numbers(runs: Mapping[int, RunNumbers], inputs: ComparisonInputs) -> ArmNumbers:
    """IQM/median of both times with CIs, censoring, and the rates' means with CIs."""
    seeds = sorted(runs)
    kinrow = [runs[s].time_to_threshold for s in seeds]
    held = [runs[s].time_to_held_threshold for s in seeds]
    return ArmNumbers(
        n_runs=len(seeds),
        censored_seeds=tuple(s for s, r in zip(seeds, kinrow, strict=True) if r.censored),
        censored_held_seeds=tuple(s for s, r in zip(seeds, held, strict=True) if r.censored),
        time_to_threshold=_time_stats(kinrow, inputs),
        time_to_held_threshold=_time_stats(held, inputs),
        rates={key: _rate_summary([getattr(runs[s], key) for s in seeds], inputs)
               for key in RATE_KEYS},
    )


# ------------------------------------------------------------------------- ratios


def _shifted(results: Sequence[ThresholdResult], extra: int) -> list[ThresholdResult]:
    """Results with ``extra`` steps charged to every run (censored ones at censored_at)."""
    if extra == 0:
        return list(results)
    return [
        ThresholdResult(steps=None, censored=True, censored_at=r.censored_at + extra)
        if r.censored
        else ThresholdResult(steps=r.steps + extra, censored=False, index=r.index)
        for r in results
    ]


def ratio_of(
    ft: Sequence[ThresholdResult], bl: Sequence[ThresholdResult], statistic: str,
    inputs: ComparisonInputs, extra: int = 0,
) -> RatioResult | None:
    """Ratio fine-tuned / baseline, or ``None`` when a baseline run reached the threshold
    at step 0 (the ratio is undefined)."""
    if any(r.time <= 0 for r in bl):
        return None
    return efficiency_ratio(
        _shifted(ft, extra), bl, statistic=statistic,  # type: ignore[arg-type]
        n_resamples=inputs.n_resamples, seed=inputs.seed, confidence=CONFIDENCE,
    )


def meets(ratio: RatioResult | None, target: float) -> bool:
    """CI upper bound within target and the ratio not a lower bound / indeterminate."""
    return ratio is not None and ratio.bound in ("exact", "upper") and ratio.ci_high <= target


def verdict_numbers(
    ratio: RatioResult | None, finetuned: ArmNumbers, inputs: ComparisonInputs
) -> VerdictNumbers:
    """The verdict on the held-time ratio of the fine-tuning steps, as reason codes."""
    n_seeds, n_cens = finetuned.n_runs, len(finetuned.censored_held_seeds)
    reasons: list[str] = []
    if n_cens == n_seeds:
        reasons.append("all_finetuned_censored")
    elif n_cens:
        reasons.append("some_finetuned_censored")
    if ratio is None:
        reasons.append("ratio_undefined")
    elif ratio.bound in ("exact", "upper") and ratio.ci_high > inputs.ratio_target:
        reasons.append("ci_above_target")
    if n_seeds < inputs.min_seeds:
        reasons.append("too_few_seeds")
    return VerdictNumbers(inputs.statistic, inputs.ratio_target, ratio, tuple(reasons))


def step_countings(
    ft: Sequence[ThresholdResult], bl: Sequence[ThresholdResult], inputs: ComparisonInputs
) -> tuple[int, tuple[StepCounting, ...]]:
    """The expert's amortised share per seed and the :data:`COUNTINGS`, on the times
    ``ft`` and ``bl`` (the held ones in :func:`compute`)."""
    share = -(-inputs.expert_steps // len(ft))  # ceil: rounding charges the fine-tuned arm more
    demo = inputs.demo_transitions
    extras = (0, demo, demo + share, demo + inputs.expert_steps)
    out = []
    for key, extra in zip(COUNTINGS, extras, strict=True):
        ratio = ratio_of(ft, bl, inputs.statistic, inputs, extra)
        out.append(StepCounting(key, extra, ratio, meets(ratio, inputs.ratio_target)))
    return share, tuple(out)


# ------------------------------------------------------------------------- curves


def success_bands(inputs: ComparisonInputs) -> dict[str, CurveBand]:
    """Mean success per arm with a CI band on a grid common to both arms.

    The grid is the union of every run's evaluation steps; each arm's band stops at its
    shortest run's last evaluation, so no run is extended past its end.
    """
    arrays = {
        arm: {s: curve_arrays(rows, f"{arm} seed {s}") for s, rows in inputs.curves(arm).items()}
        for arm in ARMS
    }
    grid = np.unique(np.concatenate([a[0] for arm in ARMS for a in arrays[arm].values()]))
    out = {}
    for arm in ARMS:
        runs = [arrays[arm][s] for s in sorted(arrays[arm])]
        end = min(t[-1] for t, _, _ in runs)
        out[arm] = mean_curve_with_ci(
            [(t, s) for t, s, _ in runs], grid[grid <= end],
            n_resamples=inputs.n_resamples, confidence=CONFIDENCE, seed=inputs.seed,
        )
    return out


# ------------------------------------------------------------------------ compute


def compute(inputs: ComparisonInputs) -> Comparison:
    """Every number of the comparison; deterministic given ``inputs``.

    :raises ValueError: when a curve is malformed or a run was evaluated only at step 0.
    """
    arrays = {
        arm: {s: curve_arrays(inputs.curves(arm)[s], f"{arm} seed {s}") for s in inputs.seeds}
        for arm in ARMS
    }
    ends = {(arm, s): int(a[0][-1]) for arm in ARMS for s, a in arrays[arm].items()}
    max_steps = min(ends.values())
    if max_steps <= 0:
        short = [f"{arm} seed {s}" for (arm, s), e in ends.items() if e <= 0]
        raise ValueError(f"{short} evaluated only at step 0; the curves have no span to compare")
    runs = {
        arm: {s: run_numbers(*arrays[arm][s], inputs, max_steps) for s in inputs.seeds}
        for arm in ARMS
    }
    arms = {arm: arm_numbers(runs[arm], inputs) for arm in ARMS}
    kinrow = {arm: [runs[arm][s].time_to_threshold for s in inputs.seeds] for arm in ARMS}
    held = {arm: [runs[arm][s].time_to_held_threshold for s in inputs.seeds] for arm in ARMS}
    ft, bl = kinrow["finetuned"], kinrow["baseline"]
    ratio = {st: ratio_of(ft, bl, st, inputs) for st in STATISTICS}
    ft, bl = held["finetuned"], held["baseline"]
    ratio_held = {st: ratio_of(ft, bl, st, inputs) for st in STATISTICS}
    share, countings = step_countings(held["finetuned"], held["baseline"], inputs)
    return Comparison(
        inputs=inputs,
        max_steps=max_steps,
        longest=max(ends.values()),
        runs=runs,
        arms=arms,
        ratio=ratio,
        ratio_held=ratio_held,
        verdict=verdict_numbers(ratio_held[inputs.statistic], arms["finetuned"], inputs),
        expert_share=share,
        countings=countings,
        bands=success_bands(inputs),
    )
