"""scenario_pipeline_job drives every stage for its partition as separate, recorded runs."""

import dagster as dg

from robosf_assets.defs.jobs import scenario_pipeline_job
from robosf_assets_tests.defs.conftest import tiny_stage_config


def test_scenario_pipeline_job_runs_the_chain_and_records_each_stage(instance, tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOSF_OUTPUT_DIR", str(tmp_path / "output"))
    stage_config = tiny_stage_config()
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
