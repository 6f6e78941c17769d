"""Artefacts on disk: the ``output/`` layout, atomic writes, manifests and checksums.

Every file the project produces goes through this module, so the rules hold in one place:

- A file is written to a temporary name in its final directory, flushed, fsynced and then
  renamed into place. A reader never sees a half-written file, and a crash leaves at most a
  hidden ``.tmp-*`` file behind, never a partial file under the real name.
- A file is never replaced unless the caller says ``overwrite=True``. The default
  no-clobber commit is a hard link, which the kernel refuses atomically when the name is
  taken, so two concurrent writers cannot both "win".
- Run directories and iteration directories are claimed with an exclusive ``os.mkdir``,
  so two concurrent runs never share a directory. A resumable run directory is held with
  an OS lock (``flock``) that dies with its process, so a killed run's directory is free
  for the retry at once and two live processes can never both hold it.
- Every artefact directory holds a ``manifest.json``: what produced it (config, seeds, git
  revision, package versions, host), what it holds (each file's size and sha256) and how
  long it took. :func:`verify_manifest` checks a directory against its manifest.

Layout::

    output/<kind>/<partition>/<run-id>/            new_run_dir
    output/<kind>/<partition>/<run-id>/iter-0001/  next_iteration_dir
                                       manifest.json

This module is core library: it imports neither Dagster nor torch.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import fcntl
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ABANDONED_NAME",
    "DEFAULT_PACKAGES",
    "MANIFEST_NAME",
    "MANIFEST_SCHEMA_VERSION",
    "abandon_run_dir",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "build_manifest",
    "dumps_json",
    "git_revision",
    "holds_run_dir",
    "is_temp_name",
    "list_iterations",
    "new_run_dir",
    "new_run_id",
    "next_iteration_dir",
    "open_resumable_run_dir",
    "output_root",
    "package_versions",
    "read_json",
    "release_run_dir",
    "remove_temp_files",
    "sha256_file",
    "to_jsonable",
    "verify_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA_VERSION = 1
# Packages whose versions every manifest records.
DEFAULT_PACKAGES: tuple[str, ...] = (
    "numpy",
    "torch",
    "gymnasium",
    "stable-baselines3",
    "imitation",
    "dagster",
    "numba",
)

_OUTPUT_ENV = "ROBOSF_OUTPUT_DIR"
# Temporary files start with this prefix (hidden, and never matched by list_iterations or
# counted in a manifest). The random token after it makes every temp name unique.
_TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20  # bytes read per sha256 update
_REPO_ROOT = Path(__file__).resolve().parent.parent
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
    return _REPO_ROOT / "output"


def _check_component(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if _BAD_COMPONENT.search(value) or value in (".", "..") or value.startswith("."):
        raise ValueError(
            f"{what} {value!r} is not usable as a directory name: it must not contain "
            "'/', '\\' or NUL and must not start with '.'"
        )
    return value


def is_temp_name(name: str) -> bool:
    """True for names this module uses for in-flight temporary files."""
    return name.startswith(_TMP_PREFIX)


# ------------------------------------------------------------------------ checksums


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# -------------------------------------------------------------------- atomic writes


def fsync_dir(directory: Path) -> None:
    """Persist a rename. Best effort: some filesystems refuse fsync on a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _refuse(path: Path) -> FileExistsError:
    return FileExistsError(
        errno.EEXIST,
        f"refusing to overwrite existing file {path}; artefacts are never replaced in "
        "place (write a new run or iteration directory, or pass overwrite=True)",
        str(path),
    )


def _remove_temps(directory: Path, tmp_name: str) -> None:
    """Remove the temp file and anything a writer derived from it (e.g. np.savez adding
    ``.npz``). The random token in ``tmp_name`` makes the prefix ours alone."""
    try:
        entries = list(directory.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(tmp_name):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            pass


def remove_temp_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove every ``.tmp-*`` file or directory below ``directory`` (not following links).

    Only for a directory nobody else writes into (e.g. a run directory this process holds):
    temp names there are leftovers of writers killed mid-write. Returns what was removed.
    """
    removed: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in [*filenames, *dirnames]:
            if not is_temp_name(name):
                continue
            full = Path(dirpath) / name
            try:
                if full.is_dir() and not full.is_symlink():
                    shutil.rmtree(full)
                else:
                    full.unlink()
            except FileNotFoundError:
                continue
            removed.append(full)
        dirnames[:] = [d for d in dirnames if not is_temp_name(d)]
    return removed


def _commit(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move a complete, fsynced temp file to ``path``."""
    if overwrite:
        os.replace(tmp, path)
    else:
        try:
            # link() fails atomically with EEXIST when the name is taken: no check-then-act
            # race between two writers.
            os.link(tmp, path)
        except FileExistsError:
            raise _refuse(path) from None
        except OSError:
            # Filesystem without hard links: fall back to check-then-rename.
            if os.path.lexists(path):
                raise _refuse(path) from None
            os.rename(tmp, path)
        else:
            os.unlink(tmp)
    fsync_dir(path.parent)


def atomic_save(
    path: str | os.PathLike[str],
    writer: Callable[[Path], None],
    *,
    overwrite: bool = False,
    make_parents: bool = True,
) -> Path:
    """Let ``writer`` write a file, then move it to ``path`` atomically.

    ``writer`` is called with a temporary path in the same directory as ``path`` whose
    name ends with ``path``'s name (so libraries that insist on a suffix, like
    ``np.savez`` adding ``.npz`` or SB3 adding ``.zip``, find it there). Afterwards the
    temp file is fsynced and renamed to ``path``. If ``writer`` raises, or does not
    create the file, nothing is left at ``path`` and the temp file is removed.

    :param path: final file path; missing parent directories are created.
    :param writer: ``writer(tmp_path)`` must create a regular file at exactly ``tmp_path``
        (e.g. ``lambda p: model.save(p)``, ``lambda p: np.savez(p, **arrays)``).
    :param overwrite: replace an existing file at ``path``. Without it an existing file
        raises :class:`FileExistsError` naming the file, before ``writer`` runs.
    :param make_parents: create missing parent directories; with ``False`` a missing
        directory raises :class:`FileNotFoundError` and nothing is created.
    :return: ``path`` as a :class:`Path`.
    """
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise _refuse(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, f"directory {path.parent} does not exist", str(path.parent))
    tmp_name = f"{_TMP_PREFIX}{secrets.token_hex(4)}-{path.name}"
    tmp = path.parent / tmp_name
    try:
        writer(tmp)
        if not tmp.is_file() or tmp.is_symlink():
            derived = sorted(
                p.name for p in path.parent.iterdir() if p.name.startswith(tmp_name)
            )
            raise RuntimeError(
                f"writer for {path} did not create a regular file at the temporary path "
                f"{tmp}; found {derived or 'nothing'}. If the library appends a suffix, "
                f"give {path.name!r} that suffix."
            )
        _fsync_file(tmp)
        _commit(tmp, path, overwrite)
    except BaseException:
        _remove_temps(path.parent, tmp_name)
        raise
    return path


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False, make_parents: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_save`)."""

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            f.write(data)

    return atomic_save(path, write, overwrite=overwrite, make_parents=make_parents)


def atomic_write_text(
    path: str | os.PathLike[str],
    text: str,
    *,
    overwrite: bool = False,
    encoding: str = "utf-8",
    make_parents: bool = True,
) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_save`)."""
    return atomic_write_bytes(path, text.encode(encoding), overwrite=overwrite, make_parents=make_parents)


# ----------------------------------------------------------------------------- JSON


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` to plain JSON types.

    Handles numpy scalars and arrays, :class:`Path` (as a POSIX string), dataclasses,
    pydantic models (``model_dump``), enums, datetimes, tuples and sets (as lists; sets
    sorted). Non-finite floats (NaN, +-inf) become ``None`` because JSON has no spelling
    for them. Mapping keys become strings.

    :raises TypeError: naming the offending type and where it sits in ``obj``.
    """
    return _jsonable(obj, "$")


def _jsonable(obj: Any, where: str) -> Any:
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item(), where)
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist(), where)
    if isinstance(obj, Mapping):
        return {
            _json_key(k, where): _jsonable(v, f"{where}.{k}") for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        items = [_jsonable(v, f"{where}[]") for v in obj]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, os.PathLike):
        return Path(obj).as_posix()
    if isinstance(obj, enum.Enum):
        return _jsonable(obj.value, where)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj), where)
    if hasattr(obj, "model_dump") and callable(obj.model_dump):  # pydantic v2
        return _jsonable(obj.model_dump(mode="json"), where)
    raise TypeError(f"cannot write {type(obj).__qualname__} at {where} as JSON")


def _json_key(key: Any, where: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, (bool, int, float)) or key is None:
        return json.dumps(key)
    if isinstance(key, os.PathLike):
        return Path(key).as_posix()
    if isinstance(key, enum.Enum):
        return str(key.value)
    raise TypeError(f"cannot use {type(key).__qualname__} key at {where} as a JSON key")


def dumps_json(obj: Any) -> str:
    """The JSON text :func:`atomic_write_json` writes: sorted keys, indent 2, newline."""
    return json.dumps(to_jsonable(obj), sort_keys=True, indent=2, allow_nan=False) + "\n"


def atomic_write_json(
    path: str | os.PathLike[str], obj: Any, *, overwrite: bool = False, make_parents: bool = True
) -> Path:
    """Write ``obj`` as JSON atomically: sorted keys, indent 2, NaN/inf as ``null``.

    See :func:`to_jsonable` for the types accepted beyond plain JSON.
    """
    return atomic_write_text(path, dumps_json(obj), overwrite=overwrite, make_parents=make_parents)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Load a JSON file.

    :raises FileNotFoundError: when the file is missing.
    :raises ValueError: naming the file, line and column when it is not valid JSON.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from e


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
    parent = base / _check_component(kind, "kind") / _check_component(partition, "partition")
    parent.mkdir(parents=True, exist_ok=True)
    if run_id is not None:
        run_dir = parent / _check_component(run_id, "run_id")
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


RUN_KEY_NAME = "run_key.json"
LOCK_NAME = ".lock"


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


ABANDONED_NAME = "abandoned.json"


def abandon_run_dir(run_dir: str | os.PathLike[str], reason: str) -> Path:
    """Mark an unfinished run directory as never to be resumed (it is kept for inspection).

    :func:`open_resumable_run_dir` skips it from then on, so the next retry starts a fresh
    run directory instead of failing on the same damage forever.
    """
    path = Path(run_dir) / ABANDONED_NAME
    atomic_write_json(path, {"reason": reason, "at": _iso_utc(time.time()), "pid": os.getpid()}, overwrite=True)
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
    parent = base / _check_component(kind, "kind") / _check_component(partition, "partition")
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


# ---------------------------------------------------------------------- provenance


def git_revision(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """Commit sha of the checkout at ``cwd``, plus ``-dirty`` if tracked files changed.

    Untracked files do not make the tree dirty (as with ``git describe --dirty``).

    :param cwd: any directory inside the checkout; default the repository holding this
        package.
    :return: ``None`` outside a git checkout, before the first commit, or when git is
        missing or fails. Never raises.
    """
    where = Path(cwd) if cwd is not None else _REPO_ROOT

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=where,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    sha = git("rev-parse", "--verify", "--quiet", "HEAD")
    if not sha:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    if status is None:
        return sha
    return f"{sha}-dirty" if status else sha


def package_versions(names: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution, ``None`` for those not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _host_info() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "pid": os.getpid(),
    }


# ------------------------------------------------------------------------ manifests


def _iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _relative_inside(path: Path, artifact_dir: Path) -> str:
    full = path if path.is_absolute() else artifact_dir / path
    try:
        rel = full.resolve().relative_to(artifact_dir.resolve())
    except ValueError:
        raise ValueError(f"manifest file {path} is not inside {artifact_dir}") from None
    return rel.as_posix()


def _collect_files(artifact_dir: Path) -> list[str]:
    """Regular files below ``artifact_dir`` (not following symlinks), skipping temp names,
    the top-level manifest and a run lock."""
    rels = []
    for dirpath, dirnames, filenames in os.walk(artifact_dir):
        dirnames[:] = [d for d in dirnames if not is_temp_name(d)]
        for name in filenames:
            full = Path(dirpath) / name
            if is_temp_name(name) or full.is_symlink() or not full.is_file():
                continue
            rel = full.relative_to(artifact_dir).as_posix()
            if rel not in (MANIFEST_NAME, LOCK_NAME):
                rels.append(rel)
    return rels


def build_manifest(
    *,
    kind: str,
    partition: str | None,
    config: Any,
    seeds: Mapping[str, Any] | list[Any],
    artifact_dir: str | os.PathLike[str],
    files: Iterable[str | os.PathLike[str]] | None = None,
    started_at: float,
    run_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe an artefact directory: what produced it and what it holds.

    :param kind: artefact kind (the asset name).
    :param partition: partition key, or ``None`` for unpartitioned assets.
    :param config: the validated config (dict, dataclass or pydantic model).
    :param seeds: every seed used, by name or as a list.
    :param artifact_dir: the directory the manifest describes.
    :param files: files to list, absolute or relative to ``artifact_dir``. Default: every
        regular file below ``artifact_dir`` (recursively, skipping temp files and the
        top-level ``manifest.json``).
    :param started_at: ``time.time()`` when the work began; gives ``wall_time_s``.
    :param run_id: the run id, if any (e.g. the Dagster run id).
    :param extra: more top-level keys (e.g. metrics); may not shadow the standard keys.
    :return: a JSON-ready dict; ``files`` is ``[{"path", "sha256", "bytes"}]`` sorted by
        path.
    """
    now = time.time()
    artifact_dir = Path(artifact_dir)
    if not artifact_dir.is_dir():
        raise NotADirectoryError(f"artifact_dir {artifact_dir} is not a directory")
    if files is None:
        rels = _collect_files(artifact_dir)
    else:
        rels = [_relative_inside(Path(f), artifact_dir) for f in files]
    entries = []
    for rel in sorted(set(rels)):
        full = artifact_dir / rel
        if not full.is_file():
            raise FileNotFoundError(f"manifest file {full} does not exist or is not a file")
        entries.append({"path": rel, "sha256": sha256_file(full), "bytes": full.stat().st_size})

    manifest: dict[str, Any] = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "kind": kind,
        "partition": partition,
        "run_id": run_id,
        "created_at": _iso_utc(now),
        "started_at": _iso_utc(started_at),
        "wall_time_s": round(now - started_at, 3),
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "host": _host_info(),
        "config": config,
        "seeds": seeds,
        "files": entries,
    }
    if extra:
        clash = sorted(set(extra) & set(manifest))
        if clash:
            raise ValueError(f"manifest extra keys {clash} would shadow standard keys")
        manifest.update(extra)
    return to_jsonable(manifest)


def write_manifest(artifact_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Write ``artifact_dir/manifest.json`` atomically; an existing manifest is never
    replaced (:class:`FileExistsError`)."""
    return atomic_write_json(Path(artifact_dir) / MANIFEST_NAME, manifest)


def verify_manifest(artifact_dir: str | os.PathLike[str]) -> list[str]:
    """Check ``artifact_dir`` against its manifest.

    :return: one human-readable line per problem: missing or unreadable manifest, a listed
        file that is missing, has another size or another sha256, or an entry that points
        outside the directory. Files on disk that the manifest does not list are not
        problems. An empty list means everything matches.
    """
    artifact_dir = Path(artifact_dir)
    manifest_path = artifact_dir / MANIFEST_NAME
    try:
        manifest = read_json(manifest_path)
    except FileNotFoundError:
        return [f"{manifest_path}: manifest missing"]
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return [f"{manifest_path}: manifest unreadable: {e}"]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return [f"{manifest_path}: manifest has no 'files' list"]

    problems: list[str] = []
    root = artifact_dir.resolve()
    for i, entry in enumerate(manifest["files"]):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("path"), str)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("bytes"), int)
        ):
            problems.append(f"{manifest_path}: files[{i}] is malformed: {entry!r}")
            continue
        rel = entry["path"]
        full = artifact_dir / rel
        try:
            full.resolve().relative_to(root)
        except ValueError:
            problems.append(f"{rel}: listed path points outside {artifact_dir}")
            continue
        if not full.exists():
            problems.append(f"{rel}: missing")
            continue
        if not full.is_file():
            problems.append(f"{rel}: not a regular file")
            continue
        try:
            size = full.stat().st_size
            if size != entry["bytes"]:
                problems.append(
                    f"{rel}: size mismatch: manifest says {entry['bytes']} bytes, found {size}"
                )
                continue
            digest = sha256_file(full)
        except OSError as e:
            problems.append(f"{rel}: unreadable: {e}")
            continue
        if digest != entry["sha256"]:
            problems.append(
                f"{rel}: checksum mismatch: manifest says sha256 {entry['sha256'][:12]}..., "
                f"found {digest[:12]}..."
            )
    return problems
