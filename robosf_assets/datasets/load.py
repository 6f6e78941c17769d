"""Read dataset iterations: ``imitation`` trajectories, episode streaming, status.

Two readers, one layout (:mod:`.schema`):

- :func:`load_trajectories` decompresses each array once and returns
  ``TrajectoryWithRew`` objects whose arrays are views into those buffers (one copy of
  the data in memory). Use it for BC, where all demonstrations are needed anyway.
- :func:`iter_episodes` streams: a deflate-compressed NPZ member cannot be memory-mapped
  (``np.load(mmap_mode=...)`` silently loads compressed members whole), but it can be
  decompressed sequentially. Episodes are stored back to back, so the generator opens
  the ``observations``, ``actions`` and ``rewards`` members as zip streams, parses their
  ``.npy`` headers and reads exactly one episode's rows from each per step. Memory is
  one episode plus the small per-episode index arrays, whatever the dataset size.

Downstream code must only use validated datasets: both readers refuse anything whose
latest integrity report is not ``validated`` unless ``require_validated=False``. A report
is only as good as the bytes it judged, so before reading a validated dataset both
readers check again, cheaply next to training on it, that the manifest is unedited (its
self-digest), that every file matches the sha256 and size the manifest records, and that
the report was written for this manifest (same ``dataset_id`` and ``content_sha256``).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from imitation.data.types import TrajectoryWithRew

from robosf_assets.artifacts import MANIFEST_NAME, list_iterations, read_json, verify_manifest
from robosf_assets.datasets.schema import (
    ARRAY_SPECS,
    MANIFEST_DIGEST_KEY,
    STATUS_INCOMPLETE,
    STATUS_QUARANTINED,
    STATUS_RECORDED,
    STATUS_VALIDATED,
    TRAJECTORIES_NAME,
    manifest_digest,
)

__all__ = [
    "DatasetError",
    "NpyStream",
    "dataset_status",
    "integrity_report_paths",
    "iter_episodes",
    "latest_validated",
    "load_arrays",
    "load_trajectories",
    "read_integrity_report",
    "read_manifest",
    "verify_unchanged",
]

_REPORT_RE = re.compile(r"integrity(?:-(\d+))?\.json")
_EPISODE_ARRAYS = ("terminated", "truncated", "episode_starts", "obs_starts", "episode_lengths")


class DatasetError(RuntimeError):
    """A dataset iteration cannot be read as asked (incomplete, quarantined, malformed)."""


# ---- manifest and integrity reports -----------------------------------------------------


def read_manifest(iter_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The iteration's manifest.

    :raises DatasetError: when it is missing (incomplete iteration) or not a JSON object.
    """
    path = Path(iter_dir) / MANIFEST_NAME
    try:
        manifest = read_json(path)
    except FileNotFoundError:
        raise DatasetError(
            f"{path} is missing: the iteration is incomplete (recording did not finish)"
        ) from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path} is unreadable: {e}") from e
    if not isinstance(manifest, dict):
        raise DatasetError(f"{path} is not a JSON object")
    return manifest


def integrity_report_paths(iter_dir: str | os.PathLike[str]) -> list[Path]:
    """Integrity reports of an iteration, oldest first (``integrity.json`` is number 1)."""
    found = []
    try:
        entries = list(Path(iter_dir).iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        m = _REPORT_RE.fullmatch(entry.name)
        if m and entry.is_file():
            found.append((int(m.group(1) or 1), entry))
    return [p for _, p in sorted(found)]


def read_integrity_report(iter_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The latest integrity report as a dict, or ``None`` when the iteration has none.

    An unreadable report is returned as ``{"status": "quarantined", "reasons": [...]}``:
    a report that cannot be read proves nothing.
    """
    paths = integrity_report_paths(iter_dir)
    if not paths:
        return None
    try:
        report = read_json(paths[-1])
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return {
            "status": "quarantined",
            "reasons": [f"integrity report {paths[-1].name} unreadable: {e}"],
        }
    if not isinstance(report, dict) or not isinstance(report.get("status"), str):
        return {
            "status": "quarantined",
            "reasons": [f"integrity report {paths[-1].name} has no status"],
        }
    report.setdefault("report_file", paths[-1].name)
    return report


def dataset_status(iter_dir: str | os.PathLike[str]) -> str:
    """The iteration's status now.

    - ``incomplete``: no manifest and no integrity report (recording unfinished).
    - ``recorded``: manifest present, not validated yet.
    - ``validated`` / ``quarantined``: the latest integrity report's status; an
      iteration that has a report but lost its manifest is ``quarantined``.
    """
    iter_dir = Path(iter_dir)
    report = read_integrity_report(iter_dir)
    if not (iter_dir / MANIFEST_NAME).is_file():
        return STATUS_INCOMPLETE if report is None else STATUS_QUARANTINED
    return STATUS_RECORDED if report is None else str(report["status"])


def latest_validated(scenario_dir: str | os.PathLike[str]) -> Path | None:
    """The newest iteration of a scenario whose status is ``validated``, else ``None``."""
    for it in reversed(list_iterations(scenario_dir, require_manifest=True)):
        if dataset_status(it) == STATUS_VALIDATED:
            return it
    return None


def _require_validated(iter_dir: Path) -> None:
    status = dataset_status(iter_dir)
    if status != STATUS_VALIDATED:
        report = read_integrity_report(iter_dir) or {}
        reasons = report.get("reasons") or []
        why = f": {'; '.join(reasons[:3])}" if reasons else ""
        raise DatasetError(
            f"dataset {iter_dir} has status {status!r}, not 'validated'{why}. Validate it first "
            "(datasets.validate.validate_dataset + write_integrity_report), or pass "
            "require_validated=False for inspection only."
        )


def verify_unchanged(iter_dir: str | os.PathLike[str]) -> None:
    """Raise unless the iteration is still what its latest integrity report judged.

    Checks the manifest's self-digest, every file's sha256 and size against the manifest
    (:func:`~robosf_assets.artifacts.verify_manifest`), and that the report names this
    manifest's ``dataset_id`` and ``content_sha256``.

    :raises DatasetError: naming every difference found.
    """
    iter_dir = Path(iter_dir)
    manifest = read_manifest(iter_dir)
    problems = []
    if manifest.get(MANIFEST_DIGEST_KEY) != manifest_digest(manifest):
        problems.append(f"{MANIFEST_NAME} was edited after recording ({MANIFEST_DIGEST_KEY} does not match)")
    problems += verify_manifest(iter_dir)
    report = read_integrity_report(iter_dir) or {}
    for key in ("dataset_id", "content_sha256"):
        if report.get(key) != manifest.get(key):
            problems.append(
                f"integrity report {report.get('report_file')} judged {key} {report.get(key)!r}, "
                f"the manifest says {manifest.get(key)!r}"
            )
    if problems:
        raise DatasetError(
            f"dataset {iter_dir} changed since it was validated: {'; '.join(problems)}. "
            "Validate it again (its report will then say what is wrong)."
        )


# ---- whole-array reading ---------------------------------------------------------------


def load_arrays(
    iter_dir: str | os.PathLike[str], names: tuple[str, ...] = tuple(ARRAY_SPECS)
) -> dict[str, np.ndarray]:
    """The named arrays of ``trajectories.npz``, fully decompressed (no pickles).

    :raises DatasetError: when the file is missing, is not a zip, or lacks an array.
    """
    path = Path(iter_dir) / TRAJECTORIES_NAME
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [n for n in names if n not in npz.files]
            if missing:
                raise DatasetError(f"{path} lacks arrays {missing}")
            return {n: npz[n] for n in names}
    except FileNotFoundError:
        raise DatasetError(f"{path} is missing") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise DatasetError(f"{path} is unreadable: {type(e).__name__}: {e}") from e


def _trajectory(
    obs: np.ndarray, acts: np.ndarray, rews: np.ndarray, terminated: bool
) -> TrajectoryWithRew:
    return TrajectoryWithRew(obs=obs, acts=acts, infos=None, terminal=bool(terminated), rews=rews)


def load_trajectories(
    iter_dir: str | os.PathLike[str], *, require_validated: bool = True, verify: bool | None = None
) -> list[TrajectoryWithRew]:
    """Every episode as an ``imitation`` ``TrajectoryWithRew``, in recording order.

    ``obs`` has ``T + 1`` rows (terminal observation last), ``acts`` ``T``, ``rews`` ``T``
    (float32), ``infos`` is ``None`` and ``terminal`` is the episode's ``terminated`` flag
    (``False`` for a time-limit truncation, so value targets bootstrap there).

    :param require_validated: refuse datasets whose status is not ``validated``.
    :param verify: check the files against the manifest first (:func:`verify_unchanged`);
        default: when ``require_validated``.
    :raises DatasetError: for unvalidated, incomplete, changed or unreadable datasets.
    """
    iter_dir = Path(iter_dir)
    if require_validated:
        _require_validated(iter_dir)
    if require_validated if verify is None else verify:
        verify_unchanged(iter_dir)
    a = load_arrays(iter_dir)
    out = []
    for e in range(len(a["episode_lengths"])):
        t = int(a["episode_lengths"][e])
        s, o = int(a["episode_starts"][e]), int(a["obs_starts"][e])
        out.append(
            _trajectory(
                a["observations"][o : o + t + 1],
                a["actions"][s : s + t],
                a["rewards"][s : s + t],
                a["terminated"][e],
            )
        )
    return out


# ---- streaming -------------------------------------------------------------------------


class NpyStream:
    """Sequential row reader over one ``.npy`` member of a zip (compressed or stored).

    A deflate-compressed member cannot be memory-mapped, but it can be decompressed in
    order: the constructor parses the member's ``.npy`` header, :meth:`read_rows` returns
    the next rows, :meth:`at_end` says whether bytes remain. Use it as a context manager
    (or call :meth:`close`).

    :param zf: an open zip file (e.g. an ``.npz``).
    :param name: the array's name, without ``.npy``.
    :raises DatasetError: for a Fortran-ordered or object array (not streamable).
    :ivar shape: the array's shape, from its header.
    :ivar dtype: the array's dtype, from its header.
    """

    def __init__(self, zf: zipfile.ZipFile, name: str) -> None:
        self.name = name
        self._fh: BinaryIO = zf.open(f"{name}.npy")  # type: ignore[assignment]
        version = np.lib.format.read_magic(self._fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(self._fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(self._fh)
        if fortran or dtype.hasobject:
            raise DatasetError(
                f"array {name!r} is Fortran-ordered or holds objects; cannot stream it"
            )
        self.shape: tuple[int, ...] = tuple(shape)
        self.dtype = dtype
        self._row_shape = self.shape[1:]
        self._row_bytes = int(np.prod(self._row_shape, dtype=np.int64)) * dtype.itemsize

    def read_rows(self, n: int) -> np.ndarray:
        """The next ``n`` rows (a read-only array of shape ``(n, *shape[1:])``).

        :raises DatasetError: when the member ends before ``n`` rows.
        """
        want = n * self._row_bytes
        buf = self._fh.read(want)
        if len(buf) != want:
            raise DatasetError(
                f"array {self.name!r} ended early: wanted {want} bytes, got {len(buf)}"
            )
        return np.frombuffer(buf, dtype=self.dtype).reshape((n, *self._row_shape))

    def at_end(self) -> bool:
        """Whether no bytes remain after the rows read so far (consumes one byte if some do).

        Reading a member to its end makes :mod:`zipfile` verify its CRC-32, so a damaged
        member raises :class:`zipfile.BadZipFile` here at the latest.
        """
        return not self._fh.read(1)

    def close(self) -> None:
        """Close the member (the zip file stays open)."""
        self._fh.close()

    def __enter__(self) -> NpyStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_episodes(
    iter_dir: str | os.PathLike[str], *, require_validated: bool = True, verify: bool | None = None
) -> Iterator[TrajectoryWithRew]:
    """Stream the episodes one at a time (same objects as :func:`load_trajectories`).

    Reads each compressed member sequentially; see the module docstring. Episodes must be
    stored back to back in recording order (checked: a gap raises :class:`DatasetError`).
    """
    iter_dir = Path(iter_dir)
    if require_validated:
        _require_validated(iter_dir)
    if require_validated if verify is None else verify:
        verify_unchanged(iter_dir)
    index = load_arrays(iter_dir, _EPISODE_ARRAYS)
    path = iter_dir / TRAJECTORIES_NAME
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise DatasetError(f"{path} is unreadable: {e}") from e
    streams: list[NpyStream] = []
    try:
        for name in ("observations", "actions", "rewards"):
            streams.append(NpyStream(zf, name))
        obs_s, act_s, rew_s = streams
        next_step = next_obs = 0
        for e in range(len(index["episode_lengths"])):
            t = int(index["episode_lengths"][e])
            if (
                int(index["episode_starts"][e]) != next_step
                or int(index["obs_starts"][e]) != next_obs
            ):
                raise DatasetError(f"{path}: episode {e} is not stored right after episode {e - 1}")
            yield _trajectory(
                obs_s.read_rows(t + 1),
                act_s.read_rows(t),
                rew_s.read_rows(t),
                index["terminated"][e],
            )
            next_step += t
            next_obs += t + 1
    finally:
        for s in streams:
            s.close()
        zf.close()
