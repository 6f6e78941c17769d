"""Launch a partitioned job through the running webserver with Dagster's own GraphQL client.

The run goes through the project's QueuedRunCoordinator, so the daemon dequeues it, as in
``make ui``. The budget is the tiny one of the asset tests: the run takes well under a minute.
"""

from __future__ import annotations

import json
import time

import pytest
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from robosf_assets_tests.defs.conftest import expert_config
from robosf_assets_tests.ui.conftest import Service, Webserver

pytestmark = pytest.mark.ui

JOB = "expert_and_dataset_job"
SCENARIO = "crossing"
DATASET = {"n_episodes": 6, "min_episodes": 5, "n_envs": 3}
RUN_CONFIG = {
    "ops": {
        # a promotion bar any expert passes: the run tests the plumbing, not the learning
        "expert_policy": {"config": expert_config(min_success=0.0, max_collision=1.0)},
        "trajectory_dataset": {"config": DATASET},
        "validated_dataset": {"config": DATASET},
    }
}
RUN_TIMEOUT_S = 300
POLL_S = 1.0
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def _failure_story(server: Webserver, run_id: str) -> str:
    """The run's error events, for a failure message."""
    query = """query ($runId: ID!) { logsForRun(runId: $runId) { __typename
        ... on EventConnection { events { __typename ... on MessageEvent { message stepKey }
            ... on ErrorEvent { error { message } } } } } }"""
    logs = server.graphql(query, {"runId": run_id})["logsForRun"]
    events = logs.get("events", [])
    errors = [e for e in events if e.get("error") or e["__typename"].endswith("FailureEvent")]
    return json.dumps(errors or events[-10:], indent=1)[:6000]


def test_launch_one_partition_and_wait_for_success(webserver: Webserver, daemon: Service):
    client = DagsterGraphQLClient(webserver.host, port_number=webserver.port)
    run_id = client.submit_job_execution(JOB, run_config=RUN_CONFIG,
                                         tags={"dagster/partition": SCENARIO})

    deadline = time.monotonic() + RUN_TIMEOUT_S
    status = client.get_run_status(run_id)
    while status not in FINISHED:
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} still {status.value} after {RUN_TIMEOUT_S} s; "
                        f"daemon log ends:\n{daemon.log_tail()}")
        daemon.check_alive()
        time.sleep(POLL_S)
        status = client.get_run_status(run_id)
    assert status == DagsterRunStatus.SUCCESS, (
        f"run {run_id} ended {status.value}:\n{_failure_story(webserver, run_id)}"
    )

    # the instance recorded each asset of the job for the partition, by this run
    query = """query ($path: [String!]!) { assetOrError(assetKey: {path: $path}) {
        ... on Asset { assetMaterializations(limit: 1) { partition runId } } } }"""
    for asset in ("expert_policy", "trajectory_dataset", "validated_dataset"):
        answer = webserver.graphql(query, {"path": [asset]})["assetOrError"]
        (latest,) = answer["assetMaterializations"]
        assert latest == {"partition": SCENARIO, "runId": run_id}, asset

    out = webserver.output_dir
    experts = sorted((out / "experts" / SCENARIO).glob("*/manifest.json"))
    assert len(experts) == 1, f"one finished expert run expected in {out}/experts/{SCENARIO}"
    assert (out / "datasets" / SCENARIO / "iter-0001" / "manifest.json").is_file()
