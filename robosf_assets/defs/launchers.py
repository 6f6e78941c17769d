"""Run launchers that can tell when a run's process has died, so run monitoring marks it failed.

Dagster's run monitoring (``run_monitoring`` in ``dagster.yaml``) asks the run launcher
whether a STARTED run's worker is still alive; a dead one is marked FAILURE (and then
retried once by ``run_retries``). Neither stock launcher can answer for a killed process:

- ``DefaultRunLauncher`` does not implement the check at all, so a run whose process was
  killed stays STARTED forever. :class:`MonitoredRunLauncher` reads the pid the run worker
  recorded ("Started process for run (pid: N)") and looks it up on this host.
- ``CeleryRunLauncher`` reads the Celery task state, which stays STARTED when the worker
  holding the task is SIGKILLed. :class:`MonitoredCeleryRunLauncher` also pings that worker
  and reports the run failed when it no longer answers.

Both are configured like the class they extend (``run_launcher: module:
robosf_assets.defs.launchers, class: ...`` in ``dagster.yaml``, ``deploy/dagster.yaml``).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

PING_ATTEMPTS = 3  # a worker counts as gone after this many unanswered pings
PING_TIMEOUT_S = 2.0


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid the run worker recorded in its "Started process for run" engine event, if any."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    for record in reversed(records):
        event = record.event_log_entry.dagster_event
        if event is None or not event.message or not event.message.startswith("Started process for run"):
            continue
        pid = event.engine_event_data.metadata.get("pid")
        if pid is not None:
            return int(pid.value)
    return None


def process_alive(pid: int) -> bool:
    """True while ``pid`` is a live, non-zombie process on this host (Linux ``/proc``; else signal 0)."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc").is_dir():
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MonitoredRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` (runs in a local process from the code server) plus a worker health check."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        pid = run_worker_pid(self._instance, run.run_id)
        if pid is None:  # recorded before the run starts; without it, leave the run alone
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker pid recorded")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)")


class MonitoredCeleryRunLauncher(CeleryRunLauncher):
    """``CeleryRunLauncher`` whose health check also asks whether the worker holding the task is alive.

    Needs ``task_track_started`` on the workers (``deploy/dagster_celery_config.py``), so a
    running task reads STARTED with the worker's hostname.
    """

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        result = super().check_run_worker_health(run)
        if result.status != WorkerStatus.RUNNING:
            return result
        task = self.celery.AsyncResult(run.tags[DAGSTER_CELERY_TASK_ID_TAG])
        info = task.info if isinstance(task.info, dict) else {}
        hostname = info.get("hostname")
        if not hostname:
            return result
        for _ in range(PING_ATTEMPTS):
            if self.celery.control.ping(destination=[hostname], timeout=PING_TIMEOUT_S):
                return result
        return CheckRunHealthResult(WorkerStatus.FAILED,
                                    f"Celery worker {hostname} holding the run's task does not answer (gone)")
