"""Integrity reports of dataset iterations: the result types, the cheap standalone checks
and the report writer.

:class:`CheckResult` is one check's outcome and :class:`IntegrityReport` the whole
validation's (see :mod:`.validate` for the checks). :class:`ValidationState` is what the
checks of one validation share. :func:`check_size_cap` and :func:`check_episode_count`
are cheap enough to run on their own (the Dagster asset checks do).

Integrity reports are written next to the data by :func:`write_integrity_report`:
``integrity.json`` first, then ``integrity-0002.json`` and so on, never overwritten.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robosf_assets.artifacts import atomic_write_json
from robosf_assets.datasets.schema import INTEGRITY_NAME, STATUS_VALIDATED, TRAJECTORIES_NAME
from robosf_assets.logs import get_logger

__all__ = [
    "DEFAULT_MIN_EPISODES",
    "DEFAULT_SIZE_CAP_BYTES",
    "REPORT_SCHEMA_VERSION",
    "CheckResult",
    "IntegrityReport",
    "ValidationState",
    "check_episode_count",
    "check_size_cap",
    "dataset_bytes",
    "episode_count_result",
    "write_integrity_report",
]

_log = get_logger("datasets.validate")

DEFAULT_MIN_EPISODES = 200
DEFAULT_SIZE_CAP_BYTES = 25 * 10**9
REPORT_SCHEMA_VERSION = 1


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
    return episode_count_result(n, min_episodes)


def episode_count_result(n: int, min_episodes: int) -> CheckResult:
    """The ``episode_count`` result for ``n`` episodes."""
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


# ---- state of one validation ---------------------------------------------------------------


class ValidationState:
    """State shared by the checks of one :func:`~robosf_assets.datasets.validate.validate_dataset`
    call: what earlier checks read (manifest, small arrays, observation header) and found."""

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
