"""The Dagster layer: a thin wrapper over the core library (sim, envs, training, datasets, benchmark)."""

import dagster as dg

from robosf_assets.defs.archival import archive_datasets_job, dataset_archival_sensor
from robosf_assets.defs.assets.datasets import trajectory_dataset, validated_dataset
from robosf_assets.defs.assets.expert import expert_policy
from robosf_assets.defs.assets.policies import baseline_policy, bc_policy, finetuned_policy
from robosf_assets.defs.resources import OutputTree


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[expert_policy, trajectory_dataset, validated_dataset, bc_policy, finetuned_policy, baseline_policy],
        jobs=[archive_datasets_job],
        sensors=[dataset_archival_sensor],
        resources={"output": OutputTree()},
    )
