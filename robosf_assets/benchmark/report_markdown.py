"""``report.md`` and the Dagster UI's summary, rendered from a ``report.json`` dict
(:func:`~robosf_assets.benchmark.report_result.result_dict`). Pure functions: the same
dict gives the same text, so :mod:`.recompute` can check ``report.md`` against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from robosf_assets.benchmark.report_inputs import ARMS
from robosf_assets.benchmark.report_result import STAT_LABEL

__all__ = ["RECOMPUTE_COMMAND", "render_markdown", "verdict_markdown"]

RECOMPUTE_COMMAND = "python -m robosf_assets.benchmark.recompute <report-dir>"
"""The documented command that recomputes a report from its saved curves."""
_BOUND_READING = {
    "exact": "exact (no run censored)",
    "upper": "upper bound (some baseline runs censored: the true ratio is at most this)",
    "lower": "lower bound (some fine-tuned runs censored: the true ratio is at least this)",
    "indeterminate": "indeterminate (runs censored in both arms)",
}


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


def verdict_markdown(result: Mapping[str, Any]) -> str:
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
        for st, label in STAT_LABEL.items():
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
        f"{STAT_LABEL[result['verdict']['statistic']]} ratio of the reached-and-held time. "
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
    label = STAT_LABEL[sc["statistic"]]
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
        f"{inp['seed']}, {inp['confidence']:.0%} percentile intervals by rliable (arms "
        "resampled independently).", "",
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
        verdict_markdown(result),
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
