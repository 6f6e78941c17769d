"""Run monitoring marks a run failed once its process has died (MonitoredRunLauncher's health check).

The run is a real record on a real instance whose run worker is a real process: alive, the
run stays STARTED; SIGKILLed, Dagster's own monitoring step (what the daemon calls every
``poll_interval_seconds``) marks it FAILURE and says why.
"""

import logging
import subprocess
import sys

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.utils import make_new_run_id
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from robosf_assets.defs.launchers import MonitoredRunLauncher, process_alive, run_worker_pid

LAUNCHER = {"run_launcher": {"module": "robosf_assets.defs.launchers", "class": "MonitoredRunLauncher"},
            "run_monitoring": {"enabled": True, "max_resume_run_attempts": 0}}


@pytest.fixture
def monitored():
    with dg.instance_for_test(overrides=LAUNCHER) as instance:
        yield instance


def _started_run(instance: dg.DagsterInstance, pid: int) -> dg.DagsterRun:
    """A STARTED run whose worker recorded ``pid`` as the run worker does."""
    run = instance.add_run(dg.DagsterRun(job_name="expert_and_dataset_job", run_id=make_new_run_id(),
                                         status=dg.DagsterRunStatus.STARTED))
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    return run


def _monitor(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun:
    record = instance.get_run_record_by_id(run.run_id)
    monitor_started_run(instance, None, record, logging.getLogger("test"))
    return instance.get_run_by_id(run.run_id)


def test_a_live_run_worker_keeps_its_run_started(monitored):
    assert isinstance(monitored.run_launcher, MonitoredRunLauncher)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = _started_run(monitored, worker.pid)
        assert run_worker_pid(monitored, run.run_id) == worker.pid
        assert _monitor(monitored, run).status == dg.DagsterRunStatus.STARTED
    finally:
        worker.kill()
        worker.wait()


def test_a_killed_run_worker_gets_its_run_marked_failed(monitored):
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    run = _started_run(monitored, worker.pid)
    worker.kill()
    worker.wait()
    assert not process_alive(worker.pid)
    after = _monitor(monitored, run)
    assert after.status == dg.DagsterRunStatus.FAILURE
    (failure,) = monitored.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert f"run worker process {worker.pid} is gone" in failure.event_log_entry.dagster_event.message
