"""scenario_pipeline_job drives every stage for its partition as separate, recorded runs."""

import dagster as dg

from robosf_assets.defs.jobs import scenario_pipeline_job
from robosf_assets_tests.defs.conftest import TINY_TRAINING, expert_config

DATASET = {"n_episodes": 6, "min_episodes": 5, "n_envs": 3, "render_sample": False}
ARM = {**TINY_TRAINING}


def test_scenario_pipeline_job_runs_the_chain_and_records_each_stage(instance, tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOSF_OUTPUT_DIR", str(tmp_path / "output"))
    stage_config = {
        "expert_policy": expert_config(min_success=0.0, max_collision=1.0),
        "trajectory_dataset": DATASET, "validated_dataset": DATASET,
        "bc_policy": {**ARM, "bc_epochs": 1, "value_epochs": 1, "bc_eval_episodes": 3},
        "finetuned_policy": {**ARM, "critic_warmup_steps": 512}, "baseline_policy": ARM,
        "comparison_report": {"n_resamples": 200, "min_seeds": 1},
    }
    result = scenario_pipeline_job.execute_in_process(
        partition_key="crossing", instance=instance,
        run_config={"ops": {"pipeline_for_scenario": {"config": {"seeds": [0], "stage_config": stage_config}}}},
    )
    assert result.success
    runs = instance.get_runs()
    assert len(runs) == 1 + 4  # this run, then stage 1, stage 2 (one seed), report, summary
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    reports = (tmp_path / "output" / "reports" / "crossing")
    assert len(list(reports.glob("*/report.md"))) == 1
