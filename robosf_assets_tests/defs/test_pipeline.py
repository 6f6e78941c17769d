"""The whole graph for one scenario and one seed, materialised for real on a tiny budget."""

import json

import dagster as dg

from robosf_assets.defs import build_definitions
from robosf_assets_tests.defs.conftest import TINY_TRAINING, expert_config

SCENARIO = "crossing"
DATASET = {"n_episodes": 6, "min_episodes": 5, "n_envs": 3}
ARM = {"profile": "quick", **TINY_TRAINING}


def test_tiny_end_to_end_for_one_scenario_and_seed(instance, output):
    defs = build_definitions()
    assets = list(defs.assets)
    first = dg.materialize(
        assets, selection=["expert_policy", "trajectory_dataset", "validated_dataset"], partition_key=SCENARIO,
        instance=instance, resources={"output": output},
        run_config={"ops": {"expert_policy": {"config": expert_config(min_success=0.0, max_collision=1.0)},
                            "trajectory_dataset": {"config": DATASET}, "validated_dataset": {"config": DATASET}}},
    )
    assert first.success
    key = dg.MultiPartitionKey({"scenario": SCENARIO, "seed": "0"})
    second = dg.materialize(
        assets, selection=["bc_policy", "finetuned_policy", "baseline_policy"], partition_key=key,
        instance=instance, resources={"output": output},
        run_config={"ops": {
            "bc_policy": {"config": {**ARM, "bc_epochs": 1, "value_epochs": 1, "bc_eval_episodes": 3}},
            "finetuned_policy": {"config": {**ARM, "critic_warmup_steps": 512}},
            "baseline_policy": {"config": ARM},
        }},
    )
    assert second.success
    bc = second.output_for_node("bc_policy")
    ft = second.output_for_node("finetuned_policy")
    base = second.output_for_node("baseline_policy")
    assert bc.dataset_iteration == "iter-0001"
    assert ft.bc_run == bc.run_dir and ft.timesteps_used == base.timesteps_used == 1024
    assert ft.demo_transitions == bc.demo_transitions and (ft.arm, base.arm) == ("finetuned_policy", "baseline_policy")
    for ref, must_hold in ((bc, {"policy.pt", "model.zip"}), (ft, {"model.zip", "curve.jsonl"}),
                           (base, {"model.zip", "curve.jsonl"})):
        manifest = json.loads((ref.run_dir / "manifest.json").read_text())
        assert must_hold <= {f["path"] for f in manifest["files"]}
        assert ".lock" not in {f["path"] for f in manifest["files"]}
    curve_ft = [json.loads(l) for l in ft.curve_path.read_text().splitlines()]
    curve_base = [json.loads(l) for l in base.curve_path.read_text().splitlines()]
    assert [r["timesteps"] for r in curve_ft] == [r["timesteps"] for r in curve_base]

    report = dg.materialize(
        assets, selection=["comparison_report"], partition_key=SCENARIO, instance=instance,
        resources={"output": output}, run_config={"ops": {"comparison_report": {"config": {"n_resamples": 200}}}},
    )
    assert report.success
    (check,) = report.get_asset_check_evaluations()
    # one seed can never support a verdict: the check fails honestly and says why
    assert check.check_name == "sample_efficiency_target" and check.passed is False
    report_ref = report.output_for_node("comparison_report")
    report_dir = report_ref.report_dir
    assert report_ref.seeds == (0,) and report_ref.target_met is False
    assert {p.name for p in report_dir.iterdir()} >= {"report.json", "report.md", "success_curves.png",
                                                      "time_to_threshold.png", "manifest.json"}
    from robosf_assets.benchmark.recompute import main as recompute

    assert recompute([str(report_dir)]) == 0
    summary = dg.materialize(assets, selection=["benchmark_summary"], instance=instance,
                             resources={"output": output})
    rows = summary.output_for_node("benchmark_summary").rows
    assert [r["scenario"] for r in rows] == [SCENARIO] and rows[0]["target_met"] is False
