"""The report's two figures as PNG bytes, drawn from a ``report.json`` dict: success
against timesteps with CI bands, and time to threshold per seed (censored runs hatched)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from robosf_assets.benchmark.efficiency import CurveBand
from robosf_assets.benchmark.plots import plt, png_bytes
from robosf_assets.benchmark.report_compute import success_bands
from robosf_assets.benchmark.report_inputs import ARMS, ComparisonInputs

__all__ = ["success_curves_png", "time_to_threshold_png"]

_COLORS = {"finetuned": "tab:green", "baseline": "tab:blue"}


def _band(b: CurveBand) -> dict[str, Any]:
    return {"grid": b.grid, "mean": list(b.mean), "ci_low": list(b.ci_low),
            "ci_high": list(b.ci_high), "n_runs": list(b.n_runs)}


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
        bands = {arm: _band(b) for arm, b in success_bands(result_or_inputs).items()}
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
