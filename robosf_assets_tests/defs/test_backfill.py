"""The graph's shape for one backfill, and what the CLI sends for it (no daemon: see test_cli.py)."""

import dagster as dg

from robosf_assets.defs import ASSETS, build_definitions
from robosf_assets.defs import backfill as bf


def _graph():
    return build_definitions().resolve_asset_graph()


def test_expert_policy_is_the_one_root_so_materialize_all_anchors_every_scenario():
    graph = _graph()
    roots = [key.to_user_string() for key in graph.get_all_asset_keys() if not graph.get(key).parent_keys]
    assert roots == ["expert_policy"]
    baseline = graph.get(dg.AssetKey("baseline_policy"))
    assert dg.AssetKey("validated_dataset") in baseline.parent_keys


def test_training_assets_share_the_training_pool_and_reports_hold_none():
    pools = {a.key.to_user_string(): a.op.pool for a in ASSETS}
    assert {n for n, p in pools.items() if p == "training"} == set(bf.TRAINING_ASSETS)
    assert pools["comparison_report"] is None and pools["benchmark_summary"] is None


def test_every_asset_is_in_exactly_one_stage():
    staged = [name for assets in bf.STAGES.values() for name in assets]
    assert sorted(staged) == sorted(a.key.to_user_string() for a in ASSETS)


def test_partitions_by_assets_names_every_partition_of_the_chosen_scenarios_and_seeds():
    selectors = {tuple(s["assetKey"]["path"]): s["partitions"] for s in bf.partitions_by_assets(["corridor"], [1, 3])}
    assert selectors[("expert_policy",)] == {"ranges": [{"start": "corridor", "end": "corridor"}]}
    assert selectors[("bc_policy",)] == {"ranges": [{"start": "corridor|1", "end": "corridor|1"},
                                                    {"start": "corridor|3", "end": "corridor|3"}]}
    assert selectors[("benchmark_summary",)] is None
    assert len(selectors) == len(ASSETS)
    assert bf.expected_runs(["corridor"], [1, 3]) == {"expert+dataset": 1, "arms": 2, "report": 1, "summary": 1}


def test_run_config_puts_the_profile_on_training_assets_and_merges_extra_config():
    config = bf.run_config("full", {"baseline_policy": {"total_timesteps": 10}, "comparison_report": {"min_seeds": 1}})
    ops = config["ops"]
    assert ops["baseline_policy"]["config"] == {"profile": "full", "total_timesteps": 10}
    assert ops["expert_policy"]["config"] == {"profile": "full"}
    assert ops["comparison_report"]["config"] == {"min_seeds": 1}
    assert "trajectory_dataset" not in ops


def test_progress_lines_are_the_cores_step_counts_not_every_log_line():
    from robosf_assets.logs import format_progress

    assert bf.PROGRESS.search("[training.ppo] ppo corridor seed 0: 255,744/999,424 steps (25.6%) 1,965 steps/s ETA 6m18s")
    assert bf.PROGRESS.search(format_progress("recording crossing", 12, 200, 3.0, unit="episodes"))
    assert bf.PROGRESS.search("PPO corridor seed 0 done: 282,688 steps in 2m36s (1,948 env-steps/s training)")
    assert not bf.PROGRESS.search("eval corridor seed 0 @ 282,624 steps: success 0.990 collision 0.010")
    assert not bf.PROGRESS.search("checkpoint /out/step-0000282688.zip (282,688 steps, 8 curve rows)")
