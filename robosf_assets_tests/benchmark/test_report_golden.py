"""Golden test: the report of a fixed tiny input, numbers and markdown structure.

Written when report.py was split into compute / result / render / write and the intervals
moved to rliable: the numbers below are the ones the single-module report gave for this
input (checked by hand where noted). The bootstrap intervals are not pinned (rliable
resamples differently from the old hand-written bootstrap); they are masked as ``[CI]`` in
the markdown and only checked to bracket their point estimates.
"""

from __future__ import annotations

import re

import pytest

from robosf_assets.benchmark.report import ComparisonInputs, compare, compute, render_markdown

EVERY = 10_000


def _curve(success: list[float], collision: list[float]) -> list[dict]:
    return [{"timesteps": EVERY * i, "success": s, "collision": c}
            for i, (s, c) in enumerate(zip(success, collision, strict=True))]


FINETUNED = {
    0: _curve([0.5, 0.92, 0.95, 0.95, 0.95, 0.95, 0.95], [0.02] * 7),
    # on the bar from 20k, then a dip at 50k: 3 in a row at 20k, never reached and held
    1: _curve([0.4, 0.6, 0.91, 0.93, 0.95, 0.80, 0.95], [0.04] * 7),
    2: _curve([0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.88], [0.02] * 7),  # never: censored at 60k
}
BASELINE = {
    # success reaches 0.90 at 30k just as collision falls to 0.05 (both bounds inclusive)
    0: _curve([0.0, 0.2, 0.5, 0.9, 0.92, 0.95, 0.96], [0.10, 0.08, 0.06, 0.05, 0.04, 0.03, 0.02]),
    1: _curve([0.1, 0.3, 0.91, 0.95, 0.97, 0.96, 0.98], [0.02] * 7),
    2: _curve([0.0, 0.1, 0.2, 0.4, 0.95, 0.96, 0.97], [0.0] * 7),
}


def tiny_inputs() -> ComparisonInputs:
    return ComparisonInputs(scenario="tiny", finetuned=FINETUNED, baseline=BASELINE,
                            demo_transitions=5_000, expert_steps=30_000, n_resamples=100, seed=0)


def _times(result: dict, arm: str, key: str) -> list[tuple[int, bool]]:
    runs = result["runs"][arm]
    return [(runs[s][key]["time"], runs[s][key]["censored"]) for s in ("0", "1", "2")]


def test_golden_numbers() -> None:
    r = compare(tiny_inputs())
    assert _times(r, "finetuned", "time_to_threshold") == [(10_000, False), (20_000, False),
                                                            (60_000, True)]
    assert _times(r, "finetuned", "time_to_held_threshold") == [(10_000, False), (60_000, True),
                                                                 (60_000, True)]
    assert _times(r, "baseline", "time_to_threshold") == [(30_000, False), (20_000, False),
                                                           (40_000, False)]
    assert _times(r, "baseline", "time_to_held_threshold") == _times(r, "baseline",
                                                                      "time_to_threshold")
    ft1 = r["runs"]["finetuned"]["1"]
    assert (ft1["held_after_threshold"], ft1["min_success_after_threshold"]) == (0.8, 0.8)
    assert ft1["collision_at_threshold"] == 0.04 and ft1["held_after_held_threshold"] is None
    assert r["runs"]["baseline"]["0"]["collision_at_threshold"] == 0.05
    assert [r["runs"]["finetuned"][s]["auc_success"] for s in "012"] == pytest.approx(
        [0.9075, 0.8108333333333333, 0.6733333333333333])
    assert r["auc_span"]["max_steps"] == 60_000

    ft, bl = r["arms"]["finetuned"], r["arms"]["baseline"]
    # IQM of 3 values trims none (int(0.25 * 3) = 0): the mean
    assert ft["time_to_held_threshold"]["iqm"] == pytest.approx(130_000 / 3)
    assert ft["time_to_held_threshold"]["median"] == 60_000
    assert ft["time_to_threshold"]["iqm"] == 30_000 and ft["time_to_threshold"]["median"] == 20_000
    assert ft["time_to_threshold"]["is_lower_bound"]
    assert not bl["time_to_threshold"]["is_lower_bound"]
    assert (ft["censored_seeds"], ft["censored_held_seeds"]) == ([2], [1, 2])
    assert bl["n_censored"] == bl["n_censored_held"] == 0
    assert ft["jumpstart"]["mean"] == pytest.approx(0.4)
    assert bl["auc_success"]["mean"] == pytest.approx(0.6486111111111111)
    assert ft["held_after_threshold"]["mean"] == pytest.approx(0.9)

    points = {(k, st): (r[k][st]["point"], r[k][st]["bound"])
              for k in ("ratio", "ratio_held") for st in ("iqm", "median")}
    assert points == {
        ("ratio", "iqm"): (pytest.approx(1.0), "lower"),
        ("ratio", "median"): (pytest.approx(2 / 3), "lower"),
        ("ratio_held", "iqm"): (pytest.approx(130 / 90), "lower"),
        ("ratio_held", "median"): (pytest.approx(2.0), "lower"),
    }
    v = r["verdict"]
    assert v["target_met"] is False and len(v["reasons"]) == 1
    assert v["reasons"][0].startswith("2 of 3 fine-tuned runs never reached the threshold")
    sc = r["step_countings"]
    assert sc["expert_share_per_seed"] == 10_000
    assert {k: (c["charged_per_finetuned_seed"], c["meets_target"])
            for k, c in sc["countings"].items()} == {
        "a": (0, False), "b": (5_000, False), "c_amortised": (15_000, False),
        "c_total": (35_000, False)}
    assert [c["ratio"]["point"] for c in sc["countings"].values()] == pytest.approx(
        [130 / 90, 145 / 90, 175 / 90, 235 / 90])
    assert len(r["notes"]) == 3 and "seeds [1, 2]" in r["notes"][2]


def test_golden_intervals_bracket_their_points() -> None:
    r = compare(tiny_inputs())
    for arm in ("finetuned", "baseline"):
        for key in ("time_to_threshold", "time_to_held_threshold"):
            t = r["arms"][arm][key]
            for st in ("iqm", "median"):
                lo, hi = t[f"{st}_ci"]
                assert lo <= t[st] <= hi
        for key in ("jumpstart", "auc_success", "final_success"):
            s = r["arms"][arm][key]
            assert s["ci_low"] <= s["mean"] <= s["ci_high"]
    for k in ("ratio", "ratio_held"):
        for st in ("iqm", "median"):
            x = r[k][st]
            assert x["ci_low"] <= x["point"] <= x["ci_high"]


def test_compute_gives_the_numbers_as_dataclasses() -> None:
    c = compute(tiny_inputs())
    assert c.runs["finetuned"][1].time_to_held_threshold.censored
    assert c.verdict.reasons == ("some_finetuned_censored",) and not c.verdict.target_met
    assert c.arms["finetuned"].censored_held_seeds == (1, 2)
    assert [sc.key for sc in c.countings] == ["a", "b", "c_amortised", "c_total"]
    with pytest.raises(AttributeError):
        c.max_steps = 1  # type: ignore[misc]  # frozen


_CI = re.compile(r"(?<!seeds )\[\d[\d.]*, \d[\d.]*\]")

GOLDEN_STRUCTURE = """\
# Sample efficiency on tiny: BC-pretrained PPO vs PPO from scratch
**Target NOT met:** 2 of 3 fine-tuned runs never reached the threshold and held it (seeds [1, 2]); their times are lower bounds, so the ratio is only a lower bound and cannot show the target.
| arm | seeds | held time to threshold, IQM [95% CI] | median [95% CI] | censored (held) | 3 in a row, IQM [95% CI] | censored (3 in a row) | bar held after 3 in a row | jumpstart | AUC of success (0-60000) | final success | final collision |
|---|---|---|---|---|---|---|---|---|---|---|---|
| finetuned | 3 | >= 43333 [CI] | >= 60000 [CI] | 2 of 3 | >= 30000 [CI] | 1 of 3 | 0.90 [CI] | 0.40 [CI] | 0.797 [CI] | 0.93 [CI] | 0.03 [CI] |
| baseline | 3 | 30000 [CI] | 30000 [CI] | 0 of 3 | 30000 [CI] | 0 of 3 | 1.00 [CI] | 0.03 [CI] | 0.649 [CI] | 0.97 [CI] | 0.01 [CI] |
## Ratio fine-tuned / baseline (fine-tuning steps only)
| time to threshold | statistic | ratio | 95% CI (stratified bootstrap) | reading |
|---|---|---|---|---|
| reached and held | IQM | 1.444 | [CI] | lower bound (some fine-tuned runs censored: the true ratio is at least this) |
| reached and held | median | 2.000 | [CI] | lower bound (some fine-tuned runs censored: the true ratio is at least this) |
| 3 in a row | IQM | 1.000 | [CI] | lower bound (some fine-tuned runs censored: the true ratio is at least this) |
| 3 in a row | median | 0.667 | [CI] | lower bound (some fine-tuned runs censored: the true ratio is at least this) |
## Per seed
| seed | arm | held time to threshold (steps) | bar held after held time | 3 in a row (steps) | collision at it | bar held after it | lowest success after it | jumpstart | AUC | final success | final collision | last evaluated step |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
| 0 | finetuned | 10000 | 1.00 | 10000 | 0.02 | 1.00 | 0.92 | 0.50 | 0.907 | 0.95 | 0.02 | 60000 |
| 0 | baseline | 30000 | 1.00 | 30000 | 0.05 | 1.00 | 0.90 | 0.00 | 0.658 | 0.96 | 0.02 | 60000 |
| 1 | finetuned | > 60000 (censored) | n/a | 20000 | 0.04 | 0.80 | 0.80 | 0.40 | 0.811 | 0.95 | 0.04 | 60000 |
| 1 | baseline | 20000 | 1.00 | 20000 | 0.02 | 1.00 | 0.91 | 0.10 | 0.772 | 0.98 | 0.02 | 60000 |
| 2 | finetuned | > 60000 (censored) | n/a | > 60000 (censored) | n/a (censored) | n/a | n/a | 0.30 | 0.673 | 0.88 | 0.02 | 60000 |
| 2 | baseline | 40000 | 1.00 | 40000 | 0.00 | 1.00 | 0.95 | 0.00 | 0.516 | 0.97 | 0.00 | 60000 |
## Step countings (REFERENCE §5, held time)
| counting | what is counted | extra steps per fine-tuned seed | fine-tuned IQM | baseline IQM | ratio [95% CI] (bound) | <= 0.70? |
|---|---|---|---|---|---|---|
| a | fine-tuning steps only | 0 | 43333 | 30000 | 1.444 [CI] (lower) | no |
| b | fine-tuning + demonstration transitions | 5000 | 48333 | 30000 | 1.611 [CI] (lower) | no |
| c_amortised | (b) + expert training steps shared by the seeds | 15000 | 58333 | 30000 | 1.944 [CI] (lower) | no |
| c_total | (b) + all expert training steps, per seed | 35000 | 78333 | 30000 | 2.611 [CI] (lower) | no |
## Notes
## Plots
## Inputs
## How to recompute
"""


def test_golden_markdown_structure() -> None:
    md = render_markdown(compare(tiny_inputs()))
    structure = [_CI.sub("[CI]", line) for line in md.splitlines()
                 if line.startswith(("#", "|", "**"))]
    assert "\n".join(structure) + "\n" == GOLDEN_STRUCTURE
    assert "- finetuned: 2 of 3 runs censored on the reached and held time (seeds [1, 2])" in md
    assert "95% percentile intervals by rliable" in md
