"""The ``output/`` layout: where artefacts live and how run and iteration directories are
claimed.

Layout::

    output/<kind>/<partition>/<run-id>/            new_run_dir
    output/<kind>/<partition>/<run-id>/iter-0001/  next_iteration_dir
                                       manifest.json

Run directories and iteration directories are claimed with an exclusive ``os.mkdir``, so
two concurrent runs never share a directory. The reserved file names of an artefact
directory (manifest, run key, lock, abandoned note) are defined here, once.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "ABANDONED_NAME",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "REPO_ROOT",
    "RUN_KEY_NAME",
    "check_component",
    "list_iterations",
    "new_run_dir",
    "new_run_id",
    "next_iteration_dir",
    "output_root",
]

MANIFEST_NAME = "manifest.json"
"""Every finished artefact directory holds this file (see :mod:`.manifest`)."""
RUN_KEY_NAME = "run_key.json"
"""What makes two resumable runs the same work (see :mod:`.locks`)."""
LOCK_NAME = ".lock"
"""The file a resumable run directory's ``flock`` is taken on (never removed)."""
ABANDONED_NAME = "abandoned.json"
"""Marks an unfinished run directory that must never be resumed."""

_OUTPUT_ENV = "ROBOSF_OUTPUT_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout holding the ``robosf_assets`` package."""
# A path component we accept for kind / partition / run id: no separators, not hidden,
# not "." or "..".
_BAD_COMPONENT = re.compile(r"[/\\\x00]")


# --------------------------------------------------------------------------- paths


def output_root() -> Path:
    """Root of all artefacts: ``$ROBOSF_OUTPUT_DIR`` if set, else ``<repo>/output``.

    The repository is the parent of the ``robosf_assets`` package directory. The
    directory is not created here.
    """
    env = os.environ.get(_OUTPUT_ENV)
    if env:
        return Path(env).expanduser()
    return REPO_ROOT / "output"


def check_component(value: str, what: str) -> str:
    """``value`` if it is usable as one directory name, else :class:`ValueError` naming
    ``what``."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if _BAD_COMPONENT.search(value) or value in (".", "..") or value.startswith("."):
        raise ValueError(
            f"{what} {value!r} is not usable as a directory name: it must not contain "
            "'/', '\\' or NUL and must not start with '.'"
        )
    return value


# ---------------------------------------------------------- run and iteration dirs


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by creation time: ``20261126T071500Z-3fa2``."""
    now = now or datetime.now(UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def new_run_dir(
    kind: str,
    partition: str,
    run_id: str | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    attempts: int = 20,
) -> Path:
    """Create and claim ``<root>/<kind>/<partition>/<run-id>/``.

    The run directory is created with an exclusive ``os.mkdir``: it did not exist before
    this call, so no other run writes into it.

    :param kind: artefact kind, e.g. ``"expert_policy"``.
    :param partition: partition key, e.g. a scenario name. Must be a single path
        component (multi-partition keys need their separators replaced by the caller).
    :param run_id: use this id; an existing directory of that name raises
        :class:`FileExistsError`. Default: :func:`new_run_id`, retried on collision.
    :param root: default :func:`output_root`.
    :param attempts: collision retries for generated run ids.
    """
    base = Path(root) if root is not None else output_root()
    parent = base / check_component(kind, "kind") / check_component(partition, "partition")
    parent.mkdir(parents=True, exist_ok=True)
    if run_id is not None:
        run_dir = parent / check_component(run_id, "run_id")
        os.mkdir(run_dir)  # FileExistsError names the directory
        return run_dir
    for _ in range(attempts):
        run_dir = parent / new_run_id()
        try:
            os.mkdir(run_dir)
        except FileExistsError:
            continue
        return run_dir
    raise FileExistsError(
        errno.EEXIST, f"could not allocate a fresh run id under {parent} in {attempts} tries"
    )


def _iteration_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(re.escape(prefix) + r"(\d+)")


def _iterations(parent: Path, prefix: str) -> list[tuple[int, Path]]:
    pattern = _iteration_pattern(prefix)
    found = []
    try:
        entries = list(parent.iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m and entry.is_dir() and not entry.is_symlink():
            found.append((int(m.group(1)), entry))
    found.sort(key=lambda t: (t[0], t[1].name))
    return found


def next_iteration_dir(
    parent: str | os.PathLike[str], prefix: str = "iter-", width: int = 4
) -> Path:
    """Create and claim the next iteration directory: ``iter-0001``, ``iter-0002``, ...

    The number is one more than the highest existing one; the directory is created with an
    exclusive ``os.mkdir`` and the next number is tried when another caller got there
    first, so concurrent callers (threads or processes) always get distinct directories.
    ``parent`` is created if missing. Numbers past ``width`` digits simply grow wider.

    Numbers come from what is on disk: if every iteration is removed, numbering restarts.
    Archival rotation should therefore always keep the newest iteration.
    """
    parent = Path(parent)
    if not prefix or _BAD_COMPONENT.search(prefix) or prefix.startswith("."):
        raise ValueError(f"iteration prefix {prefix!r} must be a plain, non-hidden name")
    parent.mkdir(parents=True, exist_ok=True)
    existing = _iterations(parent, prefix)
    n = existing[-1][0] + 1 if existing else 1
    while True:
        candidate = parent / f"{prefix}{n:0{width}d}"
        try:
            os.mkdir(candidate)
        except FileExistsError:
            n += 1
            continue
        return candidate


def list_iterations(
    parent: str | os.PathLike[str],
    prefix: str = "iter-",
    *,
    require_manifest: bool = False,
) -> list[Path]:
    """Iteration directories under ``parent``, sorted by number.

    Names that are not ``<prefix><digits>`` (temp files, ``iter-0003.partial``, files) are
    ignored. With ``require_manifest=True`` only iterations whose ``manifest.json`` exists
    are listed, i.e. the ones whose writer finished. A missing ``parent`` gives ``[]``.
    """
    found = _iterations(Path(parent), prefix)
    paths = [p for _, p in found]
    if require_manifest:
        paths = [p for p in paths if (p / MANIFEST_NAME).is_file()]
    return paths
