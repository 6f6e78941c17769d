"""A :class:`~robosf_assets.benchmark.report_compute.Comparison` as the ``report.json``
dict: the numbers, laid out as schema :data:`SCHEMA_VERSION`, with the sentences a reader
needs (threshold definitions, the verdict's sentence and reasons, notes, the step
countings' explanation). Pure functions; the markdown and the plots render from this dict,
so a stored ``report.json`` re-renders to the same ``report.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robosf_assets.artifacts import to_jsonable
from robosf_assets.benchmark.efficiency import CurveBand, RatioResult, ThresholdResult
from robosf_assets.benchmark.report_compute import (
    RATE_KEYS,
    ArmNumbers,
    Comparison,
    RunNumbers,
    TimeStats,
    VerdictNumbers,
)
from robosf_assets.benchmark.report_inputs import ARMS, CONFIDENCE, inputs_block

__all__ = ["SCHEMA_VERSION", "STAT_LABEL", "result_dict"]

SCHEMA_VERSION = 4
"""Version of the ``report.json`` layout (3: the held time to threshold, judged on; 4: the
intervals are rliable's, recorded as ``inputs.interval_method``)."""
STAT_LABEL = {"iqm": "IQM", "median": "median"}
"""How each statistic is named in prose."""
_COUNTING_LABEL = {
    "a": "fine-tuning steps only",
    "b": "fine-tuning + demonstration transitions",
    "c_amortised": "(b) + expert training steps shared by the seeds",
    "c_total": "(b) + all expert training steps, per seed",
}


def _ttt(r: ThresholdResult) -> dict[str, Any]:
    return {"steps": r.steps, "censored": r.censored, "censored_at": r.censored_at,
            "time": r.time}


def _run(r: RunNumbers) -> dict[str, Any]:
    return {
        "time_to_threshold": _ttt(r.time_to_threshold),
        "collision_at_threshold": r.collision_at_threshold,
        "held_after_threshold": r.held_after_threshold,
        "min_success_after_threshold": r.min_success_after_threshold,
        "time_to_held_threshold": _ttt(r.time_to_held_threshold),
        "collision_at_held_threshold": r.collision_at_held_threshold,
        "held_after_held_threshold": r.held_after_held_threshold,
        "jumpstart": r.jumpstart,
        "auc_success": r.auc_success,
        "final_success": r.final_success,
        "final_collision": r.final_collision,
        "final_timesteps": r.final_timesteps,
        "n_evals": r.n_evals,
    }


def _times(t: TimeStats) -> dict[str, Any]:
    return {"iqm": t.iqm, "iqm_ci": list(t.iqm_ci), "median": t.median,
            "median_ci": list(t.median_ci), "is_lower_bound": t.is_lower_bound}


def _arm(a: ArmNumbers) -> dict[str, Any]:
    return {
        "n_runs": a.n_runs,
        "n_censored": len(a.censored_seeds),
        "censored_seeds": list(a.censored_seeds),
        "n_censored_held": len(a.censored_held_seeds),
        "censored_held_seeds": list(a.censored_held_seeds),
        "time_to_threshold": _times(a.time_to_threshold),
        "time_to_held_threshold": _times(a.time_to_held_threshold),
        **{key: a.rates[key] for key in RATE_KEYS},
    }


def _ratio(r: RatioResult | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "statistic": r.statistic, "point": r.point, "ci_low": r.ci_low, "ci_high": r.ci_high,
        "confidence": r.confidence, "bound": r.bound, "finetuned_value": r.finetuned_value,
        "baseline_value": r.baseline_value, "any_censored_finetuned": r.any_censored_finetuned,
        "any_censored_baseline": r.any_censored_baseline,
    }


def _reason(code: str, v: VerdictNumbers, c: Comparison) -> str:
    """The sentence for one of :class:`VerdictNumbers`' reason codes."""
    ft = c.arms["finetuned"]
    n_seeds, n_cens = ft.n_runs, len(ft.censored_held_seeds)
    label, target, r = STAT_LABEL[v.statistic], v.ratio_target, v.ratio
    if code == "all_finetuned_censored":
        return (f"the fine-tuned arm never reached the threshold (all {n_seeds} seeds "
                "censored) and held it")
    if code == "some_finetuned_censored":
        return (f"{n_cens} of {n_seeds} fine-tuned runs never reached the threshold and held "
                f"it (seeds {list(ft.censored_held_seeds)}); their times are lower bounds, so "
                "the ratio is only a lower bound and cannot show the target")
    if code == "ratio_undefined":
        return ("a baseline run reached the threshold at step 0, so the ratio is undefined "
                "(raise the target; jumpstart is the relevant measure)")
    if code == "ci_above_target":
        assert r is not None
        extra = (f" (the point estimate {r.point:.3f} alone would meet it)"
                 if r.point <= target else "")
        return (f"the {label} ratio's 95% CI upper bound {r.ci_high:.3f} exceeds the target "
                f"{target:.2f}{extra}")
    if code == "too_few_seeds":
        return (f"only {n_seeds} matched seed(s); at least {c.inputs.min_seeds} are needed "
                "for a CI to mean anything")
    raise ValueError(f"unknown verdict reason {code!r}")


def _verdict(c: Comparison) -> dict[str, Any]:
    v, r = c.verdict, c.verdict.ratio
    label, target = STAT_LABEL[v.statistic], v.ratio_target
    reasons = [_reason(code, v, c) for code in v.reasons]
    if v.target_met:
        assert r is not None
        sentence = (
            f"Target met: fine-tuned PPO reached and held the threshold in {r.point:.3f}x the "
            f"baseline's environment steps ({label} ratio, 95% CI [{r.ci_low:.3f}, "
            f"{r.ci_high:.3f}]), and the CI upper bound is <= {target:.2f}."
        )
        if r.bound == "upper":
            sentence += (
                f" {len(c.arms['baseline'].censored_held_seeds)} baseline run(s) never reached "
                "and held the threshold, so the true ratio is at most this: the verdict is "
                "conservative."
            )
    else:
        sentence = "Target NOT met: " + "; ".join(reasons) + "."
    return {
        "statistic": v.statistic,
        "ratio_target": target,
        "target_met": v.target_met,
        "point": None if r is None else r.point,
        "ci_low": None if r is None else r.ci_low,
        "ci_high": None if r is None else r.ci_high,
        "bound": None if r is None else r.bound,
        "reasons": reasons,
        "sentence": sentence,
        "counting": "a: fine-tuning steps only",
        "threshold": "held",
    }


def _step_countings(c: Comparison) -> dict[str, Any]:
    inp, n, share = c.inputs, c.arms["finetuned"].n_runs, c.expert_share
    demo = inp.demo_transitions
    return {
        "statistic": inp.statistic,
        "demo_transitions": demo,
        "expert_steps": inp.expert_steps,
        "n_seeds": n,
        "expert_share_per_seed": share,
        "countings": {
            sc.key: {"label": _COUNTING_LABEL[sc.key], "charged_per_finetuned_seed": sc.extra,
                     "ratio": _ratio(sc.ratio), "meets_target": sc.meets_target}
            for sc in c.countings
        },
        "explanation": (
            "Times are the reached-and-held ones (the verdict's). "
            "The baseline is charged its PPO steps only. (a) charges each fine-tuned run its "
            "PPO fine-tuning steps to threshold. (b) adds the demonstration dataset's "
            f"{demo} transitions to every fine-tuned run (the dataset is shared by the seeds, "
            "so charging it in full to each is conservative). (c) also adds the expert's "
            f"{inp.expert_steps} training steps. The expert was trained once and serves "
            f"all {n} seeds: 'amortised' charges each seed ceil({inp.expert_steps}/{n}) = "
            f"{share} steps; 'total' charges the whole expert to every seed, the cost of "
            "producing a single pre-trained agent from nothing."
        ),
    }


def _band(b: CurveBand) -> dict[str, Any]:
    return {"grid": b.grid.astype("int64"), "mean": b.mean, "ci_low": b.ci_low,
            "ci_high": b.ci_high, "n_runs": b.n_runs}


def _notes(c: Comparison) -> tuple[str, list[str]]:
    """The AUC span's note and the notes list (it first, then the censoring notes)."""
    auc_note = (
        f"AUC of success is taken over steps [0, {c.max_steps}] for every run of both arms: "
        f"{c.max_steps} is the shortest run's last evaluation (min over all "
        f"{c.n_runs_total} runs), so longer runs are cut there"
        + (f" (the longest ran to {c.longest})." if c.longest > c.max_steps else ".")
    )
    notes = [auc_note]
    for arm in ARMS:
        a = c.arms[arm]
        for seeds, what in ((a.censored_seeds, "k in a row"),
                            (a.censored_held_seeds, "reached and held")):
            if seeds:
                notes.append(
                    f"{arm}: {len(seeds)} of {a.n_runs} runs censored on the {what} time "
                    f"(seeds {list(seeds)}); they enter every statistic at their last "
                    "evaluated step, a lower bound on their true time."
                )
    return auc_note, notes


def _threshold(inp: Any) -> dict[str, Any]:
    return {
        "target_success": inp.target_success,
        "max_collision": inp.max_collision,
        "k": inp.k,
        "definition": (
            f"first evaluation step of the first {inp.k} consecutive evaluations with "
            f"success >= {inp.target_success:.2f} and collision <= {inp.max_collision:.2f}; "
            "right-censored at the last evaluated step when never reached"
        ),
        "hold_fraction": inp.hold_fraction,
        "held_definition": (
            f"first evaluation step that meets the bar and from which at least "
            f"{inp.hold_fraction:.0%} of all evaluations to the end of the run (that one "
            f"included, at least {inp.k} of them) meet it; right-censored at the last "
            "evaluated step when there is none"
        ),
        "verdict_on": "held",
    }


def result_dict(c: Comparison) -> dict[str, Any]:
    """The JSON-safe ``report.json`` dict of ``c`` (NaN stored as ``None``).

    Top-level keys: ``schema_version``, ``scenario``, ``seeds``, ``inputs``, ``threshold``,
    ``auc_span``, ``runs`` (arm -> seed string -> per-run numbers), ``arms``, ``ratio`` (k
    in a row) and ``ratio_held``, each ``iqm``/``median`` -> ratio dict or ``None``,
    ``verdict`` (on ``ratio_held``), ``step_countings`` (held times), ``success_curves``
    and ``notes``.
    """
    inp = c.inputs
    auc_note, notes = _notes(c)
    bands: Mapping[str, Any] = {"confidence": CONFIDENCE,
                                **{arm: _band(c.bands[arm]) for arm in ARMS}}
    result = {
        "schema_version": SCHEMA_VERSION,
        "scenario": inp.scenario,
        "seeds": inp.seeds,
        "inputs": inputs_block(inp),
        "threshold": _threshold(inp),
        "auc_span": {"start": 0, "max_steps": c.max_steps, "note": auc_note},
        "runs": {arm: {str(s): _run(c.runs[arm][s]) for s in inp.seeds} for arm in ARMS},
        "arms": {arm: _arm(c.arms[arm]) for arm in ARMS},
        "ratio": {st: _ratio(r) for st, r in c.ratio.items()},
        "ratio_held": {st: _ratio(r) for st, r in c.ratio_held.items()},
        "verdict": _verdict(c),
        "step_countings": _step_countings(c),
        "success_curves": to_jsonable(bands),
        "notes": notes,
    }
    return to_jsonable(result)
