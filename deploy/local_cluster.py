"""A local "cluster" on 127.0.0.1: Postgres, Redis, Celery run workers, the daemon and the webserver.

``make cluster`` (``python deploy/local_cluster.py``) starts a private Postgres cluster
(Debian's ``initdb``/``postgres`` from ``/usr/lib/postgresql/*/bin``), a Redis server, two
Celery workers, ``dagster-daemon`` and ``dagster-webserver``, each on a free loopback port,
with a ``DAGSTER_HOME`` holding ``deploy/dagster.yaml``; it prints the UI address and the
environment to use the cluster from another shell (``. .cluster/env.sh``, then
``python -m robosf_assets.cli demo`` submits the backfill to it), and stops everything on
Ctrl-C. The cluster tests (robosf_assets_tests/cluster/) use the same class.

The database is new each time (a directory under ``/tmp``, removed on stop); Postgres
refuses to run as root, so as root it runs as ``nobody``, who owns that directory. Nothing
here needs the network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PG_USER = "dagster"
PG_DB = "robosf"
STOP_GRACE_S = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def postgres_bin_dir() -> Path | None:
    """The newest Debian Postgres ``bin/`` (or the one ``initdb`` on PATH is in)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing_services() -> list[str]:
    """What is not installed of Postgres, Redis and runuser (only needed as root)."""
    missing = []
    if postgres_bin_dir() is None:
        missing.append("postgresql (initdb, postgres)")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser (to run Postgres as nobody)")
    return missing


def _venv_script(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


@dataclass
class Service:
    """A subprocess in its own process group, logging to ``log_path``."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    stop_signal: int = signal.SIGTERM

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as err:
            return f"<no log: {err}>"

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a host dying)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self) -> None:
        for sig in (self.stop_signal, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; its group may not be (a worker's pool children)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return


@dataclass
class LocalCluster:
    """Postgres, Redis, Celery workers, daemon and webserver under ``base`` (see the module docstring).

    :param base: directory for the instance, logs and Redis (Postgres' data may live in /tmp, see above).
    :param output_dir: ROBOSF_OUTPUT_DIR shared by every process (default ``base/output``).
    """

    base: Path
    output_dir: Path | None = None
    pg_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    services: dict[str, Service] = field(default_factory=dict)
    _pg_dir: Path | None = None

    def __post_init__(self) -> None:
        self.base = Path(self.base).resolve()
        self.output_dir = Path(self.output_dir or self.base / "output")
        for sub in ("dagster_home", "logs"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "deploy" / "dagster.yaml", self.home / "dagster.yaml")

    @property
    def home(self) -> Path:
        return self.base / "dagster_home"

    @property
    def broker(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def env(self) -> dict[str, str]:
        """The environment every process of the cluster (and a client) needs."""
        return {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            "ROBOSF_OUTPUT_DIR": str(self.output_dir),
            "ROBOSF_PG_HOST": HOST, "ROBOSF_PG_PORT": str(self.pg_port), "ROBOSF_PG_USER": PG_USER,
            "ROBOSF_PG_PASSWORD": "", "ROBOSF_PG_DB": PG_DB,
            "ROBOSF_CELERY_BROKER": self.broker, "ROBOSF_CELERY_BACKEND": f"redis://{HOST}:{self.redis_port}/1",
            # deploy/ for dagster_celery_config, the repository for robosf_assets
            "PYTHONPATH": os.pathsep.join([str(REPO / "deploy"), str(REPO)]),
            "PYTHONUNBUFFERED": "1",
        }

    def _start(self, name: str, argv: list[str], stop_signal: int = signal.SIGTERM, cwd: Path = REPO) -> Service:
        log_path = self.base / "logs" / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, cwd=cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        service = Service(name, proc, log_path, stop_signal)
        self.services[name] = service
        return service

    def _wait(self, service: Service, ready, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if not service.alive():
                raise RuntimeError(f"{service.name} exited ({service.proc.returncode}); its log ends:\n"
                                   f"{service.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service.name} not {what} after {timeout_s:.0f} s; its log ends:\n"
                                   f"{service.log_tail()}")
            time.sleep(0.5)

    # ------------------------------------------------------------------ services

    def start_postgres(self, timeout_s: float = 60.0) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError("Postgres is not installed (apt-get install postgresql)")
        # a fresh database each time, in /tmp (short socket paths), removed by stop()
        self._pg_dir = Path(tempfile.mkdtemp(prefix="robosf-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses root: run it as nobody, in a directory nobody owns
            shutil.chown(self._pg_dir, user="nobody")
            as_user = ["runuser", "-u", "nobody", "--"]
        data = self._pg_dir / "data"
        init = subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust",
                               "-E", "UTF8", "--no-sync"], cwd="/tmp", capture_output=True, text=True)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")
        service = self._start("postgres", [
            *as_user, str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.pg_port), "-k", str(self._pg_dir),
            "-c", f"listen_addresses={HOST}", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=300",
        ], stop_signal=signal.SIGINT, cwd=Path("/tmp"))  # SIGINT: Postgres' fast shutdown

        def ready() -> bool:
            return subprocess.run([str(bin_dir / "pg_isready"), "-h", HOST, "-p", str(self.pg_port), "-U", PG_USER],
                                  capture_output=True).returncode == 0

        self._wait(service, ready, "accepting connections", timeout_s)
        made = subprocess.run([str(bin_dir / "createdb"), "-h", HOST, "-p", str(self.pg_port), "-U", PG_USER, PG_DB],
                              capture_output=True, text=True)
        if made.returncode != 0:
            raise RuntimeError(f"createdb failed: {made.stderr}")

    def start_redis(self, timeout_s: float = 30.0) -> None:
        service = self._start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", HOST,
                                        "--save", "", "--appendonly", "no", "--dir", str(self.base)])

        def ready() -> bool:
            try:
                with socket.create_connection((HOST, self.redis_port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        self._wait(service, ready, "answering PING", timeout_s)

    def init_instance(self, training_slots: int) -> None:
        """Create Dagster's schema in Postgres and set the training pool (one process, before the others)."""
        done = subprocess.run([sys.executable, "-m", "robosf_assets.cli", "pool", "--slots", str(training_slots)],
                              cwd=REPO, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"instance set-up failed:\n{done.stdout}\n{done.stderr[-4000:]}")

    def celery_app(self):
        from celery import Celery

        env = self.env
        return Celery(broker=env["ROBOSF_CELERY_BROKER"], backend=env["ROBOSF_CELERY_BACKEND"])

    def start_worker(self, name: str, timeout_s: float = 180.0) -> Service:
        """``celery -A dagster_celery.app worker -Q dagster`` with one slot, named ``name@robosf``."""
        service = self._start(name, [_venv_script("celery"), "-A", "dagster_celery.app", "worker", "-Q", "dagster",
                                     "--concurrency", "1", "-n", f"{name}@robosf", "--loglevel", "INFO"])
        app = self.celery_app()
        self._wait(service, lambda: bool(app.control.ping(destination=[f"{name}@robosf"], timeout=1.0)),
                   "answering Celery pings", timeout_s)
        return service

    @contextmanager
    def instance(self) -> Iterator:
        """The cluster's Dagster instance in this process (dagster.yaml's env values resolved from ``env``)."""
        import dagster as dg

        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            instance = dg.DagsterInstance.from_config(str(self.home))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        with instance:
            yield instance

    def start_daemon(self, timeout_s: float = 240.0) -> Service:
        from robosf_assets.defs.daemon import daemon_serving

        service = self._start("dagster-daemon", [_venv_script("dagster-daemon"), "run", "-w", "workspace.yaml"])
        with self.instance() as instance:
            self._wait(service, lambda: daemon_serving(instance), "heartbeating", timeout_s)
        return service

    def start_webserver(self, port: int) -> Service:
        return self._start("dagster-webserver", [_venv_script("dagster-webserver"), "-w", "workspace.yaml",
                                                 "-h", HOST, "-p", str(port)])

    def stop(self) -> None:
        """Stop every service, newest first (Postgres last), and remove Postgres' data directory."""
        for name in reversed(list(self.services)):
            self.services.pop(name).stop()
        if self._pg_dir is not None:
            shutil.rmtree(self._pg_dir, ignore_errors=True)
            self._pg_dir = None

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=REPO / ".cluster", help="instance, logs and output (default .cluster/)")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers, one run slot each")
    parser.add_argument("--port", type=int, default=3000, help="webserver port")
    args = parser.parse_args(argv)
    missing = missing_services()
    if missing:
        parser.exit(2, f"not installed: {', '.join(missing)} (apt-get install -y postgresql redis-server)\n")
    with LocalCluster(args.dir) as cluster:
        cluster.start_postgres()
        cluster.start_redis()
        cluster.init_instance(training_slots=args.workers)
        for i in range(1, args.workers + 1):
            cluster.start_worker(f"worker{i}")
        cluster.start_daemon()
        cluster.start_webserver(args.port)
        env_file = args.dir / "env.sh"
        keys = [k for k in cluster.env if k.startswith(("DAGSTER_HOME", "ROBOSF_", "PYTHONPATH"))]
        env_file.write_text("".join(f"export {k}='{cluster.env[k]}'\n" for k in keys))
        print(f"cluster up: Postgres {HOST}:{cluster.pg_port}, Redis {HOST}:{cluster.redis_port}, "
              f"{args.workers} Celery workers, daemon; UI http://{HOST}:{args.port}\n"
              f"logs in {args.dir / 'logs'}; from another shell: . {env_file} && "
              f"{sys.executable} -m robosf_assets.cli demo\nCtrl-C stops the cluster.", flush=True)
        try:
            while all(s.alive() for s in cluster.services.values()):
                time.sleep(2.0)
            dead = [s.name for s in cluster.services.values() if not s.alive()]
            print(f"{', '.join(dead)} stopped; stopping the cluster", flush=True)
            return 1
        except KeyboardInterrupt:
            print("stopping the cluster", flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(main())
