"""Finding, starting and stopping ``dagster-daemon`` for an instance (backfills need it).

The daemon dequeues runs, advances backfills (every 30 s), watches run health and retries
crashed runs. :func:`ensure_daemon` uses one that is already serving the instance (e.g. from
``make ui``) or starts one from the repository root, in its own process group, logging to
``$DAGSTER_HOME/robosf-logs/daemon.log``; :meth:`OwnDaemon.stop` ends only a daemon it started.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from robosf_assets.logs import get_logger

log = get_logger("daemon")

REPO = Path(__file__).resolve().parents[2]
# the daemons a backfill needs: advancing it, dequeuing its runs, noticing dead runs
REQUIRED_DAEMONS = ("BACKFILL", "QUEUED_RUN_COORDINATOR", "MONITORING")
FRESH_HEARTBEAT_S = 45.0  # daemons heartbeat every 30 s
START_TIMEOUT_S = 180.0
STOP_GRACE_S = 20.0


def daemon_serving(instance: dg.DagsterInstance, fresh_s: float = FRESH_HEARTBEAT_S) -> bool:
    """True when every required daemon of the instance heartbeat within ``fresh_s`` seconds."""
    beats = instance.get_daemon_heartbeats()
    now = time.time()
    return all(kind in beats and now - beats[kind].timestamp < fresh_s for kind in REQUIRED_DAEMONS)


def _die_with_parent() -> None:
    """Linux: the kernel SIGTERMs the daemon if the process that started it dies."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class OwnDaemon:
    """A daemon this process started (``proc``), or None when another one serves the instance."""

    proc: subprocess.Popen | None
    log_path: Path | None

    def stop(self, instance: dg.DagsterInstance) -> None:
        """SIGTERM the daemon's process group, SIGKILL after a grace period; forget its heartbeats."""
        if self.proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
                break
            except subprocess.TimeoutExpired:
                continue
        # a stopped daemon's heartbeats would make the next command think it is still there
        instance.wipe_daemon_heartbeats()
        self.proc = None


def _daemon_argv() -> list[str]:
    script = Path(sys.executable).parent / "dagster-daemon"
    return [str(script) if script.exists() else "dagster-daemon", "run", "-w", str(REPO / "workspace.yaml")]


def ensure_daemon(instance: dg.DagsterInstance, home: Path, timeout_s: float = START_TIMEOUT_S) -> OwnDaemon:
    """Use the daemon serving ``instance``, or start one and wait until every required daemon heartbeats."""
    if daemon_serving(instance):
        log.info("dagster-daemon already serving {}", home)
        return OwnDaemon(None, None)
    log_dir = home / "robosf-logs"  # not logs/: Dagster moves that folder away
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "daemon.log"
    instance.wipe_daemon_heartbeats()  # stale ones from a daemon that died must not count
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            _daemon_argv(), cwd=REPO, env={**os.environ, "DAGSTER_HOME": str(home)}, stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    own = OwnDaemon(proc, log_path)
    log.info("started dagster-daemon (pid {}), log {}", proc.pid, log_path)
    deadline = time.monotonic() + timeout_s
    while not daemon_serving(instance):
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"dagster-daemon exited with code {proc.returncode}; {log_path} ends:\n{tail}")
        if time.monotonic() > deadline:
            own.stop(instance)
            raise RuntimeError(f"dagster-daemon not serving after {timeout_s:.0f} s; see {log_path}")
        time.sleep(1.0)
    return own
