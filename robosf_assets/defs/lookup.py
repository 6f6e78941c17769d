"""Reading what earlier runs recorded: the latest materialisation of each partition."""

import dagster as dg


def latest_metadata(instance: dg.DagsterInstance, asset: str, partitions: list[str]) -> dict[str, dict]:
    """``{partition: metadata}`` of the latest materialisation of ``asset`` in each partition that has one."""
    found = {}
    for partition in partitions:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1, ascending=False
        ).records
        if records:
            found[partition] = {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
    return found


def seed_partitions_of(partitions_def: dg.MultiPartitionsDefinition, scenario: str) -> list[str]:
    """The ``scenario|seed`` keys of one scenario."""
    return [k for k in partitions_def.get_partition_keys() if k.split("|")[0] == scenario]
