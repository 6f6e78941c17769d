"""The Dagster layer: a thin wrapper over the core library (sim, envs, training, datasets, benchmark)."""

import dagster as dg

from robosf_assets.defs.archival import archive_datasets_job, dataset_archival_sensor
from robosf_assets.defs.assets.datasets import trajectory_dataset, validated_dataset
from robosf_assets.defs.assets.expert import expert_policy
from robosf_assets.defs.assets.policies import baseline_policy, bc_policy, finetuned_policy
from robosf_assets.defs.assets.reports import benchmark_summary, comparison_report
from robosf_assets.defs.jobs import (
    comparison_job,
    expert_and_dataset_job,
    summary_job,
    training_arms_job,
    weekly_comparison_refresh,
)
from robosf_assets.defs.resources import OutputTree

ASSETS = [
    expert_policy,
    trajectory_dataset,
    validated_dataset,
    bc_policy,
    finetuned_policy,
    baseline_policy,
    comparison_report,
    benchmark_summary,
]


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        jobs=[
            expert_and_dataset_job,
            training_arms_job,
            comparison_job,
            summary_job,
            archive_datasets_job,
        ],
        schedules=[weekly_comparison_refresh],
        sensors=[dataset_archival_sensor],
        resources={"output": OutputTree()},
        # each run is a short sequential chain (one stage of one partition): parallelism is across
        # runs (the run queue and the training pool), and Celery workers cannot fork step processes
        executor=dg.in_process_executor,
    )
