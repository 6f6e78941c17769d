"""Partitions: one per scenario, and scenario x seed for the per-seed training arms."""

import dagster as dg

from robosf_assets.envs import list_scenarios
from robosf_assets.sim.scenario import scenario_load_errors

DEFAULT_SEEDS = ["0", "1", "2", "3", "4"]

# A broken scenario file never stops the code location from loading: the partitions are
# the scenarios that load; the others are logged as warnings and listed here for the CLI.
SCENARIO_LOAD_ERRORS = scenario_load_errors()
scenario_partitions = dg.StaticPartitionsDefinition(list_scenarios())
seed_partitions = dg.StaticPartitionsDefinition(DEFAULT_SEEDS)
scenario_seed_partitions = dg.MultiPartitionsDefinition({"scenario": scenario_partitions, "seed": seed_partitions})

# scenario -> every (scenario, seed) of that scenario, and back
by_scenario = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="scenario")


def scenario_and_seed(context: dg.AssetExecutionContext) -> tuple[str, int]:
    """The (scenario, seed) of a scenario x seed partition."""
    keys = context.partition_key.keys_by_dimension
    return keys["scenario"], int(keys["seed"])
