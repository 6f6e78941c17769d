"""Validate a dataset iteration: every check runs, every failure becomes a reason.

:func:`validate_dataset` never raises on bad data and never writes, moves or deletes
anything: a truncated or corrupt NPZ, NaN values, misaligned arrays, a missing or edited
manifest, a dataset over the size cap, each ends as a failed check with a sentence that
names the file, array or field. The result is an :class:`IntegrityReport` with status
``validated`` (all checks passed) or ``quarantined`` (the reasons of every failed check).

Checks (``IntegrityReport.checks`` keys; each is also callable on its own where cheap):

=================  ==================================================================
manifest           present, a JSON object, its self-digest matches (not edited)
metadata           required fields present; counts, shapes, seeds agree with the data
checksums          every listed file matches its sha256 and size (verify_manifest)
npz                trajectories.npz opens, holds every array, each decompresses (CRC)
dtypes             dtype and rank of every array
alignment          episode boundaries consistent with actions, rewards, observations
finite             no NaN or inf in observations, actions, rewards
action_range       actions within [action_low, action_high]
observation_range  observations within the observation space bounds
episodes_jsonl     one record per episode; seeds and lengths agree with the arrays
content            per-array sha256 equals the manifest's (array bytes, not the file)
episode_count      at least ``min_episodes`` episodes    (:func:`check_episode_count`)
size_cap           bytes on disk at most ``size_cap_bytes`` (:func:`check_size_cap`)
=================  ==================================================================

Integrity reports are written next to the data by :func:`write_integrity_report`:
``integrity.json`` first, then ``integrity-0002.json`` and so on. A report is never
overwritten, so re-validating (after a code fix, or to detect bit rot) keeps the
history; readers take the highest-numbered one as the current status. Reports are not
in the manifest (they are written after it) and the manifest is never modified.

The observations are scanned in row chunks straight from the compressed stream, so
memory stays bounded for datasets far larger than RAM; the other arrays are ~75 times
smaller and are read whole.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from robosf_assets.artifacts import (
    MANIFEST_NAME,
    atomic_write_json,
    read_json,
    verify_manifest,
)
from robosf_assets.benchmark.episodes import read_episodes_jsonl
from robosf_assets.datasets.load import _NpyStream
from robosf_assets.datasets.schema import (
    ARRAY_SPECS,
    DATASET_KIND,
    DATASET_SCHEMA_VERSION,
    EPISODES_NAME,
    INTEGRITY_NAME,
    MANIFEST_DIGEST_KEY,
    NULLABLE_MANIFEST_FIELDS,
    REQUIRED_MANIFEST_FIELDS,
    REQUIRED_SOURCE_FIELDS,
    STATUS_QUARANTINED,
    STATUS_VALIDATED,
    TRAJECTORIES_NAME,
    array_sha256,
    manifest_digest,
)
from robosf_assets.logging import get_logger

__all__ = [
    "DEFAULT_MIN_EPISODES",
    "DEFAULT_SIZE_CAP_BYTES",
    "CheckResult",
    "IntegrityReport",
    "check_episode_count",
    "check_size_cap",
    "dataset_bytes",
    "validate_dataset",
    "write_integrity_report",
]

_log = get_logger("datasets.validate")

DEFAULT_MIN_EPISODES = 200
DEFAULT_SIZE_CAP_BYTES = 25 * 10**9
RANGE_TOLERANCE = 1e-5
"""Slack on range checks (float32 rounding of normalised values)."""
OBS_CHUNK_ROWS = 65536
"""Observation rows scanned per chunk."""
REPORT_SCHEMA_VERSION = 1
_SMALL_ARRAYS = tuple(n for n in ARRAY_SPECS if n != "observations")


@dataclass
class CheckResult:
    """Outcome of one check. ``passed`` is ``None`` when it could not run because an
    earlier check failed (that check carries the reason)."""

    name: str
    passed: bool | None
    detail: str
    reasons: list[str] = field(default_factory=list)
    value: Any = None


@dataclass
class IntegrityReport:
    """What :func:`validate_dataset` found. ``reasons`` lists every failure."""

    iter_dir: str
    status: str
    reasons: list[str]
    checks: dict[str, CheckResult]
    counts: dict[str, int | None]
    limits: dict[str, Any]
    dataset_id: str | None
    content_sha256: str | None
    validated_at: str
    elapsed_s: float
    notes: list[str] = field(default_factory=list)
    schema_version: int = REPORT_SCHEMA_VERSION

    @property
    def passed(self) -> bool:
        return self.status == STATUS_VALIDATED

    def failed_checks(self) -> list[str]:
        return [name for name, c in self.checks.items() if c.passed is False]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- cheap standalone checks (also usable as asset checks) --------------------------------


def dataset_bytes(iter_dir: str | os.PathLike[str]) -> int:
    """Bytes of every regular file below ``iter_dir`` as they are on disk now."""
    total = 0
    for dirpath, _, filenames in os.walk(iter_dir):
        for name in filenames:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
    return total


def check_size_cap(
    iter_dir: str | os.PathLike[str], size_cap_bytes: int = DEFAULT_SIZE_CAP_BYTES
) -> CheckResult:
    """Bytes on disk at most ``size_cap_bytes``. Never raises."""
    try:
        size = dataset_bytes(iter_dir)
    except OSError as e:
        return CheckResult(
            "size_cap", False, f"size unknown: {e}", [f"size_cap: cannot measure {iter_dir}: {e}"]
        )
    detail = f"{size:,} bytes on disk, cap {size_cap_bytes:,}"
    if size > size_cap_bytes:
        return CheckResult(
            "size_cap",
            False,
            detail,
            [f"size_cap: dataset is {size:,} bytes, over the cap of {size_cap_bytes:,} bytes"],
            size,
        )
    return CheckResult("size_cap", True, detail, value=size)


def check_episode_count(
    iter_dir: str | os.PathLike[str], min_episodes: int = DEFAULT_MIN_EPISODES
) -> CheckResult:
    """At least ``min_episodes`` episodes in ``trajectories.npz`` (reads only the small
    ``episode_lengths`` member). Never raises."""
    path = Path(iter_dir) / TRAJECTORIES_NAME
    try:
        with np.load(path, allow_pickle=False) as npz:
            n = len(npz["episode_lengths"])
    except Exception as e:
        return CheckResult(
            "episode_count",
            False,
            "episode count unknown",
            [f"episode_count: cannot count episodes in {path.name}: {type(e).__name__}: {e}"],
        )
    return _episode_count_result(n, min_episodes)


def _episode_count_result(n: int, min_episodes: int) -> CheckResult:
    detail = f"{n} episodes, minimum {min_episodes}"
    if n < min_episodes:
        return CheckResult(
            "episode_count",
            False,
            detail,
            [f"episode_count: {n} episodes, fewer than the minimum {min_episodes}"],
            n,
        )
    return CheckResult("episode_count", True, detail, value=n)


# ---- the full validation -------------------------------------------------------------------


class _Validation:
    """State shared by the checks of one :func:`validate_dataset` call."""

    def __init__(self, iter_dir: Path) -> None:
        self.iter_dir = iter_dir
        self.checks: dict[str, CheckResult] = {}
        self.notes: list[str] = []
        self.manifest: dict[str, Any] | None = None
        self.arrays: dict[str, np.ndarray] = {}  # the small arrays
        self.obs_info: dict[str, Any] | None = None  # shape, dtype, digest of observations
        self.obs_chunks: Callable[[], Any] | None = None
        self.array_digests: dict[str, str] = {}

    def run(self, name: str, fn: Callable[[], CheckResult]) -> CheckResult:
        try:
            result = fn()
        except Exception as e:
            result = CheckResult(
                name,
                False,
                "check could not be evaluated",
                [f"{name}: could not be evaluated: {type(e).__name__}: {e}"],
            )
        self.checks[name] = result
        return result

    def skipped(self, name: str, why: str) -> CheckResult:
        result = CheckResult(name, None, f"skipped: {why}")
        self.checks[name] = result
        return result


def validate_dataset(
    iter_dir: str | os.PathLike[str],
    *,
    min_episodes: int = DEFAULT_MIN_EPISODES,
    size_cap_bytes: int = DEFAULT_SIZE_CAP_BYTES,
    obs_space: Any = None,
    action_low: float = -1.0,
    action_high: float = 1.0,
) -> IntegrityReport:
    """Run every check on a dataset iteration; read-only and never raises on bad data.

    :param iter_dir: an ``iter-NNNN`` directory.
    :param min_episodes: fewer episodes fail ``episode_count``.
    :param size_cap_bytes: more bytes on disk fail ``size_cap``.
    :param obs_space: a ``gymnasium.spaces.Box`` whose ``low``/``high`` bound the
        observations. Default: the space of the env the manifest's ``env_overrides``
        describe; if that cannot be built, [-1, 1] (noted in the report).
    :param action_low: lower action bound.
    :param action_high: upper action bound.
    """
    t0 = time.perf_counter()
    iter_dir = Path(iter_dir)
    v = _Validation(iter_dir)
    if not iter_dir.is_dir():
        v.checks["manifest"] = CheckResult(
            "manifest",
            False,
            "no iteration directory",
            [f"manifest: iteration directory {iter_dir} does not exist"],
        )
    else:
        _run_all(v, min_episodes, size_cap_bytes, obs_space, action_low, action_high)
    reasons = [r for c in v.checks.values() for r in c.reasons]
    status = STATUS_VALIDATED if not reasons else STATUS_QUARANTINED
    manifest = v.manifest or {}
    lengths = v.arrays.get("episode_lengths")
    report = IntegrityReport(
        iter_dir=str(iter_dir),
        status=status,
        reasons=reasons,
        checks=v.checks,
        counts={
            "episodes": len(lengths) if lengths is not None else None,
            "transitions": len(v.arrays["actions"]) if "actions" in v.arrays else None,
            "observations": int(v.obs_info["shape"][0]) if v.obs_info else None,
            "bytes": v.checks["size_cap"].value if "size_cap" in v.checks else None,
        },
        limits={
            "min_episodes": min_episodes,
            "size_cap_bytes": size_cap_bytes,
            "action_low": action_low,
            "action_high": action_high,
        },
        dataset_id=manifest.get("dataset_id")
        if isinstance(manifest.get("dataset_id"), str)
        else None,
        content_sha256=manifest.get("content_sha256")
        if isinstance(manifest.get("content_sha256"), str)
        else None,
        validated_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        elapsed_s=round(time.perf_counter() - t0, 4),
        notes=v.notes,
    )
    if report.passed:
        _log.info("dataset {} validated in {:.2f} s", iter_dir, report.elapsed_s)
    else:
        _log.warning(
            "dataset {} quarantined ({} reasons): {}",
            iter_dir,
            len(reasons),
            "; ".join(reasons[:5]),
        )
    return report


def _run_all(
    v: _Validation,
    min_episodes: int,
    size_cap_bytes: int,
    obs_space: Any,
    action_low: float,
    action_high: float,
) -> None:
    v.run("manifest", lambda: _check_manifest(v))
    v.run("checksums", lambda: _check_checksums(v))
    npz_ok = v.run("npz", lambda: _check_npz(v)).passed
    if npz_ok:
        dtypes_ok = v.run("dtypes", lambda: _check_dtypes(v)).passed
        if dtypes_ok:
            v.run("alignment", lambda: _check_alignment(v))
            try:
                low, high = _obs_bounds(v, obs_space)
                scan = _scan_observations(v, low, high)
            except Exception as e:
                scan = _ObsScan(error=f"{type(e).__name__}: {e}")
            if scan.error:
                # Damage inside the observations member shows up only when it is read.
                npz = v.checks["npz"]
                npz.passed = False
                npz.reasons.append(
                    "npz: array 'observations' is unreadable (truncated or corrupt member): "
                    f"{scan.error}"
                )
            v.run("finite", lambda: _check_finite(v, scan))
            v.run("action_range", lambda: _check_action_range(v, action_low, action_high))
            v.run("observation_range", lambda: _check_observation_range(scan))
        else:
            for name in ("alignment", "finite", "action_range", "observation_range"):
                v.skipped(name, "array dtypes or shapes are wrong")
        v.run(
            "episode_count",
            lambda: _episode_count_result(len(v.arrays["episode_lengths"]), min_episodes),
        )
    else:
        for name in ("dtypes", "alignment", "finite", "action_range", "observation_range"):
            v.skipped(name, f"{TRAJECTORIES_NAME} unreadable")
        v.run(
            "episode_count",
            lambda: CheckResult(
                "episode_count",
                False,
                "episode count unknown",
                [f"episode_count: unknown, {TRAJECTORIES_NAME} is unreadable"],
            ),
        )
    v.run("size_cap", lambda: check_size_cap(v.iter_dir, size_cap_bytes))
    v.run("episodes_jsonl", lambda: _check_episodes_jsonl(v))
    if v.manifest is not None:
        v.run("metadata", lambda: _check_metadata(v))
        if npz_ok and v.checks["dtypes"].passed:
            v.run("content", lambda: _check_content(v))
        else:
            v.skipped("content", "arrays unreadable")
    else:
        v.skipped("metadata", "no readable manifest")
        v.skipped("content", "no readable manifest")


# ---- individual checks ---------------------------------------------------------------------


def _check_manifest(v: _Validation) -> CheckResult:
    path = v.iter_dir / MANIFEST_NAME
    try:
        manifest = read_json(path)
    except FileNotFoundError:
        return CheckResult(
            "manifest",
            False,
            "missing",
            [
                f"manifest: {MANIFEST_NAME} is missing (the iteration never committed, or it was removed)"
            ],
        )
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return CheckResult(
            "manifest", False, "unreadable", [f"manifest: {MANIFEST_NAME} unreadable: {e}"]
        )
    if not isinstance(manifest, dict):
        return CheckResult(
            "manifest",
            False,
            "not an object",
            [f"manifest: {MANIFEST_NAME} is a JSON {type(manifest).__name__}, not an object"],
        )
    v.manifest = manifest
    reasons = []
    stored = manifest.get(MANIFEST_DIGEST_KEY)
    if not isinstance(stored, str):
        reasons.append(f"manifest: no {MANIFEST_DIGEST_KEY} field, so edits cannot be detected")
    elif stored != manifest_digest(manifest):
        reasons.append(
            f"manifest: {MANIFEST_DIGEST_KEY} does not match the manifest's content "
            "(manifest.json was edited after recording)"
        )
    if manifest.get("dataset_schema_version") != DATASET_SCHEMA_VERSION:
        reasons.append(
            f"manifest: dataset_schema_version {manifest.get('dataset_schema_version')!r} is not "
            f"the supported {DATASET_SCHEMA_VERSION}"
        )
    if manifest.get("kind") != DATASET_KIND:
        reasons.append(f"manifest: kind {manifest.get('kind')!r} is not {DATASET_KIND!r}")
    return CheckResult(
        "manifest", not reasons, "ok" if not reasons else "manifest problems", reasons
    )


def _check_checksums(v: _Validation) -> CheckResult:
    if v.manifest is None:
        return CheckResult(
            "checksums",
            False,
            "no manifest to check against",
            ["checksums: cannot verify file checksums without a readable manifest"],
        )
    reasons = [f"checksums: {p}" for p in verify_manifest(v.iter_dir)]
    files = v.manifest.get("files")
    listed = (
        {f.get("path") for f in files if isinstance(f, dict)} if isinstance(files, list) else set()
    )
    for required in (TRAJECTORIES_NAME, EPISODES_NAME):
        if required not in listed:
            reasons.append(
                f"checksums: {required} is not listed in the manifest, so it is not protected"
            )
    return CheckResult("checksums", not reasons, f"{len(listed)} files listed", reasons)


def _check_npz(v: _Validation) -> CheckResult:
    path = v.iter_dir / TRAJECTORIES_NAME
    if not path.is_file():
        return CheckResult("npz", False, "missing", [f"npz: {TRAJECTORIES_NAME} is missing"])
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return CheckResult(
            "npz",
            False,
            "not a readable zip",
            [f"npz: {TRAJECTORIES_NAME} is truncated or corrupt: {type(e).__name__}: {e}"],
        )
    reasons = []
    with zf:
        members = set(zf.namelist())
        for name in ARRAY_SPECS:
            if f"{name}.npy" not in members:
                reasons.append(f"npz: array {name!r} is missing from {TRAJECTORIES_NAME}")
                continue
            try:
                if name == "observations":
                    v.obs_info = _observations_header(zf)
                else:
                    with zf.open(f"{name}.npy") as fh:
                        v.arrays[name] = np.lib.format.read_array(fh, allow_pickle=False)
            except Exception as e:
                reasons.append(
                    f"npz: array {name!r} is unreadable (truncated or corrupt): {type(e).__name__}: {e}"
                )
    if not reasons:
        # The observations are checked for CRC and values while scanned (see _scan_observations).
        v.obs_chunks = lambda: _iter_observation_chunks(v.iter_dir / TRAJECTORIES_NAME)
    return CheckResult("npz", not reasons, f"{len(members)} members", reasons)


def _observations_header(zf: zipfile.ZipFile) -> dict[str, Any]:
    stream = _NpyStream(zf, "observations")
    try:
        return {"shape": stream.shape, "dtype": stream.dtype}
    finally:
        stream.close()


def _iter_observation_chunks(path: Path):
    with zipfile.ZipFile(path) as zf:
        stream = _NpyStream(zf, "observations")
        try:
            rows = stream.shape[0]
            done = 0
            while done < rows:
                n = min(OBS_CHUNK_ROWS, rows - done)
                yield done, stream.read_rows(n)
                done += n
            # Reading to the end makes zipfile verify the member's CRC-32.
            if stream._fh.read(1):
                raise ValueError("observations member holds bytes beyond its declared shape")
        finally:
            stream.close()


def _check_dtypes(v: _Validation) -> CheckResult:
    reasons = []
    specs = dict(ARRAY_SPECS)
    shapes = {n: a.shape for n, a in v.arrays.items()}
    dtypes = {n: a.dtype for n, a in v.arrays.items()}
    assert v.obs_info is not None
    shapes["observations"] = v.obs_info["shape"]
    dtypes["observations"] = v.obs_info["dtype"]
    for name, spec in specs.items():
        if dtypes[name] != spec.dtype:
            reasons.append(f"dtypes: {name} has dtype {dtypes[name]}, expected {spec.dtype}")
        if len(shapes[name]) != spec.ndim:
            reasons.append(
                f"dtypes: {name} has shape {shapes[name]}, expected {spec.ndim} dimensions"
            )
        elif spec.width is not None and shapes[name][1] != spec.width:
            reasons.append(
                f"dtypes: {name} has shape {shapes[name]}, expected {spec.width} columns"
            )
    return CheckResult(
        "dtypes", not reasons, "ok" if not reasons else "wrong dtypes or shapes", reasons
    )


def _check_alignment(v: _Validation) -> CheckResult:
    a = v.arrays
    assert v.obs_info is not None
    reasons = []
    n_obs = int(v.obs_info["shape"][0])
    n = len(a["actions"])
    e = len(a["episode_lengths"])
    for name in ("terminated", "truncated", "episode_starts", "obs_starts"):
        if len(a[name]) != e:
            reasons.append(f"alignment: {name} has {len(a[name])} entries, episode_lengths {e}")
    if len(a["rewards"]) != n:
        reasons.append(f"alignment: rewards has {len(a['rewards'])} rows, actions {n}")
    if e == 0:
        reasons.append("alignment: the dataset holds no episodes")
    lengths = a["episode_lengths"]
    if (lengths < 1).any():
        bad = np.flatnonzero(lengths < 1)
        reasons.append(
            f"alignment: {len(bad)} episodes have length < 1 (first: episode {int(bad[0])})"
        )
    total = int(lengths.sum())
    if total != n:
        reasons.append(
            f"alignment: episode_lengths sum to {total} transitions, actions has {n} rows"
        )
    if n_obs != n + e:
        reasons.append(
            f"alignment: observations has {n_obs} rows, expected actions + episodes = {n} + {e} = {n + e}"
        )
    if not reasons:
        starts = np.concatenate([[0], np.cumsum(lengths[:-1])]).astype(np.int64)
        if not np.array_equal(a["episode_starts"], starts):
            k = int(np.flatnonzero(a["episode_starts"] != starts)[0])
            reasons.append(
                f"alignment: episode_starts[{k}] = {int(a['episode_starts'][k])}, expected {int(starts[k])}"
                " (episodes must be stored back to back)"
            )
        if not np.array_equal(a["obs_starts"], starts + np.arange(e)):
            k = int(np.flatnonzero(a["obs_starts"] != starts + np.arange(e))[0])
            reasons.append(
                f"alignment: obs_starts[{k}] = {int(a['obs_starts'][k])}, expected {int(starts[k] + k)}"
            )
        both = a["terminated"] & a["truncated"]
        neither = ~(a["terminated"] | a["truncated"])
        if both.any():
            reasons.append(
                f"alignment: {int(both.sum())} episodes are both terminated and truncated "
                f"(first: episode {int(np.flatnonzero(both)[0])})"
            )
        if neither.any():
            reasons.append(
                f"alignment: {int(neither.sum())} episodes are neither terminated nor truncated "
                f"(first: episode {int(np.flatnonzero(neither)[0])})"
            )
    return CheckResult(
        "alignment", not reasons, f"{e} episodes, {n} transitions, {n_obs} observations", reasons
    )


def _episode_of_step(v: _Validation, row: int) -> int:
    return int(np.searchsorted(v.arrays["episode_starts"], row, side="right") - 1)


def _episode_of_obs(v: _Validation, row: int) -> int:
    return int(np.searchsorted(v.arrays["obs_starts"], row, side="right") - 1)


@dataclass
class _ObsScan:
    nonfinite: int = 0
    first_nonfinite: int | None = None
    out_of_range: int = 0
    first_out: tuple[int, int, float] | None = None
    dim_mismatch: str | None = None
    error: str | None = None
    minimum: float = math.inf
    maximum: float = -math.inf


def _scan_observations(v: _Validation, low: np.ndarray, high: np.ndarray) -> _ObsScan:
    """One pass over the observations: non-finite values, bounds, sha256 (for ``content``)."""
    scan = _ObsScan()
    assert v.obs_info is not None and v.obs_chunks is not None
    shape, dtype = v.obs_info["shape"], v.obs_info["dtype"]
    if shape[1] != len(low):
        scan.dim_mismatch = (
            f"observation_range: observations have {shape[1]} features, the observation "
            f"space {len(low)}"
        )
    digest = hashlib.sha256(f"{dtype.str}|{tuple(shape)}|".encode())
    try:
        for start, chunk in v.obs_chunks():
            digest.update(memoryview(np.ascontiguousarray(chunk)).cast("B"))
            finite = np.isfinite(chunk)
            if not finite.all():
                rows = np.flatnonzero(~finite.all(axis=1))
                scan.nonfinite += int((~finite).sum())
                if scan.first_nonfinite is None:
                    scan.first_nonfinite = start + int(rows[0])
            if scan.dim_mismatch is None:
                out = (chunk < low - RANGE_TOLERANCE) | (chunk > high + RANGE_TOLERANCE)
                if out.any():
                    r, c = np.argwhere(out)[0]
                    scan.out_of_range += int(out.sum())
                    if scan.first_out is None:
                        scan.first_out = (start + int(r), int(c), float(chunk[r, c]))
            if finite.all() and chunk.size:
                scan.minimum = min(scan.minimum, float(chunk.min()))
                scan.maximum = max(scan.maximum, float(chunk.max()))
    except Exception as e:
        scan.error = f"{type(e).__name__}: {e}"
        return scan
    v.array_digests["observations"] = digest.hexdigest()
    return scan


def _check_finite(v: _Validation, scan: _ObsScan) -> CheckResult:
    reasons = []
    if scan.nonfinite:
        row = scan.first_nonfinite or 0
        reasons.append(
            f"finite: observations hold {scan.nonfinite} NaN/inf values (first in row {row}, "
            f"episode {_episode_of_obs(v, row)})"
        )
    for name, locate in (("actions", _episode_of_step), ("rewards", _episode_of_step)):
        arr = v.arrays[name]
        bad = ~np.isfinite(arr)
        if bad.any():
            row = int(np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1))[0])
            reasons.append(
                f"finite: {name} hold {int(bad.sum())} NaN/inf values (first in row {row}, "
                f"episode {locate(v, row)})"
            )
    if reasons:
        detail = "non-finite values"
    elif scan.error:
        detail = "observations only partly readable (see npz); what was read is finite"
    else:
        detail = "all values finite"
    return CheckResult("finite", not reasons, detail, reasons)


def _check_action_range(v: _Validation, low: float, high: float) -> CheckResult:
    acts = v.arrays["actions"]
    out = (acts < low - RANGE_TOLERANCE) | (acts > high + RANGE_TOLERANCE)
    detail = (
        f"actions in [{float(np.nanmin(acts)) if acts.size else 0:.3f}, "
        f"{float(np.nanmax(acts)) if acts.size else 0:.3f}], allowed [{low}, {high}]"
    )
    if out.any():
        r, c = np.argwhere(out)[0]
        return CheckResult(
            "action_range",
            False,
            detail,
            [
                (
                    f"action_range: {int(out.sum())} action values outside [{low}, {high}] "
                    f"(first: row {int(r)}, column {int(c)}, value {float(acts[r, c]):.4g}, "
                    f"episode {_episode_of_step(v, int(r))})"
                )
            ],
        )
    return CheckResult("action_range", True, detail)


def _check_observation_range(scan: _ObsScan) -> CheckResult:
    if scan.error:
        return CheckResult("observation_range", None, "skipped: observations unreadable")
    if scan.dim_mismatch:
        return CheckResult("observation_range", False, "dimension mismatch", [scan.dim_mismatch])
    if scan.out_of_range:
        r, c, value = scan.first_out  # type: ignore[misc]
        return CheckResult(
            "observation_range",
            False,
            "values out of bounds",
            [
                (
                    f"observation_range: {scan.out_of_range} observation values outside the "
                    f"observation space (first: row {r}, feature {c}, value {value:.4g})"
                )
            ],
        )
    return CheckResult(
        "observation_range", True, f"observations in [{scan.minimum:.3f}, {scan.maximum:.3f}]"
    )


def _obs_bounds(v: _Validation, obs_space: Any) -> tuple[np.ndarray, np.ndarray]:
    assert v.obs_info is not None
    dim = int(v.obs_info["shape"][1])
    if obs_space is not None:
        return np.asarray(obs_space.low, dtype=np.float64).ravel(), np.asarray(
            obs_space.high, dtype=np.float64
        ).ravel()
    overrides = (v.manifest or {}).get("env_overrides")
    if isinstance(overrides, dict):
        try:
            from robosf_assets.envs.config import EnvConfig
            from robosf_assets.envs.robot_env import observation_space

            cfg = EnvConfig.from_overrides(**overrides)
            space = observation_space(cfg.n_rays, cfg.frame_stack)
            return space.low.astype(np.float64), space.high.astype(np.float64)
        except Exception as e:
            v.notes.append(
                f"observation bounds: env_overrides {overrides!r} do not build an observation "
                f"space ({type(e).__name__}: {e}); checked against [-1, 1]"
            )
    else:
        v.notes.append("observation bounds: manifest has no env_overrides; checked against [-1, 1]")
    return np.full(dim, -1.0), np.full(dim, 1.0)


def _check_episodes_jsonl(v: _Validation) -> CheckResult:
    path = v.iter_dir / EPISODES_NAME
    if not path.is_file():
        return CheckResult(
            "episodes_jsonl", False, "missing", [f"episodes_jsonl: {EPISODES_NAME} is missing"]
        )
    try:
        records = read_episodes_jsonl(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return CheckResult("episodes_jsonl", False, "unreadable", [f"episodes_jsonl: {e}"])
    reasons = []
    lengths = v.arrays.get("episode_lengths")
    if lengths is not None and len(records) != len(lengths):
        reasons.append(f"episodes_jsonl: {len(records)} records for {len(lengths)} episodes")
    elif lengths is not None:
        stored = [r.get("length") for r in records]
        bad = [k for k, (s, n) in enumerate(zip(stored, lengths.tolist(), strict=True)) if s != n]
        if bad:
            reasons.append(
                f"episodes_jsonl: {len(bad)} records disagree with episode_lengths (first: episode {bad[0]})"
            )
    seeds = (v.manifest or {}).get("seeds") or {}
    seed_list = seeds.get("episode_seeds") if isinstance(seeds, dict) else None
    if isinstance(seed_list, list) and [r.get("seed") for r in records] != seed_list:
        reasons.append("episodes_jsonl: record seeds differ from the manifest's episode_seeds")
    return CheckResult("episodes_jsonl", not reasons, f"{len(records)} records", reasons)


def _check_metadata(v: _Validation) -> CheckResult:
    m = v.manifest or {}
    reasons = []
    missing = [k for k in REQUIRED_MANIFEST_FIELDS if k not in m]
    if missing:
        reasons.append(f"metadata: manifest lacks required fields {missing}")
    nulls = [
        k
        for k in REQUIRED_MANIFEST_FIELDS
        if k in m and m[k] is None and k not in NULLABLE_MANIFEST_FIELDS
    ]
    if nulls:
        reasons.append(f"metadata: manifest fields {nulls} are null")
    source = m.get("source")
    if isinstance(source, dict):
        lacking = [k for k in REQUIRED_SOURCE_FIELDS if not source.get(k)]
        if lacking:
            reasons.append(f"metadata: source lacks {lacking} (which expert produced the data?)")
    elif "source" in m:
        reasons.append("metadata: source is not an object")
    if "iteration" in m and m["iteration"] != _iteration_number(v.iter_dir.name):
        reasons.append(
            f"metadata: manifest iteration {m['iteration']!r} does not match directory "
            f"{v.iter_dir.name}"
        )
    if "scenario" in m and m.get("partition") not in (None, m["scenario"]):
        reasons.append(
            f"metadata: partition {m['partition']!r} differs from scenario {m['scenario']!r}"
        )
    a = v.arrays
    if (
        "episode_lengths" in a
        and "n_episodes" in m
        and m["n_episodes"] != len(a["episode_lengths"])
    ):
        reasons.append(
            f"metadata: manifest n_episodes {m['n_episodes']!r}, arrays hold {len(a['episode_lengths'])}"
        )
    if "actions" in a and "n_transitions" in m and m["n_transitions"] != len(a["actions"]):
        reasons.append(
            f"metadata: manifest n_transitions {m['n_transitions']!r}, arrays hold {len(a['actions'])}"
        )
    if v.obs_info and "observation_dim" in m and m["observation_dim"] != v.obs_info["shape"][1]:
        reasons.append(
            f"metadata: manifest observation_dim {m['observation_dim']!r}, observations have "
            f"{v.obs_info['shape'][1]} features"
        )
    seeds = m.get("seeds")
    seed_list = seeds.get("episode_seeds") if isinstance(seeds, dict) else None
    if not isinstance(seed_list, list):
        reasons.append("metadata: seeds.episode_seeds is missing")
    elif "episode_lengths" in a and len(seed_list) != len(a["episode_lengths"]):
        reasons.append(
            f"metadata: {len(seed_list)} episode seeds for {len(a['episode_lengths'])} episodes"
        )
    return CheckResult(
        "metadata",
        not reasons,
        "complete" if not reasons else "incomplete or inconsistent",
        reasons,
    )


def _iteration_number(name: str) -> int | None:
    try:
        return int(name.rsplit("-", 1)[-1])
    except ValueError:
        return None


def _check_content(v: _Validation) -> CheckResult:
    declared = (v.manifest or {}).get("arrays")
    if not isinstance(declared, dict):
        return CheckResult(
            "content", False, "no array digests", ["content: manifest has no 'arrays' entry"]
        )
    digests = dict(v.array_digests)
    for name in _SMALL_ARRAYS:
        digests[name] = array_sha256(v.arrays[name])
    reasons = []
    for name in ARRAY_SPECS:
        entry = declared.get(name)
        if not isinstance(entry, dict) or "sha256" not in entry:
            reasons.append(f"content: manifest has no sha256 for array {name!r}")
        elif name not in digests:
            continue  # observations unreadable: reported by 'finite'
        elif entry["sha256"] != digests[name]:
            reasons.append(
                f"content: array {name!r} differs from the recorded one (sha256 mismatch)"
            )
    return CheckResult(
        "content", not reasons, "arrays match the manifest" if not reasons else "mismatch", reasons
    )


# ---- reports -------------------------------------------------------------------------------


def write_integrity_report(
    iter_dir: str | os.PathLike[str], report: IntegrityReport | dict[str, Any]
) -> Path:
    """Write ``report`` next to the data, never overwriting an earlier one.

    The first report is ``integrity.json``; each later one takes the next free name
    ``integrity-0002.json``, ``integrity-0003.json``, ... (claimed atomically, so two
    concurrent validations both keep their report). Readers use the highest number.

    :return: the path written.
    :raises FileNotFoundError: when ``iter_dir`` does not exist (deleted, archived): no
        directory is ever created for a report.
    """
    iter_dir = Path(iter_dir)
    if not iter_dir.is_dir():
        raise FileNotFoundError(
            errno.ENOENT,
            f"dataset iteration {iter_dir} does not exist (deleted or archived?); "
            "no integrity report written and no directory created",
            str(iter_dir),
        )
    body = report.to_dict() if isinstance(report, IntegrityReport) else dict(report)
    n = 1
    while True:
        name = INTEGRITY_NAME if n == 1 else f"integrity-{n:04d}.json"
        try:
            path = atomic_write_json(iter_dir / name, body, make_parents=False)
        except FileExistsError:
            n += 1
            continue
        _log.info("integrity report {} written: {}", path, body.get("status"))
        return path
