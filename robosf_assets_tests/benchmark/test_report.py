"""Tests for robosf_assets.benchmark.report and .recompute on synthetic curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robosf_assets.benchmark.efficiency import area_under_curve
from robosf_assets.benchmark.recompute import main as recompute_main
from robosf_assets.benchmark.report import (
    REPORT_FILES,
    ComparisonInputs,
    compare,
    load_inputs_from_dirs,
    render_markdown,
    success_curves_png,
    time_to_threshold_png,
    write_report,
)

SEEDS = range(5)
EVERY = 50_000
FAST = {"n_resamples": 200}


def curve(reach_at: int | None, end: int = 500_000, start_success: float = 0.1) -> list[dict]:
    """Evaluations every 50k steps; success 0.95 (collision 0.02) from ``reach_at`` on,
    below the target before (and for ever when ``reach_at`` is None)."""
    rows = []
    for t in range(0, end + 1, EVERY):
        reached = reach_at is not None and t >= reach_at
        rows.append({
            "timesteps": t,
            "success": 0.95 if reached else start_success + 0.5 * t / end,
            "collision": 0.02 if reached else 0.10,
            "mean_return": 0.0, "n_episodes": 20, "wall_time_s": 1.0,
            "env_steps_per_s": 1000.0, "eval_s": 0.1,
        })
    return rows


def inputs(ft: dict, bl: dict, **kw) -> ComparisonInputs:
    return ComparisonInputs(scenario="crossing", finetuned=ft, baseline=bl,
                            demo_transitions=50_000, expert_steps=1_000_000, **(FAST | kw))


def known_arms() -> tuple[dict, dict]:
    return ({s: curve(100_000, start_success=0.4) for s in SEEDS},
            {s: curve(400_000) for s in SEEDS})


def test_known_ratio_quarter_target_met() -> None:
    result = compare(inputs(*known_arms()))
    r = result["ratio"]["iqm"]
    assert (r["point"], r["ci_low"], r["ci_high"], r["bound"]) == (0.25, 0.25, 0.25, "exact")
    assert result["ratio"]["median"]["point"] == 0.25
    v = result["verdict"]
    assert v["target_met"] is True and v["ci_high"] == 0.25 and v["reasons"] == []
    assert v["sentence"].startswith("Target met")
    ft, bl = result["arms"]["finetuned"], result["arms"]["baseline"]
    assert ft["time_to_threshold"]["iqm"] == 100_000
    assert bl["time_to_threshold"]["median"] == 400_000
    assert ft["n_censored"] == bl["n_censored"] == 0
    assert ft["jumpstart"]["mean"] == pytest.approx(0.4)
    assert bl["jumpstart"]["mean"] == pytest.approx(0.1)
    run = result["runs"]["finetuned"]["3"]
    assert run["time_to_threshold"] == {"steps": 100_000, "censored": False, "censored_at": None,
                                        "time": 100_000}
    assert run["collision_at_threshold"] == 0.02 and run["final_success"] == 0.95
    json.dumps(result, allow_nan=False)  # JSON-safe


def test_three_step_countings() -> None:
    sc = compare(inputs(*known_arms()))["step_countings"]
    c = sc["countings"]
    assert c["a"]["ratio"]["point"] == 0.25 and c["a"]["meets_target"]
    assert c["b"]["ratio"]["point"] == pytest.approx(150_000 / 400_000) and c["b"]["meets_target"]
    assert sc["expert_share_per_seed"] == 200_000  # 1M expert steps shared by 5 seeds
    assert c["c_amortised"]["ratio"]["point"] == pytest.approx(350_000 / 400_000)
    assert c["c_total"]["ratio"]["point"] == pytest.approx(1_150_000 / 400_000)
    assert not c["c_amortised"]["meets_target"] and not c["c_total"]["meets_target"]
    assert "shared" in sc["explanation"] and "amortised" in sc["explanation"]


def test_censored_baseline_gives_upper_bound() -> None:
    ft, bl = known_arms()
    bl[2] = curve(None)  # never reaches: censored at 500k
    result = compare(inputs(ft, bl))
    assert result["runs"]["baseline"]["2"]["time_to_threshold"] == {
        "steps": None, "censored": True, "censored_at": 500_000, "time": 500_000}
    assert result["runs"]["baseline"]["2"]["collision_at_threshold"] is None
    r = result["ratio"]["iqm"]
    assert r["bound"] == "upper" and r["point"] == 0.25 and r["ci_high"] == 0.25
    assert result["arms"]["baseline"]["censored_seeds"] == [2]
    assert result["verdict"]["target_met"] and "conservative" in result["verdict"]["sentence"]
    md = render_markdown(result)
    assert "| 2 | baseline | > 500000 (censored) |" in md
    assert "upper bound" in md and "**Target met:** fine-tuned PPO" in md


def test_censored_finetuned_is_not_met_with_reason() -> None:
    ft, bl = known_arms()
    ft[4] = curve(None)
    result = compare(inputs(ft, bl))
    v = result["verdict"]
    assert result["ratio"]["iqm"]["bound"] == "lower"
    assert not v["target_met"] and v["bound"] == "lower"
    assert "1 of 5 fine-tuned runs never reached the threshold" in v["sentence"]
    assert "**Target NOT met:** 1 of 5 fine-tuned runs" in render_markdown(result)
    never = compare(inputs({s: curve(None) for s in SEEDS}, bl))["verdict"]
    assert not never["target_met"]
    assert "never reached the threshold (all 5 seeds" in never["sentence"]


def test_wide_ci_and_too_few_seeds_are_not_met() -> None:
    ft = {s: curve(r) for s, r in zip(SEEDS, (100_000, 100_000, 350_000, 400_000, 400_000))}
    v = compare(inputs(ft, known_arms()[1]))["verdict"]
    assert not v["target_met"] and "CI upper bound" in v["sentence"]
    few = compare(inputs({0: curve(100_000)}, {0: curve(400_000)}))["verdict"]
    assert not few["target_met"] and "only 1 matched seed" in few["sentence"]


def test_auc_on_the_common_span() -> None:
    ft = {s: curve(100_000, end=400_000) for s in SEEDS}
    bl = {s: curve(400_000, end=800_000) for s in SEEDS}
    result = compare(inputs(ft, bl))
    assert result["auc_span"]["max_steps"] == 400_000
    assert "shortest run" in result["auc_span"]["note"]
    rows = bl[0]
    t, s = [r["timesteps"] for r in rows], [r["success"] for r in rows]
    auc = result["runs"]["baseline"]["0"]["auc_success"]
    assert auc == pytest.approx(area_under_curve(t, s, max_steps=400_000))
    assert auc != pytest.approx(area_under_curve(t, s))  # not its own full span
    assert max(result["success_curves"]["finetuned"]["grid"]) == 400_000
    assert max(result["success_curves"]["baseline"]["grid"]) == 800_000


def test_inputs_validation() -> None:
    ft, bl = known_arms()
    del bl[4]
    with pytest.raises(ValueError, match="matched"):
        inputs(ft, bl)
    with pytest.raises(ValueError, match="statistic"):
        inputs(*known_arms(), statistic="mean")


def _save_runs(root: Path, curves: dict[int, list[dict]], arm: str) -> dict[int, Path]:
    dirs = {}
    for seed, rows in curves.items():
        d = root / arm / f"seed-{seed}"
        d.mkdir(parents=True)
        (d / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (d / "manifest.json").write_text(json.dumps({"seeds": {"run_seed": seed}}))
        dirs[seed] = d
    return dirs


@pytest.fixture
def saved(tmp_path: Path) -> tuple[dict, dict]:
    ft, bl = known_arms()
    bl[1] = curve(None)
    root = tmp_path / "runs"
    return _save_runs(root, ft, "finetuned"), _save_runs(root, bl, "baseline")


def _load(saved: tuple[dict, dict]) -> ComparisonInputs:
    return load_inputs_from_dirs("crossing", *saved, 50_000, 1_000_000, **FAST)


def test_write_report_four_files_deterministic_and_no_overwrite(tmp_path: Path, saved) -> None:
    inp = _load(saved)
    result = compare(inp)
    assert result["inputs"]["run_dirs"]["finetuned"]["0"] == saved[0][0].resolve().as_posix()
    paths = write_report(tmp_path / "r1", inp, result)
    assert [p.name for p in paths] == list(REPORT_FILES)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths[2:])
    md = paths[1].read_text()
    assert "> 500000 (censored)" in md and "python -m robosf_assets.benchmark.recompute" in md
    again = write_report(tmp_path / "r2", inp, compare(_load(saved)))
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    with pytest.raises(FileExistsError):
        write_report(tmp_path / "r1", inp, result)
    assert success_curves_png(inp) == paths[2].read_bytes()
    assert time_to_threshold_png(result) == paths[3].read_bytes()


def test_write_report_needs_run_dirs_and_matching_result(tmp_path: Path, saved) -> None:
    in_memory = inputs(*known_arms())
    with pytest.raises(ValueError, match="load_inputs_from_dirs"):
        write_report(tmp_path / "r", in_memory, compare(in_memory))
    with pytest.raises(ValueError, match="not computed from these inputs"):
        write_report(tmp_path / "r", _load(saved), compare(in_memory))
    assert not (tmp_path / "r").exists()


def test_manifest_seed_mismatch_is_refused(saved) -> None:
    ft, bl = saved
    with pytest.raises(ValueError, match="records seed 1"):
        load_inputs_from_dirs("crossing", {0: ft[1], 1: ft[0]}, {0: bl[0], 1: bl[1]}, 0, 0)


def test_recompute_round_trip_and_edit_detection(tmp_path: Path, saved, capsys) -> None:
    inp = _load(saved)
    out = tmp_path / "report"
    write_report(out, inp, compare(inp))
    assert recompute_main([str(out)]) == 0
    assert "OK: all" in capsys.readouterr().out

    path = saved[0][3] / "curve.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["success"], rows[1]["collision"] = 0.95, 0.0  # seed 3 now qualifies from 50k
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert recompute_main([str(out)]) == 1
    printed = capsys.readouterr().out
    assert "changed since the report" in printed
    differs = "DIFFERS runs.finetuned.3.time_to_threshold.steps: report 100000, recomputed 50000"
    assert differs in printed

    assert recompute_main([str(tmp_path / "nowhere")]) == 2


def test_baseline_at_step_zero_leaves_the_ratio_undefined() -> None:
    ft, bl = known_arms()
    bl = {s: curve(0) for s in SEEDS}
    result = compare(inputs(ft, bl))
    assert result["ratio"] == {"iqm": None, "median": None}
    assert not result["verdict"]["target_met"] and "undefined" in result["verdict"]["sentence"]
    assert "| IQM | undefined |" in render_markdown(result)
    assert time_to_threshold_png(result)[:4] == b"\x89PNG"


def test_held_after_threshold_shows_a_run_that_drifts_off_the_bar() -> None:
    ft, bl = known_arms()
    drifting = curve(0, start_success=0.95)
    for row in drifting[5:]:  # 250k on: below the target
        row.update(success=0.85, collision=0.15)
    ft[0] = drifting
    result = compare(inputs(ft, bl))
    run = result["runs"]["finetuned"]["0"]
    assert run["time_to_threshold"]["steps"] == 0
    assert run["held_after_threshold"] == pytest.approx(5 / 11)  # 0..200k of 0..500k
    assert run["min_success_after_threshold"] == 0.85
    steady = result["runs"]["finetuned"]["1"]
    assert steady["held_after_threshold"] == 1.0 and steady["min_success_after_threshold"] == 0.95
    censored = compare(inputs({s: curve(None) for s in SEEDS}, bl))["runs"]["finetuned"]["0"]
    assert censored["held_after_threshold"] is None and censored["min_success_after_threshold"] is None
    # the held time sees the drift that 3 in a row does not: seed 0 never held the bar
    assert run["time_to_held_threshold"] == {"steps": None, "censored": True,
                                             "censored_at": 500_000, "time": 500_000}
    assert run["held_after_held_threshold"] is None
    assert steady["time_to_held_threshold"]["steps"] == 100_000
    assert steady["held_after_held_threshold"] == 1.0
    ft_arm = result["arms"]["finetuned"]
    assert ft_arm["n_censored"] == 0 and ft_arm["n_censored_held"] == 1
    assert ft_arm["censored_held_seeds"] == [0]
    assert result["ratio"]["iqm"]["bound"] == "exact"
    assert result["ratio_held"]["iqm"]["bound"] == "lower"
    v = result["verdict"]
    assert v["threshold"] == "held" and v["bound"] == "lower" and not v["target_met"]
    assert "never reached the threshold and held it (seeds [0])" in v["sentence"]
    md = render_markdown(result)
    assert "| 0 | finetuned | > 500000 (censored) | n/a | 0 | 0.02 | 0.45 | 0.85 |" in md


def test_verdict_is_judged_on_the_held_time() -> None:
    """A fine-tuned arm that starts on the bar and loses it for a while: 3 in a row reads
    step 0 (ratio 0), the held time reads where it regained the bar for good."""
    ft, bl = known_arms()
    for s in SEEDS:
        rows = curve(0, end=1_000_000, start_success=0.95)
        for row in rows[3:7]:  # 150k-300k: off the bar; from 350k on it holds
            row.update(success=0.80, collision=0.10)
        ft[s] = rows
    bl = {s: curve(400_000, end=1_000_000) for s in SEEDS}
    result = compare(inputs(ft, bl))
    assert result["ratio"]["iqm"]["point"] == 0.0
    held = result["ratio_held"]["iqm"]
    assert held["point"] == pytest.approx(350_000 / 400_000) and held["bound"] == "exact"
    v = result["verdict"]
    assert v["point"] == held["point"] and not v["target_met"]
    assert "exceeds the target 0.70" in v["sentence"]
    assert result["step_countings"]["countings"]["a"]["ratio"]["point"] == held["point"]
    run = result["runs"]["finetuned"]["2"]
    assert run["time_to_held_threshold"]["steps"] == 350_000
    assert run["held_after_held_threshold"] == 1.0
    assert run["held_after_threshold"] == pytest.approx(17 / 21)
    md = render_markdown(result)
    assert "| reached and held | IQM | 0.875 |" in md and "| 3 in a row | IQM | 0.000 |" in md
    assert result["threshold"]["hold_fraction"] == 0.9
    assert "at least 90% of all evaluations" in result["threshold"]["held_definition"]


def test_hold_fraction_is_validated_recorded_and_recomputed(tmp_path: Path, saved, capsys) -> None:
    with pytest.raises(ValueError, match="hold_fraction"):
        inputs(*known_arms(), hold_fraction=0.0)
    inp = load_inputs_from_dirs("crossing", *saved, 50_000, 1_000_000, hold_fraction=0.8, **FAST)
    out = tmp_path / "report"
    write_report(out, inp, compare(inp))
    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == 4 and report["inputs"]["hold_fraction"] == 0.8
    assert report["inputs"]["interval_method"].startswith("rliable")
    assert recompute_main([str(out)]) == 0
    capsys.readouterr()
    # the held time changes when a late evaluation is lost; recompute names the field
    path = saved[0][2] / "curve.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows[2:5]:  # 100k-200k off the bar: it is held (and 3 in a row) from 250k
        row["success"] = 0.5
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert recompute_main([str(out)]) == 1
    printed = capsys.readouterr().out
    assert "runs.finetuned.2.time_to_held_threshold.steps: report 100000, recomputed 250000" in printed


def test_summary_rows_use_the_held_ratio() -> None:
    from robosf_assets.benchmark.summary import summary_markdown as table
    from robosf_assets.benchmark.summary import summary_rows

    ft, bl = known_arms()
    for s in SEEDS:  # on the bar 0-100k, off it 150k-250k, on it from 300k
        ft[s] = curve(0, start_success=0.95)
        for row in ft[s][3:6]:
            row.update(success=0.5)
    result = compare(inputs(ft, bl))
    [row] = summary_rows({"crossing": result})
    assert row["ratio"] == result["ratio_held"]["iqm"]["point"]
    assert row["ratio_k_in_a_row"] == result["ratio"]["iqm"]["point"]
    assert (row["ratio"], row["ratio_k_in_a_row"]) == (0.75, 0.0)
    assert row["finetuned_held_after_held"] == 1.0
    assert "(held time)" in table([row], 0.7) and row["verdict_on"] == "held"
    old = json.loads(json.dumps(result))  # a schema-2 report still gives a row
    old["schema_version"] = 2
    for arm in old["arms"].values():
        del arm["n_censored_held"], arm["held_after_held_threshold"]
    [legacy] = summary_rows({"crossing": old})
    assert legacy["verdict_on"] == "k in a row" and legacy["finetuned_held_after_held"] is None
