"""Jobs, one per partitioning (Dagster runs one partitions definition per job), and the weekly refresh.

The whole graph crosses three partitionings (scenario, scenario x seed, unpartitioned); it
runs as one asset backfill ("Materialize all" in the UI, ``python -m robosf_assets.cli``),
whose daemon launches each stage's runs once their parents have materialised. These jobs
are for running one stage by hand.
"""

import dagster as dg

from robosf_assets.defs.partitions import scenario_partitions

expert_and_dataset_job = dg.define_asset_job(
    "expert_and_dataset_job",
    selection=["expert_policy", "trajectory_dataset", "validated_dataset"],
    partitions_def=scenario_partitions,
    description="Expert, its dataset and the validated dataset for one scenario.",
)

training_arms_job = dg.define_asset_job(
    "training_arms_job",
    selection=["bc_policy", "finetuned_policy", "baseline_policy"],
    description="BC, fine-tuned and baseline policies for one scenario x seed.",
)

comparison_job = dg.define_asset_job(
    "comparison_job",
    selection=["comparison_report"],
    partitions_def=scenario_partitions,
    description="The comparison report of one scenario (reads every seed).",
)

summary_job = dg.define_asset_job("summary_job", selection=["benchmark_summary"], description="All scenarios at once.")


@dg.schedule(
    job=comparison_job,
    cron_schedule="0 4 * * 1",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Weekly refresh of every scenario's comparison report (stopped by default).",
)
def weekly_comparison_refresh(context: dg.ScheduleEvaluationContext):
    week = context.scheduled_execution_time.strftime("%G-W%V")
    return [dg.RunRequest(run_key=f"{scenario}-{week}", partition_key=scenario)
            for scenario in scenario_partitions.get_partition_keys()]
