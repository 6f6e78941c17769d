"""Comparison report: BC-pretrained PPO ("finetuned") against PPO from scratch ("baseline").

The statistics follow REFERENCE §5 (rliable, Agarwal et al. 2021; Taylor & Stone 2009):
per seed, two times to threshold (right-censored when never reached, never dropped): the
bar (success >= target and collision <= limit) met by ``k`` consecutive evaluations, and
"reached and held", the first evaluation from which at least ``hold_fraction`` (90%) of
all later evaluations meet it; jumpstart, the area under the success curve on one step
span for every run, final metrics, the collision rate at each threshold point and the share
of evaluations after it that meet the bar; per arm, IQM and median of both times with
bootstrap CIs; and the ratio fine-tuned / baseline of both with a stratified bootstrap CI.

The verdict (the ``sample_efficiency_target`` check) is judged on the *held* time: a
fine-tuned arm that starts on the bar and then drifts off it has not saved the steps a
k-in-a-row reading credits it with. The step countings (fine-tuning steps; plus
demonstration transitions; plus the expert's training steps) use the held time too.

Flow::

    inputs = load_inputs_from_dirs(scenario, finetuned_dirs, baseline_dirs, demo, expert)
    result = compare(inputs)                      # JSON-safe dict, deterministic
    paths = write_report(out_dir, inputs, result) # report.json/.md + two PNGs

``report.json`` keeps an ``inputs`` block (run directories, curve checksums, thresholds,
bootstrap settings), so ``python -m robosf_assets.benchmark.recompute <report-dir>`` can
re-read the curves and check every number. No Dagster here: the asset only calls these.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from robosf_assets.artifacts import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_json,
    sha256_file,
    to_jsonable,
)
from robosf_assets.benchmark.efficiency import (
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
from robosf_assets.benchmark.plots import plt, png_bytes
from robosf_assets.benchmark.stats import bootstrap_ci, iqm, summarize
from robosf_assets.training.curves import CURVE_NAME, read_curve

__all__ = [
    "ARMS",
    "CONFIDENCE",
    "RECOMPUTE_COMMAND",
    "REPORT_FILES",
    "SCHEMA_VERSION",
    "ComparisonInputs",
    "compare",
    "inputs_block",
    "load_inputs_from_dirs",
    "render_markdown",
    "success_curves_png",
    "summary_markdown",
    "time_to_threshold_png",
    "write_report",
]

ARMS: tuple[str, str] = ("finetuned", "baseline")
"""Arm names: PPO initialised from a BC policy, and PPO from scratch."""
CONFIDENCE = 0.95
"""Coverage of every CI in the report."""
SCHEMA_VERSION = 3
"""Version of the ``report.json`` layout (3: the held time to threshold, judged on)."""
REPORT_FILES: tuple[str, ...] = (
    "report.json",
    "report.md",
    "success_curves.png",
    "time_to_threshold.png",
)
"""Files :func:`write_report` writes, in order."""
RECOMPUTE_COMMAND = "python -m robosf_assets.benchmark.recompute <report-dir>"
"""The documented command that recomputes a report from its saved curves."""

_COLORS = {"finetuned": "tab:green", "baseline": "tab:blue"}
_STAT_LABEL = {"iqm": "IQM", "median": "median"}
_BOUND_READING = {
    "exact": "exact (no run censored)",
    "upper": "upper bound (some baseline runs censored: the true ratio is at most this)",
    "lower": "lower bound (some fine-tuned runs censored: the true ratio is at least this)",
    "indeterminate": "indeterminate (runs censored in both arms)",
}

# One run's learning curve: the rows of its curve.jsonl.
CurveRows = list[dict[str, Any]]


@dataclass
class ComparisonInputs:
    """Everything :func:`compare` needs; build it with :func:`load_inputs_from_dirs`.

    :param scenario: scenario name (the report's partition).
    :param finetuned: seed -> curve rows of the PPO run initialised from BC.
    :param baseline: seed -> curve rows of the PPO-from-scratch run; same seeds as
        ``finetuned`` (matched seeds, REFERENCE §5).
    :param demo_transitions: transitions in the demonstration dataset BC trained on.
    :param expert_steps: environment steps the expert itself was trained for.
    :param target_success: success rate the threshold requires (inclusive).
    :param max_collision: collision rate the threshold allows (inclusive).
    :param k: consecutive qualifying evaluations that confirm the threshold; also the
        fewest evaluations from the held time to a run's end.
    :param hold_fraction: share of the evaluations from the held time on that must meet
        the bar ("reached and held", the time the verdict is judged on).
    :param ratio_target: the ratio's CI upper bound must be <= this for "target met".
    :param statistic: ``"iqm"`` or ``"median"``: the statistic the verdict uses.
    :param n_resamples: bootstrap replicates for every CI.
    :param seed: bootstrap seed (same for every CI, so the report is deterministic).
    :param min_seeds: fewer matched seeds than this never give "target met" (a CI over
        one or two runs says little; REFERENCE §5 suggests 3-10).
    :param run_dirs: arm -> seed -> run directory the curve was read from; required by
        :func:`write_report` so the report can be recomputed.
    :param curve_sha256: arm -> seed -> sha256 of the ``curve.jsonl`` that was read.
    """

    scenario: str
    finetuned: dict[int, CurveRows]
    baseline: dict[int, CurveRows]
    demo_transitions: int
    expert_steps: int
    target_success: float = 0.90
    max_collision: float = 0.05
    k: int = 3
    hold_fraction: float = 0.90
    ratio_target: float = 0.70
    statistic: str = "iqm"
    n_resamples: int = 5000
    seed: int = 0
    min_seeds: int = 3
    run_dirs: dict[str, dict[int, str]] | None = field(default=None, repr=False)
    curve_sha256: dict[str, dict[int, str]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Reject settings and arm layouts the report cannot be honest about."""
        for name in ("demo_transitions", "expert_steps", "k", "n_resamples", "seed", "min_seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if self.k < 1 or self.n_resamples < 1:
            raise ValueError(f"k and n_resamples must be >= 1, got {self.k}, {self.n_resamples}")
        if self.statistic not in _STAT_LABEL:
            raise ValueError(f"statistic must be 'iqm' or 'median', got {self.statistic!r}")
        if not 0.0 <= self.target_success <= 1.0 or not 0.0 <= self.max_collision <= 1.0:
            raise ValueError("target_success and max_collision are rates in [0, 1]")
        if not 0.0 < self.hold_fraction <= 1.0:
            raise ValueError(f"hold_fraction must be in (0, 1], got {self.hold_fraction}")
        if not self.ratio_target > 0.0:
            raise ValueError(f"ratio_target must be > 0, got {self.ratio_target}")
        if not self.finetuned or not self.baseline:
            raise ValueError("both arms need at least one run (seed -> curve rows)")
        ft, bl = sorted(self.finetuned), sorted(self.baseline)
        if ft != bl:
            raise ValueError(
                f"seeds must be matched between arms: finetuned has {ft}, baseline has {bl}; "
                "run the missing seeds or pass the common ones only"
            )

    @property
    def seeds(self) -> list[int]:
        """The matched seeds, sorted."""
        return sorted(int(s) for s in self.finetuned)

    def curves(self, arm: str) -> dict[int, CurveRows]:
        """Seed -> curve rows of ``arm``."""
        if arm not in ARMS:
            raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
        return self.finetuned if arm == "finetuned" else self.baseline


# ------------------------------------------------------------------------ loading


def _manifest_seed(manifest: Any) -> int | None:
    """The run seed a run manifest records (``seeds.run_seed`` / ``seeds.seed`` /
    ``config.seed``), or ``None`` if it records none."""
    if not isinstance(manifest, Mapping):
        return None
    seeds, config = manifest.get("seeds"), manifest.get("config")
    for holder, key in ((seeds, "run_seed"), (seeds, "seed"), (config, "seed")):
        if isinstance(holder, Mapping) and isinstance(holder.get(key), int):
            return int(holder[key])
    return None


def load_inputs_from_dirs(
    scenario: str,
    finetuned_dirs: Mapping[int, str | os.PathLike[str]],
    baseline_dirs: Mapping[int, str | os.PathLike[str]],
    demo_transitions: int,
    expert_steps: int,
    **kwargs: Any,
) -> ComparisonInputs:
    """Read each run's ``curve.jsonl`` into :class:`ComparisonInputs`.

    A run directory holding a ``manifest.json`` that records another seed than its key is
    refused, so arms cannot be silently mismatched.

    :param scenario: scenario name.
    :param finetuned_dirs: seed -> run directory of the fine-tuned arm.
    :param baseline_dirs: seed -> run directory of the baseline arm.
    :param demo_transitions: transitions in the demonstration dataset used for BC.
    :param expert_steps: the expert's training steps.
    :param kwargs: the remaining :class:`ComparisonInputs` settings (thresholds, ``k``,
        ``hold_fraction``, ``ratio_target``, ``statistic``, ``n_resamples``, ``seed``, ``min_seeds``).
    :return: the inputs, with ``run_dirs`` (absolute) and ``curve_sha256`` filled in.
    """
    curves: dict[str, dict[int, CurveRows]] = {}
    run_dirs: dict[str, dict[int, str]] = {}
    shas: dict[str, dict[int, str]] = {}
    for arm, dirs in (("finetuned", finetuned_dirs), ("baseline", baseline_dirs)):
        curves[arm], run_dirs[arm], shas[arm] = {}, {}, {}
        for seed, run_dir in sorted(dirs.items()):
            run_dir = Path(run_dir).resolve()
            path = run_dir / CURVE_NAME
            if not path.is_file():
                raise FileNotFoundError(f"{arm} seed {seed}: no {CURVE_NAME} in {run_dir}")
            manifest_path = run_dir / "manifest.json"
            if manifest_path.is_file():
                recorded = _manifest_seed(read_json(manifest_path))
                if recorded is not None and recorded != int(seed):
                    raise ValueError(
                        f"{arm} seed {seed}: {manifest_path} records seed {recorded}; "
                        "pass each run directory under its own seed"
                    )
            rows = read_curve(path)
            if not rows:
                raise ValueError(f"{arm} seed {seed}: {path} has no evaluation rows")
            curves[arm][int(seed)] = rows
            run_dirs[arm][int(seed)] = run_dir.as_posix()
            shas[arm][int(seed)] = sha256_file(path)
    return ComparisonInputs(
        scenario=scenario,
        finetuned=curves["finetuned"],
        baseline=curves["baseline"],
        demo_transitions=demo_transitions,
        expert_steps=expert_steps,
        run_dirs=run_dirs,
        curve_sha256=shas,
        **kwargs,
    )


def inputs_block(inputs: ComparisonInputs) -> dict[str, Any]:
    """The ``inputs`` block of ``report.json``: what :mod:`.recompute` needs to redo it."""
    def by_seed(table: dict[str, dict[int, str]] | None) -> dict[str, Any] | None:
        if table is None:
            return None
        return {arm: {str(s): table[arm][s] for s in sorted(table[arm])} for arm in ARMS}

    return to_jsonable(
        {
            "scenario": inputs.scenario,
            "seeds": inputs.seeds,
            "run_dirs": by_seed(inputs.run_dirs),
            "curve_file": CURVE_NAME,
            "curve_sha256": by_seed(inputs.curve_sha256),
            "demo_transitions": int(inputs.demo_transitions),
            "expert_steps": int(inputs.expert_steps),
            "target_success": float(inputs.target_success),
            "max_collision": float(inputs.max_collision),
            "k": int(inputs.k),
            "hold_fraction": float(inputs.hold_fraction),
            "ratio_target": float(inputs.ratio_target),
            "statistic": inputs.statistic,
            "n_resamples": int(inputs.n_resamples),
            "seed": int(inputs.seed),
            "min_seeds": int(inputs.min_seeds),
            "confidence": CONFIDENCE,
        }
    )


# ---------------------------------------------------------------------- per run


def _arrays(rows: Sequence[Mapping[str, Any]], where: str) -> tuple[np.ndarray, ...]:
    """(timesteps, success, collision) of curve rows; ``None`` values become NaN."""
    if not rows:
        raise ValueError(f"{where}: the curve has no evaluation rows")
    for i, row in enumerate(rows):
        missing = {"timesteps", "success", "collision"} - set(row)
        if missing:
            raise ValueError(f"{where}: row {i} lacks {sorted(missing)}; is this a curve.jsonl?")

    def col(key: str) -> np.ndarray:
        return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=np.float64)

    return col("timesteps"), col("success"), col("collision")


def _after_threshold(
    t: np.ndarray, s: np.ndarray, c: np.ndarray, inputs: ComparisonInputs, res: ThresholdResult
) -> dict[str, float | None]:
    """Whether a run kept the bar once it reached it: the share of evaluations from the
    threshold step on that meet it, and the lowest success among them (``None`` when
    censored). Time to threshold only asks for k evaluations in a row; this shows the rest."""
    if res.censored:
        return {"held_after_threshold": None, "min_success_after_threshold": None}
    after = t >= res.steps
    met = (s[after] >= inputs.target_success) & (c[after] <= inputs.max_collision)
    return {
        "held_after_threshold": float(np.mean(met)),
        "min_success_after_threshold": float(np.nanmin(s[after])),
    }


def _ttt_dict(res: ThresholdResult) -> dict[str, Any]:
    return {
        "steps": res.steps, "censored": res.censored, "censored_at": res.censored_at,
        "time": res.time,
    }


def _run_summary(
    t: np.ndarray, s: np.ndarray, c: np.ndarray, inputs: ComparisonInputs, max_steps: int
) -> tuple[dict[str, Any], ThresholdResult, ThresholdResult]:
    """Per-run numbers of the report and the run's two :class:`ThresholdResult` (k in a
    row, and reached and held)."""
    res = time_to_threshold(
        t, s, target=inputs.target_success, collision=c,
        max_collision=inputs.max_collision, k=inputs.k,
    )
    held = time_to_held_threshold(
        t, s, target=inputs.target_success, collision=c, max_collision=inputs.max_collision,
        hold_fraction=inputs.hold_fraction, min_evals=inputs.k,
    )
    ok = bar_met_mask(s, c, target=inputs.target_success, max_collision=inputs.max_collision)
    summary = {
        "time_to_threshold": _ttt_dict(res),
        "collision_at_threshold": None if res.censored else value_at(t, c, res.steps),
        **_after_threshold(t, s, c, inputs, res),
        "time_to_held_threshold": _ttt_dict(held),
        "collision_at_held_threshold": None if held.censored else value_at(t, c, held.steps),
        "held_after_held_threshold": None if held.censored else float(np.mean(ok[held.index:])),
        "jumpstart": jumpstart(s, t),
        "auc_success": area_under_curve(t, s, max_steps=max_steps),
        "final_success": float(s[-1]),
        "final_collision": float(c[-1]),
        "final_timesteps": int(t[-1]),
        "n_evals": int(t.size),
    }
    return summary, res, held


# ---------------------------------------------------------------------- per arm


def _summary_or_none(values: Sequence[float], inputs: ComparisonInputs) -> dict[str, Any] | None:
    """:func:`summarize` (mean, median, CI of the mean) over runs, ``None`` when empty."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    return summarize(finite, seed=inputs.seed, n_resamples=inputs.n_resamples)


def _arm_summary(
    runs: Mapping[str, Mapping[str, Any]], inputs: ComparisonInputs
) -> dict[str, Any]:
    """IQM/median time to threshold with bootstrap CIs, censoring and final metrics."""
    seeds = sorted(runs, key=int)
    n, b, seed = inputs.n_resamples, CONFIDENCE, inputs.seed

    def col(key: str) -> list[float]:
        return [runs[s][key] for s in seeds]

    def times_of(key: str) -> tuple[dict[str, Any], list[int]]:
        ttt = col(key)
        times = np.array([r["time"] for r in ttt], dtype=np.float64)
        censored = [int(s) for s, r in zip(seeds, ttt, strict=True) if r["censored"]]
        return {
            "iqm": iqm(times),
            "iqm_ci": list(bootstrap_ci(times, iqm, n, b, seed)),
            "median": float(np.median(times)),
            "median_ci": list(bootstrap_ci(times, np.median, n, b, seed)),
            "is_lower_bound": bool(censored),
        }, censored

    ttt, censored = times_of("time_to_threshold")
    held, censored_held = times_of("time_to_held_threshold")
    return {
        "n_runs": len(seeds),
        "n_censored": len(censored),
        "censored_seeds": censored,
        "n_censored_held": len(censored_held),
        "censored_held_seeds": censored_held,
        "time_to_threshold": ttt,
        "time_to_held_threshold": held,
        "jumpstart": _summary_or_none(col("jumpstart"), inputs),
        "auc_success": _summary_or_none(col("auc_success"), inputs),
        "final_success": _summary_or_none(col("final_success"), inputs),
        "final_collision": _summary_or_none(col("final_collision"), inputs),
        "collision_at_threshold": _summary_or_none(
            [v for v in col("collision_at_threshold") if v is not None], inputs
        ),
        "held_after_threshold": _summary_or_none(
            [v for v in col("held_after_threshold") if v is not None], inputs
        ),
        "held_after_held_threshold": _summary_or_none(
            [v for v in col("held_after_held_threshold") if v is not None], inputs
        ),
    }


# ------------------------------------------------------------------------- ratios


def _ratio_dict(r: RatioResult) -> dict[str, Any]:
    return {
        "statistic": r.statistic,
        "point": r.point,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "confidence": r.confidence,
        "bound": r.bound,
        "finetuned_value": r.finetuned_value,
        "baseline_value": r.baseline_value,
        "any_censored_finetuned": r.any_censored_finetuned,
        "any_censored_baseline": r.any_censored_baseline,
    }


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


def _ratio(
    ft: Sequence[ThresholdResult], bl: Sequence[ThresholdResult], statistic: str,
    inputs: ComparisonInputs, extra: int = 0,
) -> dict[str, Any] | None:
    """Ratio dict, or ``None`` when a baseline run reached the threshold at step 0."""
    if any(r.time <= 0 for r in bl):
        return None
    r = efficiency_ratio(
        _shifted(ft, extra), bl, statistic=statistic,  # type: ignore[arg-type]
        n_resamples=inputs.n_resamples, seed=inputs.seed, confidence=CONFIDENCE,
    )
    return _ratio_dict(r)


def _meets(ratio: Mapping[str, Any] | None, target: float) -> bool:
    """CI upper bound within target and the ratio not a lower bound / indeterminate."""
    return (
        ratio is not None
        and ratio["bound"] in ("exact", "upper")
        and ratio["ci_high"] <= target
    )


def _verdict(
    ratio: Mapping[str, Any] | None, arms: Mapping[str, Mapping[str, Any]],
    inputs: ComparisonInputs,
) -> dict[str, Any]:
    """The target verdict on the fine-tuning-steps ratio of the *held* time, with a plain
    reason."""
    label, target = _STAT_LABEL[inputs.statistic], inputs.ratio_target
    ft = arms["finetuned"]
    n_seeds, n_cens = ft["n_runs"], ft["n_censored_held"]
    reasons: list[str] = []
    if n_cens == n_seeds:
        reasons.append(
            f"the fine-tuned arm never reached the threshold (all {n_seeds} seeds censored) "
            "and held it"
        )
    elif n_cens:
        reasons.append(
            f"{n_cens} of {n_seeds} fine-tuned runs never reached the threshold and held it "
            f"(seeds {ft['censored_held_seeds']}); their times are lower bounds, so the ratio "
            "is only a lower bound and cannot show the target"
        )
    if ratio is None:
        reasons.append(
            "a baseline run reached the threshold at step 0, so the ratio is undefined "
            "(raise the target; jumpstart is the relevant measure)"
        )
    elif ratio["bound"] in ("exact", "upper") and ratio["ci_high"] > target:
        extra = (
            f" (the point estimate {ratio['point']:.3f} alone would meet it)"
            if ratio["point"] <= target else ""
        )
        reasons.append(
            f"the {label} ratio's 95% CI upper bound {ratio['ci_high']:.3f} exceeds "
            f"the target {target:.2f}{extra}"
        )
    if n_seeds < inputs.min_seeds:
        reasons.append(
            f"only {n_seeds} matched seed(s); at least {inputs.min_seeds} are needed "
            "for a CI to mean anything"
        )
    met = not reasons
    if met:
        assert ratio is not None
        sentence = (
            f"Target met: fine-tuned PPO reached and held the threshold in "
            f"{ratio['point']:.3f}x the baseline's environment steps ({label} ratio, 95% CI "
            f"[{ratio['ci_low']:.3f}, {ratio['ci_high']:.3f}]), and the CI upper bound is "
            f"<= {target:.2f}."
        )
        if ratio["bound"] == "upper":
            sentence += (
                f" {arms['baseline']['n_censored_held']} baseline run(s) never reached and "
                "held the threshold, so the true ratio is at most this: the verdict is "
                "conservative."
            )
    else:
        sentence = "Target NOT met: " + "; ".join(reasons) + "."
    return {
        "statistic": inputs.statistic,
        "ratio_target": target,
        "target_met": met,
        "point": None if ratio is None else ratio["point"],
        "ci_low": None if ratio is None else ratio["ci_low"],
        "ci_high": None if ratio is None else ratio["ci_high"],
        "bound": None if ratio is None else ratio["bound"],
        "reasons": reasons,
        "sentence": sentence,
        "counting": "a: fine-tuning steps only",
        "threshold": "held",
    }


def _step_countings(
    ft: Sequence[ThresholdResult], bl: Sequence[ThresholdResult], inputs: ComparisonInputs
) -> dict[str, Any]:
    """The three step countings of REFERENCE §5 (the expert one amortised and total), on
    the times ``ft`` and ``bl`` (the held ones in :func:`compare`)."""
    n = len(ft)
    share = -(-inputs.expert_steps // n)  # ceil: rounding charges the fine-tuned arm more
    demo = inputs.demo_transitions
    rows = [
        ("a", "fine-tuning steps only", 0),
        ("b", "fine-tuning + demonstration transitions", demo),
        ("c_amortised", "(b) + expert training steps shared by the seeds", demo + share),
        ("c_total", "(b) + all expert training steps, per seed", demo + inputs.expert_steps),
    ]
    countings = {}
    for key, label, extra in rows:
        ratio = _ratio(ft, bl, inputs.statistic, inputs, extra)
        countings[key] = {
            "label": label,
            "charged_per_finetuned_seed": extra,
            "ratio": ratio,
            "meets_target": _meets(ratio, inputs.ratio_target),
        }
    return {
        "statistic": inputs.statistic,
        "demo_transitions": demo,
        "expert_steps": inputs.expert_steps,
        "n_seeds": n,
        "expert_share_per_seed": share,
        "countings": countings,
        "explanation": (
            "Times are the reached-and-held ones (the verdict's). "
            "The baseline is charged its PPO steps only. (a) charges each fine-tuned run its "
            "PPO fine-tuning steps to threshold. (b) adds the demonstration dataset's "
            f"{demo} transitions to every fine-tuned run (the dataset is shared by the seeds, "
            "so charging it in full to each is conservative). (c) also adds the expert's "
            f"{inputs.expert_steps} training steps. The expert was trained once and serves "
            f"all {n} seeds: 'amortised' charges each seed ceil({inputs.expert_steps}/{n}) = "
            f"{share} steps; 'total' charges the whole expert to every seed, the cost of "
            "producing a single pre-trained agent from nothing."
        ),
    }


# ------------------------------------------------------------------------- curves


def _success_bands(inputs: ComparisonInputs) -> dict[str, Any]:
    """Mean success per arm with a bootstrap CI band on a grid common to both arms.

    The grid is the union of every run's evaluation steps; each arm's band stops at its
    shortest run's last evaluation, so no run is extended past its end.
    """
    arrays = {
        arm: {s: _arrays(rows, f"{arm} seed {s}") for s, rows in inputs.curves(arm).items()}
        for arm in ARMS
    }
    grid = np.unique(np.concatenate([a[0] for arm in ARMS for a in arrays[arm].values()]))
    out: dict[str, Any] = {"confidence": CONFIDENCE}
    for arm in ARMS:
        runs = [arrays[arm][s] for s in sorted(arrays[arm])]
        end = min(t[-1] for t, _, _ in runs)
        g = grid[grid <= end]
        band = mean_curve_with_ci(
            [(t, s) for t, s, _ in runs], g,
            n_resamples=inputs.n_resamples, confidence=CONFIDENCE, seed=inputs.seed,
        )
        out[arm] = {
            "grid": band.grid.astype(np.int64),
            "mean": band.mean,
            "ci_low": band.ci_low,
            "ci_high": band.ci_high,
            "n_runs": band.n_runs,
        }
    return to_jsonable(out)


# ------------------------------------------------------------------------ compare


def compare(inputs: ComparisonInputs) -> dict[str, Any]:
    """Compute the whole comparison; deterministic and JSON-safe (NaN stored as ``None``).

    Top-level keys: ``schema_version``, ``scenario``, ``seeds``, ``inputs`` (see
    :func:`inputs_block`), ``threshold``, ``auc_span``, ``runs`` (arm -> seed -> per-run
    numbers), ``arms`` (arm -> summary), ``ratio`` (k in a row) and ``ratio_held``
    (reached and held), each ``iqm``/``median`` -> ratio dict or ``None``, ``verdict``
    (on ``ratio_held``: ``target_met``, ``ci_high``, ``bound``, ``reasons``,
    ``sentence``), ``step_countings`` (held times), ``success_curves`` and ``notes``.

    :param inputs: curves and settings.
    :return: the result dict; seeds are string keys under ``runs``.
    """
    arrays = {
        arm: {s: _arrays(inputs.curves(arm)[s], f"{arm} seed {s}") for s in inputs.seeds}
        for arm in ARMS
    }
    ends = {(arm, s): int(a[0][-1]) for arm in ARMS for s, a in arrays[arm].items()}
    max_steps = min(ends.values())
    if max_steps <= 0:
        short = [f"{arm} seed {s}" for (arm, s), e in ends.items() if e <= 0]
        raise ValueError(f"{short} evaluated only at step 0; the curves have no span to compare")
    runs: dict[str, dict[str, Any]] = {arm: {} for arm in ARMS}
    results: dict[str, list[ThresholdResult]] = {arm: [] for arm in ARMS}
    held: dict[str, list[ThresholdResult]] = {arm: [] for arm in ARMS}
    for arm in ARMS:
        for s in inputs.seeds:
            summary, res, res_held = _run_summary(*arrays[arm][s], inputs, max_steps)
            runs[arm][str(s)] = summary
            results[arm].append(res)
            held[arm].append(res_held)
    arms = {arm: _arm_summary(runs[arm], inputs) for arm in ARMS}
    ft, bl = results["finetuned"], results["baseline"]
    ratio = {st: _ratio(ft, bl, st, inputs) for st in _STAT_LABEL}
    ratio_held = {st: _ratio(held["finetuned"], held["baseline"], st, inputs) for st in _STAT_LABEL}
    verdict = _verdict(ratio_held[inputs.statistic], arms, inputs)
    longest = max(ends.values())
    auc_note = (
        f"AUC of success is taken over steps [0, {max_steps}] for every run of both arms: "
        f"{max_steps} is the shortest run's last evaluation (min over all "
        f"{len(ends)} runs), so longer runs are cut there"
        + (f" (the longest ran to {longest})." if longest > max_steps else ".")
    )
    notes = [auc_note]
    for arm in ARMS:
        for key, what in (("", "k in a row"), ("_held", "reached and held")):
            if arms[arm][f"n_censored{key}"]:
                notes.append(
                    f"{arm}: {arms[arm][f'n_censored{key}']} of {arms[arm]['n_runs']} runs "
                    f"censored on the {what} time (seeds {arms[arm][f'censored{key}_seeds']}); "
                    "they enter every statistic at their last evaluated step, a lower bound "
                    "on their true time."
                )
    result = {
        "schema_version": SCHEMA_VERSION,
        "scenario": inputs.scenario,
        "seeds": inputs.seeds,
        "inputs": inputs_block(inputs),
        "threshold": {
            "target_success": inputs.target_success,
            "max_collision": inputs.max_collision,
            "k": inputs.k,
            "definition": (
                f"first evaluation step of the first {inputs.k} consecutive evaluations with "
                f"success >= {inputs.target_success:.2f} and collision <= "
                f"{inputs.max_collision:.2f}; right-censored at the last evaluated step "
                "when never reached"
            ),
            "hold_fraction": inputs.hold_fraction,
            "held_definition": (
                f"first evaluation step that meets the bar and from which at least "
                f"{inputs.hold_fraction:.0%} of all evaluations to the end of the run (that "
                f"one included, at least {inputs.k} of them) meet it; right-censored at the "
                "last evaluated step when there is none"
            ),
            "verdict_on": "held",
        },
        "auc_span": {"start": 0, "max_steps": max_steps, "note": auc_note},
        "runs": runs,
        "arms": arms,
        "ratio": ratio,
        "ratio_held": ratio_held,
        "verdict": verdict,
        "step_countings": _step_countings(held["finetuned"], held["baseline"], inputs),
        "success_curves": _success_bands(inputs),
        "notes": notes,
    }
    return to_jsonable(result)


# ----------------------------------------------------------------------- markdown


def _steps(x: float | int | None) -> str:
    return "n/a" if x is None else f"{x:.0f}"


def _rate(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ci(summary: Mapping[str, Any] | None, digits: int = 2) -> str:
    """``mean [low, high]`` of a :func:`summarize` dict."""
    if summary is None:
        return "n/a"
    mean, lo, hi = summary["mean"], summary["ci_low"], summary["ci_high"]
    return f"{_rate(mean, digits)} [{_rate(lo, digits)}, {_rate(hi, digits)}]"


def _ttt(r: Mapping[str, Any]) -> str:
    """A run's time to threshold; censored runs as ``> N (censored)``."""
    if r["censored"]:
        return f"> {r['censored_at']} (censored)"
    return str(r["steps"])


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def summary_markdown(result: Mapping[str, Any]) -> str:
    """The verdict sentence and the per-arm summary table (for the Dagster UI too)."""

    def times(t: Mapping[str, Any], key: str) -> str:
        lb = ">= " if t["is_lower_bound"] else ""
        return f"{lb}{_steps(t[key])} [{_steps(t[key + '_ci'][0])}, {_steps(t[key + '_ci'][1])}]"

    rows = []
    for arm in ARMS:
        a = result["arms"][arm]
        held, kinrow = a["time_to_held_threshold"], a["time_to_threshold"]
        rows.append([
            arm,
            str(a["n_runs"]),
            times(held, "iqm"),
            times(held, "median"),
            f"{a['n_censored_held']} of {a['n_runs']}",
            times(kinrow, "iqm"),
            f"{a['n_censored']} of {a['n_runs']}",
            _ci(a["held_after_threshold"]),
            _ci(a["jumpstart"]),
            _ci(a["auc_success"], 3),
            _ci(a["final_success"]),
            _ci(a["final_collision"]),
        ])
    k = result["threshold"]["k"]
    header = [
        "arm", "seeds", "held time to threshold, IQM [95% CI]", "median [95% CI]",
        "censored (held)", f"{k} in a row, IQM [95% CI]", f"censored ({k} in a row)",
        f"bar held after {k} in a row", "jumpstart",
        f"AUC of success (0-{result['auc_span']['max_steps']})",
        "final success", "final collision",
    ]
    head, rest = result["verdict"]["sentence"].split(": ", 1)  # "Target met" / "Target NOT met"
    return "\n".join([f"**{head}:** {rest}", "", *_table(header, rows)]) + "\n"


def _ratio_section(result: Mapping[str, Any]) -> list[str]:
    target = result["inputs"]["ratio_target"]
    k = result["threshold"]["k"]
    rows = []
    for key, what in (("ratio_held", "reached and held"), ("ratio", f"{k} in a row")):
        for st, label in _STAT_LABEL.items():
            r = result[key][st]
            if r is None:
                rows.append([what, label, "undefined", "-",
                             "a baseline run reached the threshold at step 0"])
                continue
            rows.append([
                what, label, f"{r['point']:.3f}", f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
                _BOUND_READING[r["bound"]],
            ])
    return [
        "## Ratio fine-tuned / baseline (fine-tuning steps only)",
        "",
        *_table(["time to threshold", "statistic", "ratio", "95% CI (stratified bootstrap)",
                 "reading"], rows),
        "",
        f"Target: ratio <= {target:.2f}, judged on the CI upper bound of the "
        f"{_STAT_LABEL[result['verdict']['statistic']]} ratio of the reached-and-held time. "
        "A ratio that is only a lower bound, or a fine-tuned arm that never reaches and holds "
        f"the threshold, never meets it. The {k}-in-a-row ratio is shown for comparison with "
        "the field's usual definition: where the two differ, a run touched the bar and did "
        "not keep it.",
        "",
    ]


def _per_seed_section(result: Mapping[str, Any]) -> list[str]:
    rows = []
    for seed in result["seeds"]:
        for arm in ARMS:
            r = result["runs"][arm][str(seed)]
            coll = r["collision_at_threshold"]
            rows.append([
                str(seed), arm, _ttt(r["time_to_held_threshold"]),
                _rate(r["held_after_held_threshold"]),
                _ttt(r["time_to_threshold"]),
                "n/a (censored)" if r["time_to_threshold"]["censored"] else _rate(coll),
                _rate(r["held_after_threshold"]), _rate(r["min_success_after_threshold"]),
                _rate(r["jumpstart"]), _rate(r["auc_success"], 3), _rate(r["final_success"]),
                _rate(r["final_collision"]), str(r["final_timesteps"]),
            ])
    k = result["threshold"]["k"]
    header = [
        "seed", "arm", "held time to threshold (steps)", "bar held after held time",
        f"{k} in a row (steps)", "collision at it", "bar held after it",
        "lowest success after it", "jumpstart", "AUC", "final success", "final collision",
        "last evaluated step",
    ]
    return [
        "## Per seed", "", *_table(header, rows), "",
        "*Bar held after*: the share of evaluations from that threshold step on that meet the "
        "bar (at least the hold fraction for the held time, by its definition); *lowest "
        f"success after it*: the lowest success from the {k}-in-a-row step on (n/a when "
        "censored).", "",
    ]


def _countings_section(result: Mapping[str, Any]) -> list[str]:
    sc = result["step_countings"]
    target = result["inputs"]["ratio_target"]
    label = _STAT_LABEL[sc["statistic"]]
    rows = []
    for key, c in sc["countings"].items():
        r = c["ratio"]
        if r is None:
            rows.append([key, c["label"], str(c["charged_per_finetuned_seed"]), "-", "-",
                         "undefined", "no"])
            continue
        rows.append([
            key, c["label"], str(c["charged_per_finetuned_seed"]),
            _steps(r["finetuned_value"]), _steps(r["baseline_value"]),
            f"{r['point']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] ({r['bound']})",
            "yes" if c["meets_target"] else "no",
        ])
    header = [
        "counting", "what is counted", "extra steps per fine-tuned seed",
        f"fine-tuned {label}", f"baseline {label}", "ratio [95% CI] (bound)",
        f"<= {target:.2f}?",
    ]
    return [
        "## Step countings (REFERENCE §5, held time)", "", *_table(header, rows), "",
        sc["explanation"], "",
    ]


def _inputs_section(result: Mapping[str, Any]) -> list[str]:
    inp = result["inputs"]
    lines = [
        "## Inputs", "",
        f"Demonstration transitions: {inp['demo_transitions']}; expert training steps: "
        f"{inp['expert_steps']}. Bootstrap: {inp['n_resamples']} resamples, seed "
        f"{inp['seed']}, {inp['confidence']:.0%} percentile intervals.", "",
    ]
    if inp["run_dirs"] is None:
        return lines + ["Curves were passed in memory; no run directories recorded.", ""]
    rows = [
        [arm, seed, f"`{inp['run_dirs'][arm][seed]}`", inp["curve_sha256"][arm][seed][:12]]
        for seed in map(str, inp["seeds"]) for arm in ARMS
    ]
    return lines + [*_table(["arm", "seed", "run directory", "curve sha256"], rows), ""]


def render_markdown(result: Mapping[str, Any]) -> str:
    """``report.md``: verdict, summary table, ratios, per-seed table, step countings,
    plots, inputs and how to recompute."""
    seeds = ", ".join(map(str, result["seeds"]))
    lines = [
        f"# Sample efficiency on {result['scenario']}: BC-pretrained PPO vs PPO from scratch",
        "",
        f"Arms: `finetuned` (PPO initialised from a BC policy) and `baseline` (PPO from "
        f"scratch), matched seeds {seeds}.",
        "",
        summary_markdown(result),
        f"Held time to threshold (the verdict's): {result['threshold']['held_definition']}. "
        f"{result['threshold']['k']} in a row: {result['threshold']['definition']}. "
        "Censored runs are shown as "
        "`> N (censored)` with N their last evaluated step; a time marked `>=` is a lower "
        "bound because some runs were censored. Rates are means over seeds [95% bootstrap "
        "CI].",
        "",
        *_ratio_section(result),
        *_per_seed_section(result),
        *_countings_section(result),
        "## Notes", "",
        *[f"- {note}" for note in result["notes"]], "",
        "## Plots", "",
        "![success against timesteps](success_curves.png)", "",
        "![time to threshold per seed](time_to_threshold.png)", "",
        *_inputs_section(result),
        "## How to recompute", "",
        "Every number above comes from the saved learning curves listed under Inputs. "
        "To recompute them and check they match:", "",
        "```", RECOMPUTE_COMMAND.replace("<report-dir>", "<directory of this report>"), "```",
        "",
        "It reads `report.json` (run directories, thresholds, bootstrap settings), re-reads "
        "each `curve.jsonl`, recomputes, and exits 0 when every number matches, 1 when some "
        "differ (it lists them).",
        "",
    ]
    return "\n".join(lines)


# -------------------------------------------------------------------------- plots


def _floats(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def success_curves_png(result_or_inputs: Mapping[str, Any] | ComparisonInputs) -> bytes:
    """Success against timesteps: each arm's mean over seeds with a 95% bootstrap CI band,
    and the target line.

    :param result_or_inputs: a :func:`compare` result (uses its ``success_curves``) or the
        :class:`ComparisonInputs` (bands computed here).
    :return: PNG bytes (fixed metadata: same data, same bytes).
    """
    if isinstance(result_or_inputs, ComparisonInputs):
        bands = _success_bands(result_or_inputs)
        target, scenario = result_or_inputs.target_success, result_or_inputs.scenario
    else:
        bands = result_or_inputs["success_curves"]
        target = result_or_inputs["inputs"]["target_success"]
        scenario = result_or_inputs["scenario"]
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for arm in ARMS:
        b = bands[arm]
        g, color = np.asarray(b["grid"], dtype=np.float64), _COLORS[arm]
        n = max(b["n_runs"]) if b["n_runs"] else 0
        ax.fill_between(g, _floats(b["ci_low"]), _floats(b["ci_high"]), color=color, alpha=0.2,
                        lw=0)
        ax.plot(g, _floats(b["mean"]), color=color, marker="o", ms=2.5, lw=1.5,
                label=f"{arm} (mean of {n} seeds, 95% CI band)")
    ax.axhline(target, ls="--", lw=1, color="black", alpha=0.7, label=f"target {target:.2f}")
    ax.set_xlabel("environment steps (PPO)")
    ax.set_ylabel("evaluated success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{scenario}: success against timesteps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return png_bytes(fig)


def _ttt_panel(ax: Any, result: Mapping[str, Any], key: str, ratio_key: str, what: str,
               top: float) -> None:
    """One panel of :func:`time_to_threshold_png`: paired bars per seed for ``key``."""
    seeds = result["seeds"]
    x = np.arange(len(seeds), dtype=np.float64)
    width = 0.38
    for offset, arm in zip((-width / 2, width / 2), ARMS, strict=True):
        color = _COLORS[arm]
        for xi, seed in zip(x + offset, seeds, strict=True):
            r = result["runs"][arm][str(seed)][key]
            if not r["censored"]:
                ax.bar(xi, r["steps"], width, color=color, edgecolor=color)
                continue
            h = r["censored_at"]
            ax.bar(xi, h, width, fill=False, hatch="//", edgecolor=color, ls="--")
            ax.annotate("", xy=(xi, h + 0.12 * top), xytext=(xi, h),
                        arrowprops={"arrowstyle": "->", "color": color, "lw": 1.5})
            ax.text(xi, h + 0.13 * top, "censored", ha="center", va="bottom", fontsize=7,
                    color=color)
        ax.axhline(result["arms"][arm][key]["iqm"], color=color, ls=":", lw=1)
    ax.set_xticks(x, [str(s) for s in seeds])
    ax.set_xlabel("seed")
    ax.set_ylim(0, top * 1.25)
    ratio = result[ratio_key][result["verdict"]["statistic"]]
    ratio_txt = "undefined" if ratio is None else f"{ratio['point']:.3f} ({ratio['bound']})"
    ax.set_title(f"{what}; ratio {ratio_txt}", fontsize=9)
    ax.grid(axis="y", alpha=0.3)


def time_to_threshold_png(result: Mapping[str, Any]) -> bytes:
    """Per seed, both arms' time to threshold as paired bars, reached and held (left, the
    verdict's) and k in a row (right); censored runs hollow and hatched up to their last
    evaluated step, with an arrow and "censored" above.

    :param result: a :func:`compare` result.
    :return: PNG bytes.
    """
    seeds = result["seeds"]
    keys = ("time_to_held_threshold", "time_to_threshold")
    top = max(
        result["runs"][arm][str(s)][key]["time"] for key in keys for arm in ARMS for s in seeds
    )
    top = max(float(top), 1.0)
    fig, axes = plt.subplots(1, 2, figsize=(2 * max(4.0, 0.9 * len(seeds) + 1.6), 4.0),
                             sharey=True)
    _ttt_panel(axes[0], result, keys[0], "ratio_held", "reached and held (verdict)", top)
    _ttt_panel(axes[1], result, keys[1], "ratio", f"{result['threshold']['k']} in a row", top)
    axes[0].set_ylabel("environment steps to threshold")
    handles = [
        Patch(color=_COLORS["finetuned"], label="finetuned: reached"),
        Patch(color=_COLORS["baseline"], label="baseline: reached"),
        Patch(fill=False, hatch="//", edgecolor="gray", ls="--",
              label="censored (bar = last evaluated step)"),
        Line2D([], [], color="gray", ls=":", label="arm IQM"),
    ]
    fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=4, frameon=False)
    fig.suptitle(f"{result['scenario']}: time to threshold per seed")
    fig.subplots_adjust(bottom=0.24, top=0.85)
    return png_bytes(fig)


# ------------------------------------------------------------------------ writing


def write_report(
    out_dir: str | os.PathLike[str], inputs: ComparisonInputs, result: Mapping[str, Any]
) -> list[Path]:
    """Write :data:`REPORT_FILES` into ``out_dir`` atomically; never overwrite.

    :param out_dir: the report directory (e.g. ``output/reports/<scenario>/<run-id>/``);
        created if missing.
    :param inputs: the inputs ``result`` was computed from; must come from
        :func:`load_inputs_from_dirs` so the report records where its curves live.
    :param result: :func:`compare` ``(inputs)``.
    :return: paths of report.json, report.md, success_curves.png, time_to_threshold.png.
    :raises FileExistsError: if any of the four files exists (nothing is written).
    :raises ValueError: if ``inputs`` has no run directories or ``result`` was computed
        from other inputs.
    """
    out_dir = Path(out_dir)
    if inputs.run_dirs is None:
        raise ValueError(
            "inputs carry no run directories, so the report could not be recomputed; "
            "build them with load_inputs_from_dirs"
        )
    if result.get("inputs") != inputs_block(inputs):
        raise ValueError("result was not computed from these inputs; call compare(inputs)")
    paths = [out_dir / name for name in REPORT_FILES]
    taken = [p.name for p in paths if os.path.lexists(p)]
    if taken:
        raise FileExistsError(f"{out_dir} already holds {taken}; write a report to a new directory")
    markdown = render_markdown(result)
    curves_png, ttt_png = success_curves_png(result), time_to_threshold_png(result)
    atomic_write_json(paths[0], result)
    atomic_write_text(paths[1], markdown)
    atomic_write_bytes(paths[2], curves_png)
    atomic_write_bytes(paths[3], ttt_png)
    return paths
