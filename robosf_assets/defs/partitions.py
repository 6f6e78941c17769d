"""Partitions: one per scenario, and scenario x seed for the per-seed training arms."""

import dagster as dg

from robosf_assets.envs import list_scenarios

DEFAULT_SEEDS = ["0", "1", "2", "3", "4"]

scenario_partitions = dg.StaticPartitionsDefinition(list_scenarios())
seed_partitions = dg.StaticPartitionsDefinition(DEFAULT_SEEDS)
scenario_seed_partitions = dg.MultiPartitionsDefinition({"scenario": scenario_partitions, "seed": seed_partitions})

# scenario -> every (scenario, seed) of that scenario, and back
by_scenario = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="scenario")


def scenario_and_seed(context: dg.AssetExecutionContext) -> tuple[str, int]:
    """The (scenario, seed) of a scenario x seed partition."""
    keys = context.partition_key.keys_by_dimension
    return keys["scenario"], int(keys["seed"])
