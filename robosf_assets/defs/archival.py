"""Archival rotation: a sensor on dataset materialisations and the job that archives.

After each ``trajectory_dataset`` materialisation the sensor asks the core library what
rotation would do for that scenario (keep the newest 3 iterations and any iteration a
current ``bc_policy`` was built from) and, if there is work, requests one run of
``archive_datasets_job`` whose run key names that work, so repeated ticks never request
it twice. The job packs, verifies against the manifest checksums, then removes.
"""

import dagster as dg
from pydantic import Field

from robosf_assets.datasets.archive import rotate, rotation_run_key
from robosf_assets.datasets.schema import archive_root, scenario_dir
from robosf_assets.defs.lookup import latest_metadata, seed_partitions_of
from robosf_assets.defs.partitions import scenario_seed_partitions
from robosf_assets.defs.resources import OutputTree
from robosf_assets.logs import dagster_log_bridge

KEEP_ITERATIONS = 3


class ArchiveConfig(dg.Config):
    scenario: str = Field(description="Scenario whose older dataset iterations are archived.")
    keep: int = Field(KEEP_ITERATIONS, description="Newest iterations kept in place.")


def protected_iterations(instance: dg.DagsterInstance, scenario: str) -> set[str]:
    """Dataset iterations that the latest ``bc_policy`` of each seed was built from."""
    latest = latest_metadata(instance, "bc_policy", seed_partitions_of(scenario_seed_partitions, scenario))
    return {str(md["dataset_iteration"]) for md in latest.values() if "dataset_iteration" in md}


@dg.op(description="Archive older dataset iterations of one scenario: pack, verify, then remove.")
def archive_old_iterations(context: dg.OpExecutionContext, config: ArchiveConfig, output: OutputTree) -> None:
    protected = protected_iterations(context.instance, config.scenario)
    with dagster_log_bridge(context.log, level="INFO"):
        actions = rotate(scenario_dir(config.scenario, root=output.path()), archive_root(root=output.path()),
                         keep=config.keep, protected=protected)
    for a in actions:
        context.log.info(f"{a.iteration}: {a.action} {a.archive or ''} {a.detail}")
    failed = [a for a in actions if a.failed]
    if failed:
        raise dg.Failure("archival left data in place: " + "; ".join(f"{a.iteration}: {a.detail}" for a in failed))


@dg.job(description="Archive dataset iterations beyond the newest three (requested by the archival sensor).")
def archive_datasets_job():
    archive_old_iterations()


@dg.sensor(
    job=archive_datasets_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When a scenario holds more than three dataset iterations, request their archival.",
)
def dataset_archival_sensor(context: dg.SensorEvaluationContext, output: OutputTree):
    """Watches ``trajectory_dataset`` materialisations (cursor: the last event's storage id)."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("trajectory_dataset"), after_storage_id=int(context.cursor or 0)),
        limit=1000, ascending=True,
    ).records
    if not records:
        return dg.SkipReason("no new dataset materialisations")
    requests = []
    for scenario in sorted({r.partition_key for r in records if r.partition_key}):
        protected = protected_iterations(context.instance, scenario)
        run_key = rotation_run_key(scenario_dir(scenario, root=output.path()), KEEP_ITERATIONS, protected)
        if run_key is None:
            context.log.info(f"{scenario}: at most {KEEP_ITERATIONS} iterations to keep, nothing to archive")
            continue
        requests.append(dg.RunRequest(
            run_key=run_key,
            run_config={"ops": {"archive_old_iterations": {"config": {"scenario": scenario, "keep": KEEP_ITERATIONS}}}},
            tags={"scenario": scenario},
        ))
    return dg.SensorResult(run_requests=requests, cursor=str(records[-1].storage_id))
