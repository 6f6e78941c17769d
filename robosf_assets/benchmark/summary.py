"""Across scenarios: one table and one figure from the per-scenario comparison reports,
and one cross-scenario aggregate with a CI.

The ratio is the verdict's: the reached-and-held time to threshold (report schema >= 3);
the k-in-a-row ratio is shown beside it.

The aggregate (:func:`cross_scenario_iqm`) is where rliable's task stratification applies:
tasks are scenarios, runs are seeds. Each fine-tuned run's held time is divided by its
scenario's baseline IQM (a baseline-normalised time, as rliable normalises scores per
task; below 1 means fewer steps than PPO from scratch), the IQM is taken over all runs of
all scenarios, and the 95% CI comes from rliable's ``StratifiedIndependentBootstrap``:
seeds are resampled within each scenario, each arm independently. Censored runs enter at
their censoring step (as in the reports), which makes the aggregate a bound, read as for a
ratio (:attr:`~robosf_assets.benchmark.efficiency.RatioResult.bound`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from robosf_assets.benchmark.intervals import interval_estimate
from robosf_assets.benchmark.plots import plt, png_bytes
from robosf_assets.benchmark.stats import iqm

__all__ = [
    "AGGREGATE_CONFIDENCE",
    "aggregate_markdown",
    "cross_scenario_iqm",
    "summary_markdown",
    "summary_png",
    "summary_rows",
]

AGGREGATE_CONFIDENCE = 0.95
"""Coverage of the cross-scenario CI."""


def _held_times(report: Mapping[str, Any], arm: str) -> tuple[list[int], list[bool]] | None:
    """Per seed (sorted) the held time and whether it is censored; ``None`` for a report
    of schema 2 (no held time)."""
    if report.get("schema_version", 2) < 3:
        return None
    runs = report["runs"][arm]
    seeds = sorted(runs, key=int)
    held = [runs[s]["time_to_held_threshold"] for s in seeds]
    return [int(h["time"]) for h in held], [bool(h["censored"]) for h in held]


def summary_rows(reports: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per scenario from ``compare()`` results keyed by scenario."""
    rows = []
    for scenario in sorted(reports):
        v = reports[scenario]["verdict"]
        arms = reports[scenario]["arms"]
        # a report of schema 2 (before the held time) has its verdict on k in a row
        held = reports[scenario].get("schema_version", 2) >= 3
        kinrow = reports[scenario]["ratio"][v["statistic"]]
        held_after = arms["finetuned"].get("held_after_held_threshold")
        censored = "n_censored_held" if held else "n_censored"
        ft_times = _held_times(reports[scenario], "finetuned")
        bl_times = _held_times(reports[scenario], "baseline")
        rows.append({
            "scenario": scenario,
            "ratio": v.get("point"),
            "ci_low": v.get("ci_low"),
            "ci_high": v.get("ci_high"),
            "bound": v.get("bound"),
            "target_met": bool(v["target_met"]),
            "ratio_k_in_a_row": None if kinrow is None else kinrow["point"],
            "verdict_on": "held" if held else "k in a row",
            "finetuned_censored": arms["finetuned"][censored],
            "baseline_censored": arms["baseline"][censored],
            "finetuned_held_after_held": None if held_after is None else held_after["mean"],
            "seeds": arms["finetuned"]["n_runs"],
            "sentence": v["sentence"],
            # per seed (sorted), for the cross-scenario aggregate; None for schema 2
            "finetuned_held_times": None if ft_times is None else ft_times[0],
            "finetuned_held_censored": None if ft_times is None else ft_times[1],
            "baseline_held_times": None if bl_times is None else bl_times[0],
            "baseline_held_censored": None if bl_times is None else bl_times[1],
        })
    return rows


def _bound(ft_censored: bool, bl_censored: bool) -> str:
    if ft_censored and bl_censored:
        return "indeterminate"
    return "upper" if bl_censored else "lower" if ft_censored else "exact"


def cross_scenario_iqm(
    rows: Sequence[Mapping[str, Any]], *, n_resamples: int = 5000, seed: int = 0
) -> dict[str, Any] | None:
    """IQM over all scenarios' fine-tuned runs of the held time divided by the scenario's
    baseline IQM, with rliable's stratified bootstrap CI (see the module docstring).

    :param rows: :func:`summary_rows`; rows without held times (schema 2) or whose
        baseline IQM is 0 are left out and named in ``left_out``.
    :param n_resamples: bootstrap replicates.
    :param seed: bootstrap seed.
    :return: ``{"statistic", "point", "ci_low", "ci_high", "confidence", "bound",
        "scenarios", "n_runs", "left_out", "n_resamples", "seed"}``, or ``None`` when no
        scenario qualifies.
    """
    used, left_out, ft, bl, ft_cens, bl_cens = [], [], [], [], False, False
    for r in rows:
        if r.get("finetuned_held_times") is None or r.get("baseline_held_times") is None:
            left_out.append(r["scenario"])
            continue
        b = np.asarray(r["baseline_held_times"], dtype=np.float64)
        if iqm(b) <= 0:
            left_out.append(r["scenario"])
            continue
        used.append(r["scenario"])
        ft.append(np.asarray(r["finetuned_held_times"], dtype=np.float64)[:, None])
        bl.append(b[:, None])
        ft_cens |= any(r["finetuned_held_censored"])
        bl_cens |= any(r["baseline_held_censored"])
    if not used:
        return None
    k = len(used)

    def normalised_iqm(*arms: np.ndarray) -> np.ndarray:
        scores = [f[:, 0] / iqm(b[:, 0]) for f, b in zip(arms[:k], arms[k:], strict=True)]
        return np.array([iqm(np.concatenate(scores))])

    point, low, high = interval_estimate(
        [*ft, *bl], normalised_iqm, n_resamples=n_resamples, confidence=AGGREGATE_CONFIDENCE,
        seed=seed,
    )
    return {
        "statistic": "IQM of fine-tuned held time / the scenario's baseline IQM",
        "point": float(point[0]),
        "ci_low": float(low[0]),
        "ci_high": float(high[0]),
        "confidence": AGGREGATE_CONFIDENCE,
        "bound": _bound(ft_cens, bl_cens),
        "scenarios": used,
        "n_runs": int(sum(f.shape[0] for f in ft)),
        "left_out": left_out,
        "n_resamples": int(n_resamples),
        "seed": int(seed),
    }


def aggregate_markdown(aggregate: Mapping[str, Any] | None) -> str:
    """One paragraph for :func:`cross_scenario_iqm`'s result."""
    if aggregate is None:
        return "**Across scenarios:** no scenario has held times (schema 3) to aggregate."
    a = aggregate
    text = (
        f"**Across scenarios** (IQM over {a['n_runs']} fine-tuned runs in "
        f"{len(a['scenarios'])} scenario(s) of the held time to threshold divided by the "
        f"scenario's baseline IQM; {a['confidence']:.0%} CI by rliable, seeds resampled "
        f"within scenarios): {a['point']:.2f} [{a['ci_low']:.2f}, {a['ci_high']:.2f}], "
        f"{a['bound']}."
    )
    if a["left_out"]:
        text += f" Left out (no held times or a baseline IQM of 0): {', '.join(a['left_out'])}."
    return text


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def summary_markdown(
    rows: list[dict[str, Any]], ratio_target: float,
    aggregate: Mapping[str, Any] | None | str = "compute",
) -> str:
    """One row per scenario: the held-time ratio (the verdict's) with its CI, the
    k-in-a-row ratio, censoring, the fine-tuned arm's share of evaluations meeting the
    bar after its held time, and the verdict; then the cross-scenario IQM.

    :param aggregate: :func:`cross_scenario_iqm`'s result; by default computed here from
        ``rows`` (5,000 resamples, seed 0).
    """
    if isinstance(aggregate, str):
        aggregate = cross_scenario_iqm(rows)
    lines = [
        "| scenario | seeds | ratio fine-tuned / baseline (held time) | 95% CI | bound "
        "| ratio (k in a row) | censored, held (ft / base) | fine-tuned: bar met after held time "
        f"| target <= {ratio_target:.2f} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['seeds']} | {_fmt(r['ratio'])} | [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | "
            f"{r['bound'] or 'n/a'} | {_fmt(r.get('ratio_k_in_a_row'))} | "
            f"{r['finetuned_censored']} / {r['baseline_censored']} | "
            f"{_fmt(r.get('finetuned_held_after_held'))} | "
            f"{'met' if r['target_met'] else 'NOT met'} |"
        )
    return "\n".join([*lines, "", aggregate_markdown(aggregate)])


def summary_png(rows: list[dict[str, Any]], ratio_target: float) -> bytes:
    """The ratio per scenario with its CI, against the target line."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for i, r in enumerate(rows):
        if r["ratio"] is None:
            ax.text(i, 0.05, "undefined", ha="center", fontsize=8)
            continue
        lo, hi = r["ci_low"], r["ci_high"]
        ax.errorbar(i, r["ratio"], yerr=[[r["ratio"] - lo], [hi - r["ratio"]]], fmt="o", capsize=5,
                    color="tab:green" if r["target_met"] else "tab:red")
    ax.axhline(ratio_target, ls="--", color="grey", label=f"target {ratio_target:.2f}")
    ax.axhline(1.0, ls=":", color="grey", label="no gain")
    ax.set_xticks(range(len(rows)), [r["scenario"] for r in rows])
    ax.set_ylabel("held steps to threshold: fine-tuned / baseline")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return png_bytes(fig)
