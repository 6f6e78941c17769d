"""The benchmark summary's cross-scenario IQM: rliable with scenarios as tasks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rliable import library as rly
from scipy import stats as sps

from robosf_assets.benchmark.intervals import seeded_global_rng
from robosf_assets.benchmark.report import ComparisonInputs, compare
from robosf_assets.benchmark.summary import cross_scenario_iqm, summary_markdown, summary_rows

EVERY = 50_000


def curve(reach_at: int | None, end: int = 500_000) -> list[dict]:
    return [{"timesteps": t,
             "success": 0.95 if reach_at is not None and t >= reach_at else 0.2,
             "collision": 0.02} for t in range(0, end + 1, EVERY)]


def report(scenario: str, ft_reach: list[int | None], bl_reach: list[int | None]) -> dict:
    seeds = range(len(ft_reach))
    return compare(ComparisonInputs(
        scenario=scenario, finetuned={s: curve(r) for s, r in zip(seeds, ft_reach)},
        baseline={s: curve(r) for s, r in zip(seeds, bl_reach)}, demo_transitions=1,
        expert_steps=1, n_resamples=50,
    ))


def test_constant_normalised_times_give_a_degenerate_ci() -> None:
    rows = summary_rows({
        "a": report("a", [100_000] * 3, [400_000] * 3),
        "b": report("b", [50_000] * 4, [200_000] * 4),  # other seed count: fine
    })
    agg = cross_scenario_iqm(rows, n_resamples=200)
    assert (agg["point"], agg["ci_low"], agg["ci_high"]) == (0.25, 0.25, 0.25)
    assert agg["bound"] == "exact" and agg["scenarios"] == ["a", "b"] and agg["n_runs"] == 7
    json.dumps(agg, allow_nan=False)


def test_aggregate_is_rliables_stratified_bootstrap_over_scenarios() -> None:
    a = report("a", [100_000, 150_000, 300_000], [400_000, 300_000, 350_000])
    b = report("b", [50_000, 200_000, 100_000], [200_000, 250_000, None])  # censored at 500k
    rows = summary_rows({"a": a, "b": b})
    agg = cross_scenario_iqm(rows, n_resamples=300, seed=4)
    ft = [np.array([[100_000.0], [150_000], [300_000]]), np.array([[50_000.0], [200_000], [100_000]])]
    bl = [np.array([[400_000.0], [300_000], [350_000]]), np.array([[200_000.0], [250_000], [500_000]])]

    def func(f1, f2, b1, b2):
        tm = lambda x: sps.trim_mean(x, 0.25, axis=None)  # noqa: E731
        return np.array([tm(np.concatenate([f1[:, 0] / tm(b1), f2[:, 0] / tm(b2)]))])

    with seeded_global_rng(4):
        point, ci = rly.get_interval_estimates({"x": [*ft, *bl]}, func, reps=300)
    assert agg["point"] == pytest.approx(point["x"][0])
    assert (agg["ci_low"], agg["ci_high"]) == pytest.approx((ci["x"][0, 0], ci["x"][1, 0]))
    assert agg["ci_low"] < agg["point"] < agg["ci_high"]
    assert agg["bound"] == "upper"  # a censored baseline run: the true value is at most this


def test_schema_2_rows_are_left_out_and_the_table_shows_the_aggregate() -> None:
    new = report("a", [100_000] * 3, [400_000] * 3)
    old = json.loads(json.dumps(new))
    old["schema_version"] = 2
    rows = summary_rows({"a": new, "old": old})
    assert rows[1]["finetuned_held_times"] is None
    agg = cross_scenario_iqm(rows, n_resamples=50)
    assert agg["scenarios"] == ["a"] and agg["left_out"] == ["old"]
    md = summary_markdown(rows, 0.7)
    assert "**Across scenarios** (IQM over 3 fine-tuned runs in 1 scenario(s)" in md
    assert "0.25 [0.25, 0.25], exact. Left out (no held times or a baseline IQM of 0): old." in md
    assert cross_scenario_iqm(rows[1:]) is None
    assert "no scenario has held times" in summary_markdown(rows[1:], 0.7)
