"""Jobs, one per partitioning (Dagster runs one partitions definition per job), and the weekly refresh.

The whole pipeline crosses three partitionings (scenario, scenario x seed, unpartitioned),
so "the whole pipeline" is an ordered chain of runs of these jobs
(:mod:`robosf_assets.defs.pipeline`). ``scenario_pipeline_job`` (one scenario) and
``full_pipeline_job`` (everything) launch that chain from the UI: their one op drives the
stages, each recorded as its own run; ``python -m robosf_assets.cli`` does the same.
"""

from typing import Any

import dagster as dg
from pydantic import Field

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


class PipelineConfig(dg.Config):
    """The whole chain (see ``robosf_assets.defs.pipeline``) from one launch."""

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], description="Seeds of the comparison arms.")
    profile: str = Field("quick", description="quick or full, for every training stage.")
    stage_config: dict[str, Any] = Field(
        default_factory=dict, description="Per-asset config merged over the profile, e.g. {'expert_policy': {...}}."
    )


def _run_chain(context: dg.OpExecutionContext, config: PipelineConfig, scenarios: list[str]) -> None:
    from robosf_assets.defs import build_definitions  # the definitions hold this job: import late
    from robosf_assets.defs.pipeline import run_pipeline

    outcome = run_pipeline(build_definitions(), context.instance, scenarios, config.seeds, config.profile,
                           extra_config=config.stage_config, log_level="WARNING")
    for scenario in scenarios:
        if scenario in outcome.reports:
            context.log.info(f"{scenario}: report {outcome.reports[scenario]}")
        else:
            context.log.warning(f"{scenario}: {outcome.stopped.get(scenario, 'not run')}")
    context.add_output_metadata({"reports": outcome.reports, "stopped": outcome.stopped,
                                 "summary_dir": outcome.summary_dir or "none"})


@dg.op(description="Materialise every stage for this run's scenario partition, in order, as separate runs.")
def pipeline_for_scenario(context: dg.OpExecutionContext, config: PipelineConfig) -> None:
    _run_chain(context, config, [context.partition_key])


@dg.op(description="Materialise every stage for every scenario, in order, as separate runs.")
def pipeline_for_all_scenarios(context: dg.OpExecutionContext, config: PipelineConfig) -> None:
    _run_chain(context, config, list(scenario_partitions.get_partition_keys()))


@dg.job(partitions_def=scenario_partitions, description="The whole pipeline for one scenario (pick the partition).")
def scenario_pipeline_job():
    pipeline_for_scenario()


@dg.job(description="The whole pipeline for every scenario, then the summary.")
def full_pipeline_job():
    pipeline_for_all_scenarios()
