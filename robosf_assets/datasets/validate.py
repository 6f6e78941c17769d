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

The checks live by what they read: :mod:`.file_checks` (files and the manifest's claims),
:mod:`.array_checks` (the arrays' values; observations scanned in bounded-memory chunks)
and :mod:`.integrity` (result types, the standalone checks, the report writer).

:func:`run_validated_dataset` is the pipeline stage: validate an iteration and write its
integrity report.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robosf_assets.datasets.array_checks import (
    ObservationScan,
    check_action_range,
    check_alignment,
    check_dtypes,
    check_finite,
    check_observation_range,
    observation_bounds,
    scan_observations,
)
from robosf_assets.datasets.file_checks import (
    check_checksums,
    check_content,
    check_episodes_jsonl,
    check_manifest,
    check_metadata,
    check_npz,
)
from robosf_assets.datasets.integrity import (
    DEFAULT_MIN_EPISODES,
    DEFAULT_SIZE_CAP_BYTES,
    CheckResult,
    IntegrityReport,
    ValidationState,
    check_episode_count,
    check_size_cap,
    dataset_bytes,
    episode_count_result,
    write_integrity_report,
)
from robosf_assets.datasets.schema import STATUS_QUARANTINED, STATUS_VALIDATED, TRAJECTORIES_NAME
from robosf_assets.logs import get_logger
from robosf_assets.refs import DatasetRef, ValidatedDatasetRef

if TYPE_CHECKING:  # record imports this module
    from robosf_assets.datasets.record import DatasetSettings

__all__ = [
    "DEFAULT_MIN_EPISODES",
    "DEFAULT_SIZE_CAP_BYTES",
    "CheckResult",
    "IntegrityReport",
    "ValidationOutcome",
    "check_episode_count",
    "check_size_cap",
    "dataset_bytes",
    "run_validated_dataset",
    "validate_dataset",
    "write_integrity_report",
]

_log = get_logger("datasets.validate")


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
    v = ValidationState(iter_dir)
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
    v: ValidationState,
    min_episodes: int,
    size_cap_bytes: int,
    obs_space: Any,
    action_low: float,
    action_high: float,
) -> None:
    v.run("manifest", lambda: check_manifest(v))
    v.run("checksums", lambda: check_checksums(v))
    npz_ok = v.run("npz", lambda: check_npz(v)).passed
    if npz_ok:
        dtypes_ok = v.run("dtypes", lambda: check_dtypes(v)).passed
        if dtypes_ok:
            v.run("alignment", lambda: check_alignment(v))
            try:
                low, high = observation_bounds(v, obs_space)
                scan = scan_observations(v, low, high)
            except Exception as e:
                scan = ObservationScan(error=f"{type(e).__name__}: {e}")
            if scan.error:
                # Damage inside the observations member shows up only when it is read.
                npz = v.checks["npz"]
                npz.passed = False
                npz.reasons.append(
                    "npz: array 'observations' is unreadable (truncated or corrupt member): "
                    f"{scan.error}"
                )
            v.run("finite", lambda: check_finite(v, scan))
            v.run("action_range", lambda: check_action_range(v, action_low, action_high))
            v.run("observation_range", lambda: check_observation_range(scan))
        else:
            for name in ("alignment", "finite", "action_range", "observation_range"):
                v.skipped(name, "array dtypes or shapes are wrong")
        v.run(
            "episode_count",
            lambda: episode_count_result(len(v.arrays["episode_lengths"]), min_episodes),
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
    v.run("episodes_jsonl", lambda: check_episodes_jsonl(v))
    if v.manifest is not None:
        v.run("metadata", lambda: check_metadata(v))
        if npz_ok and v.checks["dtypes"].passed:
            v.run("content", lambda: check_content(v))
        else:
            v.skipped("content", "arrays unreadable")
    else:
        v.skipped("metadata", "no readable manifest")
        v.skipped("content", "no readable manifest")


# ------------------------------------------------------------------------ the stage


@dataclass(frozen=True)
class ValidationOutcome:
    """The validated (or quarantined) iteration, the report and where it was written."""

    ref: ValidatedDatasetRef
    report: IntegrityReport
    report_path: Path


def run_validated_dataset(settings: DatasetSettings, dataset: DatasetRef) -> ValidationOutcome:
    """The validation stage: run every check on ``dataset`` with the settings' episode
    minimum and size cap, and write the integrity report next to the data (the next free
    ``integrity*.json``; the data and their manifest are never modified)."""
    report = validate_dataset(dataset.iter_dir, min_episodes=settings.min_episodes,
                              size_cap_bytes=settings.size_cap_bytes)
    report_path = write_integrity_report(dataset.iter_dir, report)
    if not report.passed:
        _log.warning("{} quarantined: {}", dataset.iter_dir, "; ".join(report.reasons))
    ref = ValidatedDatasetRef(iter_dir=dataset.iter_dir, dataset_id=dataset.dataset_id, scenario=dataset.scenario,
                              status=report.status, report=report_path, reasons=tuple(report.reasons))
    return ValidationOutcome(ref, report, report_path)
