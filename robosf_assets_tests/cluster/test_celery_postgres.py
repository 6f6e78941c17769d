"""The whole graph on real services: Postgres storage, a Redis broker and two Celery run workers.

One tiny backfill of every asset for two scenarios and one seed, submitted through GraphQL
as the command line does, to ``deploy/dagster.yaml``'s CeleryRunLauncher (the cluster of
``make cluster``, started by ``deploy/local_cluster.py``). While both experts train, one
worker is SIGKILLed with its whole process group (a host dying) as soon as its expert has
written a checkpoint; a replacement worker joins. The test then checks that:

- run monitoring reported the killed run FAILED, and the retry it launched completed,
  resuming the expert from the checkpoint;
- the backfill ended with every stage of every partition materialised by a successful run,
  runs executed on both workers;
- the Postgres event log holds every materialisation and every check result.

``make test`` installs Debian's postgresql and redis-server when they are missing; without
them the test skips and says so.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy"))
import local_cluster  # noqa: E402  (deploy/local_cluster.py)

from robosf_assets_tests.defs.conftest import tiny_stage_config  # noqa: E402

pytestmark = pytest.mark.skipif(bool(local_cluster.missing_services()),
                                reason=f"not installed: {', '.join(local_cluster.missing_services())} "
                                       "(make test installs them: apt-get install -y postgresql redis-server)")

SCENARIOS = ["crossing", "corridor"]
KILLED_SCENARIO = "corridor"
SEEDS = [0]
BACKFILL_TIMEOUT_S = 900
# the expert whose worker is killed trains long enough to be caught between checkpoints
KILLED_EXPERT = {"total_timesteps": 8192, "checkpoint_every_steps": 512}


def _wait(predicate, what: str, timeout_s: float, cluster, poll_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {s.name}\n{s.log_tail(2500)}" for s in cluster.services.values())
            pytest.fail(f"{what} not reached after {timeout_s:.0f} s; service logs end:\n{logs}")
        time.sleep(poll_s)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("cluster")
    with local_cluster.LocalCluster(base) as running:
        running.start_postgres()
        running.start_redis()
        running.init_instance(training_slots=2)
        running.start_worker("worker1")
        running.start_worker("worker2")
        running.start_daemon()
        yield running


def _worker_of(app, run) -> str | None:
    """The Celery worker that executed a run (result_extended keeps its name)."""
    task_id = run.tags.get("dagster-celery/task_id")
    return app.AsyncResult(task_id).worker if task_id else None


def test_backfill_on_two_celery_workers_with_postgres_survives_a_killed_worker(cluster, monkeypatch):
    import dagster as dg

    from robosf_assets.defs import backfill as bf

    for key, value in cluster.env.items():  # the in-process GraphQL context's code server needs them
        monkeypatch.setenv(key, value)
    config = tiny_stage_config()
    config["expert_policy"]["scenario_overrides"] = {KILLED_SCENARIO: KILLED_EXPERT}
    with cluster.instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_launcher).__name__ == "MonitoredCeleryRunLauncher"
        with bf.graphql_context(instance) as context:
            backfill_id = bf.launch(context, SCENARIOS, SEEDS, bf.run_config("quick", config), title="cluster test")

        # the killed scenario's expert: wait for its first checkpoint, then kill its worker's process group
        def expert_checkpoint():
            return list((cluster.output_dir / "experts" / KILLED_SCENARIO).glob("*/checkpoints/*"))

        _wait(expert_checkpoint, f"a checkpoint of {KILLED_SCENARIO}'s expert", 600, cluster, poll_s=0.2)
        (victim_run,) = [r for r in bf.backfill_runs(instance, backfill_id)
                         if r.tags.get("dagster/partition") == KILLED_SCENARIO]
        app = cluster.celery_app()
        info = app.AsyncResult(victim_run.tags["dagster-celery/task_id"]).info
        victim = info["hostname"].split("@")[0]
        cluster.services[victim].kill()
        cluster.services.pop(victim)
        replacement = cluster.start_worker(f"{victim}b")
        assert replacement.alive()

        status = _wait(lambda: (b := instance.get_backfill(backfill_id)) and b.status in bf.DONE and b.status,
                       "the backfill finishing", BACKFILL_TIMEOUT_S, cluster, poll_s=2.0)
        runs = bf.backfill_runs(instance, backfill_id)
        killed = instance.get_run_by_id(victim_run.run_id)
        assert killed.status == dg.DagsterRunStatus.FAILURE
        failure = instance.get_records_for_run(killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        assert any("does not answer" in (r.event_log_entry.dagster_event.message or "") for r in failure), (
            "the killed run was not failed by run monitoring")
        retries = [r for r in runs if r.tags.get("dagster/parent_run_id") == killed.run_id]
        assert len(retries) == 1 and retries[0].status == dg.DagsterRunStatus.SUCCESS
        (manifest_path,) = (cluster.output_dir / "experts" / KILLED_SCENARIO).glob("*/manifest.json")
        manifest = json.loads(manifest_path.read_text())
        assert manifest["resumed"] is True and "step-" in manifest["resumed_from"]

        assert status == dg._core.execution.backfill.BulkActionStatus.COMPLETED_SUCCESS, bf.format_counts(
            bf.stage_counts(runs), bf.expected_runs(SCENARIOS, SEEDS))
        latest = bf.latest_attempts(runs)
        assert {stage for stage, _ in latest} == set(bf.STAGES)
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in latest.values())
        workers = {_worker_of(app, r) for r in runs if r.status == dg.DagsterRunStatus.SUCCESS}
        assert len({w for w in workers if w}) >= 2, f"successful runs executed on {workers}"

        # Postgres holds every materialisation and check result of the backfill
        materialised: dict[str, set] = {}
        checks: dict[str, set] = {}
        kinds = {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION}
        for run in runs:
            partition = run.tags.get("dagster/partition")
            for record in instance.get_records_for_run(run.run_id, of_type=kinds).records:
                event = record.event_log_entry.dagster_event
                if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                    materialised.setdefault(event.asset_key.to_user_string(), set()).add(partition)
                else:
                    checks.setdefault(event.event_specific_data.check_name, set()).add(partition)
        per_seed = {f"{s}|{seed}" for s in SCENARIOS for seed in SEEDS}
        for asset in bf.STAGES["expert+dataset"] + bf.STAGES["report"]:
            assert materialised.get(asset) == set(SCENARIOS), (asset, materialised)
        for asset in bf.STAGES["arms"]:
            assert materialised.get(asset) == per_seed, (asset, materialised)
        assert materialised.get("benchmark_summary") == {None}
        for name in ("expert_promotion_bar", "dataset_size_within_cap", "episode_count_minimum",
                     "dataset_integrity", "sample_efficiency_target"):
            assert checks.get(name) == set(SCENARIOS), (name, checks)
