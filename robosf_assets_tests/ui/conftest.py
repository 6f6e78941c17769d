"""A real Dagster webserver (and, for tests that launch runs, the daemon) for the UI tests.

Each service is a subprocess started from the repository root, so it loads
``workspace.yaml`` exactly as ``make ui`` does, with a temporary ``DAGSTER_HOME`` holding a
copy of the project's ``dagster.yaml`` and a temporary ``ROBOSF_OUTPUT_DIR``. The webserver
listens on a free localhost port. Every service runs in its own process group and is torn
down with it (SIGTERM, then SIGKILL), so no code server or run worker outlives the tests.

The fixtures are package-scoped: both test modules share one webserver, and it stops when
the last UI test is done rather than at the end of the whole session.

The project's ``dagster.yaml`` uses the QueuedRunCoordinator: a launched run stays QUEUED
until ``dagster-daemon run`` dequeues it. Tests that launch runs ask for ``daemon``.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"  # screenshots kept by the browser test (git-ignored)
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 120.0  # webserver answering and the code location loaded
DAEMON_TIMEOUT_S = 90.0  # the run-queue daemon reporting healthy
STOP_GRACE_S = 15.0  # between SIGTERM and SIGKILL
LOG_TAIL_CHARS = 6000  # of a service's log quoted in a failure


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ui: drives a real Dagster webserver (deselect with -m 'not ui'; required in CI)"
    )


@dataclass(frozen=True)
class UiHome:
    """What the services share: their environment, instance, artefact root and logs."""

    env: dict[str, str]
    dagster_home: Path
    output_dir: Path  # ROBOSF_OUTPUT_DIR of the webserver and the daemon
    log_dir: Path


@dataclass
class Service:
    """A subprocess in its own process group, with its output captured in ``log_path``."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as err:
            return f"<no log: {err}>"
        return text[-LOG_TAIL_CHARS:]

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            pytest.fail(f"{self.name} exited with code {code}; its log ends:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM the whole group, SIGKILL what is left after the grace period."""
        pgid = self.proc.pid  # start_new_session=True: the leader's pid is the group id
        _signal_group(pgid, signal.SIGTERM)
        if not self._wait_for_group_exit(pgid):
            _signal_group(pgid, signal.SIGKILL)
            self._wait_for_group_exit(pgid)

    def _wait_for_group_exit(self, pgid: int) -> bool:
        """Reap the leader and wait until no live process is left in the group."""
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            self.proc.poll()
            if not _group_alive(pgid):
                return True
            time.sleep(0.2)
        return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in the group."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():  # not Linux: signal 0 answers for zombies too, but is all we have
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc_dir.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ")"
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _venv_script(name: str) -> str:
    """The console script next to the interpreter running pytest (``.venv/bin/<name>``)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} not found next to {sys.executable}; run `make install` first")
        return found
    return str(path)


def _die_with_parent() -> None:
    """Linux: have the kernel SIGTERM the service if the test process dies, even by SIGKILL."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _start(name: str, argv: list[str], home: UiHome) -> Service:
    """Start ``argv`` from the repository root in its own process group, logging to a file."""
    log_path = home.log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=home.env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    return Service(name, proc, log_path)


@dataclass(frozen=True)
class Webserver:
    """A running webserver and the instance it serves."""

    host: str
    port: int
    home: UiHome
    service: Service

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def output_dir(self) -> Path:
        return self.home.output_dir

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 10.0) -> dict:
        """POST a GraphQL query; the ``data`` of the answer (fails the test on ``errors``)."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            payload = json.loads(answer.read())
        if payload.get("errors"):
            pytest.fail(f"GraphQL errors for {query!r}: {payload['errors']}")
        return payload["data"]


@pytest.fixture(scope="package")
def ui_home(tmp_path_factory: pytest.TempPathFactory) -> UiHome:
    """A fresh DAGSTER_HOME (the project's dagster.yaml) and ROBOSF_OUTPUT_DIR."""
    base = tmp_path_factory.mktemp("dagster-ui")
    home = UiHome(env=dict(os.environ), dagster_home=base / "dagster_home",
                  output_dir=base / "output", log_dir=base / "logs")
    for path in (home.dagster_home, home.output_dir, home.log_dir):
        path.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home.dagster_home / "dagster.yaml")
    home.env.update(DAGSTER_HOME=str(home.dagster_home), ROBOSF_OUTPUT_DIR=str(home.output_dir),
                    PYTHONUNBUFFERED="1")
    return home


_LOCATIONS = """
{ workspaceOrError { __typename
    ... on PythonError { message }
    ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename ... on PythonError { message stack } } } } } }
"""


def _wait_for_webserver(server: Webserver) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    stage = "answering /server_info"
    while time.monotonic() < deadline:
        server.service.check_alive()
        try:
            if stage == "answering /server_info":
                with urllib.request.urlopen(f"{server.url}/server_info", timeout=5) as answer:
                    if answer.status == 200:
                        stage = "loading the code location"
                        continue
            else:
                workspace = server.graphql(_LOCATIONS)["workspaceOrError"]
                if workspace["__typename"] == "PythonError":
                    pytest.fail(f"workspace failed to load: {workspace['message']}")
                entries = workspace["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    for entry in entries:
                        loaded = entry["locationOrLoadError"]
                        if loaded and loaded["__typename"] == "PythonError":
                            pytest.fail(f"code location {entry['name']} failed to load:\n"
                                        f"{loaded['message']}\n{''.join(loaded['stack'])}")
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    pytest.fail(f"webserver not {stage} after {STARTUP_TIMEOUT_S:.0f} s; its log ends:\n"
                f"{server.service.log_tail()}")


@pytest.fixture(scope="package")
def webserver(ui_home: UiHome) -> Iterator[Webserver]:
    """``dagster-webserver -w workspace.yaml`` on a free localhost port, code location loaded."""
    port = _free_port()
    argv = [_venv_script("dagster-webserver"), "-w", "workspace.yaml", "-h", HOST, "-p", str(port)]
    service = _start("dagster-webserver", argv, ui_home)
    try:
        server = Webserver(HOST, port, ui_home, service)
        _wait_for_webserver(server)
        yield server
    finally:
        service.stop()


_QUEUE_DAEMON = """
{ instance { daemonHealth {
    daemonStatus(daemonType: "QUEUED_RUN_COORDINATOR") { healthy required } } } }
"""


@pytest.fixture(scope="package")
def daemon(webserver: Webserver) -> Iterator[Service]:
    """``dagster-daemon run`` on the webserver's instance; waits until the run queue is served."""
    argv = [_venv_script("dagster-daemon"), "run", "-w", "workspace.yaml"]
    service = _start("dagster-daemon", argv, webserver.home)
    try:
        deadline = time.monotonic() + DAEMON_TIMEOUT_S
        while True:
            service.check_alive()
            health = webserver.graphql(_QUEUE_DAEMON)["instance"]["daemonHealth"]
            if health["daemonStatus"]["healthy"]:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"run-queue daemon not healthy after {DAEMON_TIMEOUT_S:.0f} s "
                            f"({health}); its log ends:\n{service.log_tail()}")
            time.sleep(1.0)
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="package")
def artifacts_dir() -> Path:
    """``test-artifacts/`` at the repository root: files kept after the run (screenshots)."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
