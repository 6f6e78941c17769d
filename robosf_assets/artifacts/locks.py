"""Run-directory locks: a resumable run directory held by an OS lock (``flock``).

A resumable run directory is held with an OS lock that dies with its process, so a killed
run's directory is free for the retry at once and two live processes can never both hold
it. A run directory marked abandoned is never resumed.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robosf_assets.artifacts.atomic import atomic_write_json, is_temp_name, iso_utc, read_json, to_jsonable
from robosf_assets.artifacts.layout import (
    ABANDONED_NAME,
    LOCK_NAME,
    MANIFEST_NAME,
    RUN_KEY_NAME,
    check_component,
    new_run_dir,
    output_root,
)

__all__ = [
    "abandon_run_dir",
    "held_run_dir",
    "holds_run_dir",
    "open_resumable_run_dir",
    "release_run_dir",
    "resumable_run_dir",
]


# Run-directory locks held by this process: run dir -> open fd of its lock file. The lock
# is an OS lock (``flock``) on that open file description, so it is released by the kernel
# when the process dies, however it dies; the lock file itself is never removed (removing
# it would let a newcomer lock a fresh inode while an old holder keeps the old one).
_HELD_LOCKS: dict[Path, int] = {}
_HELD_LOCKS_GUARD = threading.Lock()


def _try_lock(run_dir: Path) -> bool:
    """Claim ``run_dir`` for this process with a non-blocking ``flock`` on its lock file.

    Two processes (or two calls in one process) can never both hold it; a lock whose
    holder died is free again. Returns ``False`` when someone else holds it.
    """
    key = run_dir.resolve()
    with _HELD_LOCKS_GUARD:
        if key in _HELD_LOCKS:
            return False  # held by an earlier call of this process that is not finished
        try:
            fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            return False  # the directory went away
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        try:  # for a human reading the directory; the lock itself is the flock
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        _HELD_LOCKS[key] = fd
        return True


def holds_run_dir(run_dir: str | os.PathLike[str]) -> bool:
    """Whether this process holds the lock of ``run_dir``."""
    with _HELD_LOCKS_GUARD:
        return Path(run_dir).resolve() in _HELD_LOCKS


def release_run_dir(run_dir: str | os.PathLike[str]) -> None:
    """Drop the lock taken by :func:`open_resumable_run_dir` (no-op if not held)."""
    with _HELD_LOCKS_GUARD:
        fd = _HELD_LOCKS.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor releases the flock


def abandon_run_dir(run_dir: str | os.PathLike[str], reason: str) -> Path:
    """Mark an unfinished run directory as never to be resumed (it is kept for inspection).

    :func:`open_resumable_run_dir` skips it from then on, so the next retry starts a fresh
    run directory instead of failing on the same damage forever.
    """
    path = Path(run_dir) / ABANDONED_NAME
    atomic_write_json(path, {"reason": reason, "at": iso_utc(time.time()), "pid": os.getpid()}, overwrite=True)
    return path


def open_resumable_run_dir(
    kind: str,
    partition: str,
    run_key: Mapping[str, Any],
    *,
    root: str | os.PathLike[str] | None = None,
) -> tuple[Path, bool]:
    """A run directory for work that can resume after an interruption.

    Returns the newest *unfinished* run directory (no ``manifest.json`` yet, not marked
    :func:`abandon_run_dir`) of ``<root>/<kind>/<partition>/`` whose ``run_key.json``
    equals ``run_key`` and whose lock nobody holds, and ``True``; otherwise a fresh
    :func:`new_run_dir` holding ``run_key.json``, and ``False``. The directory is locked
    (``flock`` on ``.lock``) until :func:`release_run_dir` or the end of this process, so
    a lock left by a killed process is free at once and two live processes never share a
    directory.

    :param run_key: what makes two runs the same work (config, seeds, inputs' checksums).
    """
    key = to_jsonable(dict(run_key))
    base = Path(root) if root is not None else output_root()
    parent = base / check_component(kind, "kind") / check_component(partition, "partition")
    if parent.is_dir():
        for run_dir in sorted((p for p in parent.iterdir() if p.is_dir()), reverse=True):
            if is_temp_name(run_dir.name) or not _resumable(run_dir, key):
                continue
            if _try_lock(run_dir):
                # re-check under the lock: it may have finished or been abandoned meanwhile
                if _resumable(run_dir, key):
                    return run_dir, True
                release_run_dir(run_dir)
    run_dir = new_run_dir(kind, partition, root=root)
    if not _try_lock(run_dir):  # cannot happen: nobody else knows this directory yet
        raise RuntimeError(f"could not lock the new run directory {run_dir}")
    atomic_write_json(run_dir / RUN_KEY_NAME, key)
    return run_dir, False


def _resumable(run_dir: Path, key: Any) -> bool:
    if (run_dir / MANIFEST_NAME).exists() or (run_dir / ABANDONED_NAME).exists():
        return False
    try:
        return read_json(run_dir / RUN_KEY_NAME) == key
    except (OSError, ValueError, UnicodeDecodeError):
        return False


@contextmanager
def held_run_dir(run_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Release the lock of ``run_dir`` when the block ends, however it ends.

    For a stage handed a run directory that :func:`open_resumable_run_dir` locked: its
    artefacts and manifest are written inside the block, and an exception leaves the
    directory free for the retry at once (as a killed process would).
    """
    try:
        yield Path(run_dir)
    finally:
        release_run_dir(run_dir)


@contextmanager
def resumable_run_dir(
    kind: str,
    partition: str,
    run_key: Mapping[str, Any],
    *,
    root: str | os.PathLike[str] | None = None,
) -> Iterator[tuple[Path, bool]]:
    """:func:`open_resumable_run_dir` as a context manager: ``(run_dir, resumed)``, locked
    for the block and released when it ends, however it ends."""
    run_dir, resumed = open_resumable_run_dir(kind, partition, run_key, root=root)
    with held_run_dir(run_dir):
        yield run_dir, resumed
