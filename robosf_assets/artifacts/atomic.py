"""Atomic files: no-clobber writes through a temp name, and the project's JSON.

- A file is written to a temporary name in its final directory, flushed, fsynced and then
  renamed into place. A reader never sees a half-written file, and a crash leaves at most a
  hidden ``.tmp-*`` file behind, never a partial file under the real name.
- A file is never replaced unless the caller says ``overwrite=True``. The default
  no-clobber commit is a hard link, which the kernel refuses atomically when the name is
  taken, so two concurrent writers cannot both "win".
- JSON is written with sorted keys and indent 2 (:func:`dumps_json`), so the same object
  gives the same bytes; numpy values, paths, dataclasses and pydantic models are accepted
  (:func:`to_jsonable`).
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "commit_temp_file",
    "dumps_json",
    "fsync_dir",
    "is_temp_name",
    "iso_utc",
    "read_json",
    "remove_temp_files",
    "to_jsonable",
]

# Temporary files start with this prefix (hidden, and never matched by list_iterations or
# counted in a manifest). The random token after it makes every temp name unique.
_TMP_PREFIX = ".tmp-"


def is_temp_name(name: str) -> bool:
    """True for names this module uses for in-flight temporary files."""
    return name.startswith(_TMP_PREFIX)


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


def commit_temp_file(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move a complete, fsynced temp file to ``path``.

    The one step every atomic write ends with, looked up at call time, so the fault tests
    (``robosf_assets_tests/faults_driver.py``) can wrap it here; not re-exported by the
    package, whose callers use the writers above it.
    """
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
        commit_temp_file(tmp, path, overwrite)
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


def iso_utc(ts: float) -> str:
    """``ts`` (seconds since the epoch) as an ISO-8601 UTC time with milliseconds, as
    manifests and lock notes record it."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
