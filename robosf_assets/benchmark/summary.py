"""Across scenarios: one table and one figure from the per-scenario comparison reports.

The ratio is the verdict's: the reached-and-held time to threshold (report schema 3); the
k-in-a-row ratio is shown beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from robosf_assets.benchmark.plots import plt, png_bytes


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
        })
    return rows


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def summary_markdown(rows: list[dict[str, Any]], ratio_target: float) -> str:
    """One row per scenario: the held-time ratio (the verdict's) with its CI, the
    k-in-a-row ratio, censoring, the fine-tuned arm's share of evaluations meeting the
    bar after its held time, and the verdict."""
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
    return "\n".join(lines)


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
