"""The archival sensor and job through Dagster: 5 iterations -> 3 kept, 2 archived."""

import shutil

import dagster as dg

from robosf_assets.datasets.validate import validate_dataset, write_integrity_report
from robosf_assets.defs.archival import archive_datasets_job, dataset_archival_sensor
from robosf_assets_tests.datasets import SCENARIO, TINY_EPISODES, record_tiny, snapshot


def five_iterations(root):
    template = record_tiny(root / "template" / SCENARIO)
    write_integrity_report(template, validate_dataset(template, min_episodes=TINY_EPISODES))
    scen = root / "output" / "datasets" / SCENARIO
    for n in range(1, 6):
        shutil.copytree(template, scen / f"iter-{n:04d}")
    return scen


def materialised(instance, asset, partition, **metadata):
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=partition, metadata=metadata))


def tick(instance, output, cursor=None):
    """Evaluate the sensor once; returns its run requests."""
    context = dg.build_sensor_context(instance=instance, resources={"output": output}, cursor=cursor)
    result = dataset_archival_sensor(context)
    return result.run_requests if isinstance(result, dg.SensorResult) else []


def test_sensor_requests_one_idempotent_archival_and_the_job_keeps_three(instance, output, tmp_path):
    scen = five_iterations(tmp_path)
    before = {p.name: snapshot(p) for p in scen.iterdir()}
    materialised(instance, "trajectory_dataset", SCENARIO)
    (request,) = tick(instance, output)
    # the same pending work gives the same run key, so a second request would be deduplicated
    materialised(instance, "trajectory_dataset", SCENARIO)
    (again,) = tick(instance, output)
    assert again.run_key == request.run_key

    result = archive_datasets_job.execute_in_process(run_config=request.run_config, instance=instance,
                                                     resources={"output": output})
    assert result.success
    assert sorted(p.name for p in scen.iterdir()) == ["iter-0003", "iter-0004", "iter-0005"]
    archives = sorted(p.name for p in (scen.parent.parent / "archive" / SCENARIO).glob("*.tar.gz"))
    assert archives == ["iter-0001.tar.gz", "iter-0002.tar.gz"]
    for name in ("iter-0003", "iter-0004", "iter-0005"):
        assert snapshot(scen / name) == before[name]  # kept iterations untouched
    materialised(instance, "trajectory_dataset", SCENARIO)
    assert tick(instance, output) == []


def test_iteration_used_by_the_current_bc_policy_is_protected(instance, output, tmp_path):
    scen = five_iterations(tmp_path)
    materialised(instance, "bc_policy", f"{SCENARIO}|0", dataset_iteration="iter-0002")
    materialised(instance, "trajectory_dataset", SCENARIO)
    (request,) = tick(instance, output)
    assert archive_datasets_job.execute_in_process(run_config=request.run_config, instance=instance,
                                                   resources={"output": output}).success
    assert sorted(p.name for p in scen.iterdir()) == ["iter-0002", "iter-0003", "iter-0004", "iter-0005"]
