"""Dataset checks of the arrays' values: ``dtypes``, ``alignment``, ``finite``,
``action_range`` and ``observation_range``.

The observations are scanned once, in row chunks straight from the compressed stream
(:func:`scan_observations`), so memory stays bounded for datasets far larger than RAM;
``finite`` and ``observation_range`` report from that scan. The other arrays are ~75
times smaller and were read whole by the ``npz`` check.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from robosf_assets.datasets.integrity import CheckResult, ValidationState
from robosf_assets.datasets.schema import ARRAY_SPECS

__all__ = [
    "RANGE_TOLERANCE",
    "ObservationScan",
    "check_action_range",
    "check_alignment",
    "check_dtypes",
    "check_finite",
    "check_observation_range",
    "observation_bounds",
    "scan_observations",
]

RANGE_TOLERANCE = 1e-5
"""Slack on range checks (float32 rounding of normalised values)."""


def check_dtypes(v: ValidationState) -> CheckResult:
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


def check_alignment(v: ValidationState) -> CheckResult:
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


def _episode_of_step(v: ValidationState, row: int) -> int:
    return int(np.searchsorted(v.arrays["episode_starts"], row, side="right") - 1)


def _episode_of_obs(v: ValidationState, row: int) -> int:
    return int(np.searchsorted(v.arrays["obs_starts"], row, side="right") - 1)


@dataclass
class ObservationScan:
    """What one pass over the observations found (:func:`scan_observations`)."""

    nonfinite: int = 0
    first_nonfinite: int | None = None
    out_of_range: int = 0
    first_out: tuple[int, int, float] | None = None
    dim_mismatch: str | None = None
    error: str | None = None
    minimum: float = math.inf
    maximum: float = -math.inf


def scan_observations(v: ValidationState, low: np.ndarray, high: np.ndarray) -> ObservationScan:
    """One pass over the observations: non-finite values, bounds, sha256 (for ``content``)."""
    scan = ObservationScan()
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


def check_finite(v: ValidationState, scan: ObservationScan) -> CheckResult:
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


def check_action_range(v: ValidationState, low: float, high: float) -> CheckResult:
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


def check_observation_range(scan: ObservationScan) -> CheckResult:
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


def observation_bounds(v: ValidationState, obs_space: Any) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of every observation feature: ``obs_space``'s, else those of
    the env the manifest's ``env_overrides`` describe, else [-1, 1] (noted)."""
    assert v.obs_info is not None
    dim = int(v.obs_info["shape"][1])
    if obs_space is not None:
        return np.asarray(obs_space.low, dtype=np.float64).ravel(), np.asarray(
            obs_space.high, dtype=np.float64
        ).ravel()
    overrides = (v.manifest or {}).get("env_overrides")
    if isinstance(overrides, dict):
        try:
            from robosf_assets.envs.env_config import EnvConfig
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
