"""Layout of an expert trajectory dataset iteration, and the pure helpers that pack it.

One dataset iteration is one directory::

    output/datasets/<scenario>/iter-NNNN/
        trajectories.npz   the arrays below (zip of .npy members, deflate-compressed)
        episodes.jsonl     one JSON line per episode (benchmark.episodes records)
        manifest.json      written last: the commit marker (no manifest = incomplete)
        integrity.json     added by validation; integrity-0002.json, ... on re-validation

``trajectories.npz`` (E episodes, N transitions, D observation features):

==================  ==========  =======  ===========================================
array               shape       dtype    meaning
==================  ==========  =======  ===========================================
observations        (N + E, D)  float32  every episode's T+1 observations, terminal
                                         observation included, episodes back to back
actions             (N, 2)      float32  actions as applied (clipped to [-1, 1])
rewards             (N,)        float32  per-step rewards
terminated          (E,)        bool     episode ended in a terminal state (goal,
                                         collision)
truncated           (E,)        bool     episode hit the horizon (time limit)
episode_starts      (E,)        int64    first row of episode e in actions/rewards
obs_starts          (E,)        int64    first row of episode e in observations
                                         (= episode_starts + e)
episode_lengths     (E,)        int64    transitions T_e of episode e (>= 1)
==================  ==========  =======  ===========================================

The NPZ is written by :func:`write_npz` with fixed zip timestamps and member order, so
the same arrays always give the same file bytes (and the same sha256 in the manifest)
on the same zlib. :func:`array_sha256` fingerprints an array independently of the
container (dtype, shape and raw bytes), for comparisons across zlib versions.

This module is core library: no Dagster, no torch, no simulator imports.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robosf_assets.artifacts import MANIFEST_NAME, dumps_json, output_root

__all__ = [
    "ARRAY_SPECS",
    "DATASET_KIND",
    "DATASET_SCHEMA_VERSION",
    "EPISODES_NAME",
    "INTEGRITY_NAME",
    "MANIFEST_DIGEST_KEY",
    "MANIFEST_NAME",
    "REQUIRED_MANIFEST_FIELDS",
    "STATUS_INCOMPLETE",
    "STATUS_QUARANTINED",
    "STATUS_RECORDED",
    "STATUS_VALIDATED",
    "TRAJECTORIES_NAME",
    "ArraySpec",
    "archive_root",
    "array_sha256",
    "datasets_root",
    "episode_bounds",
    "manifest_digest",
    "pack_episodes",
    "scenario_dir",
    "write_npz",
]

DATASET_SCHEMA_VERSION = 1
"""Bump when the arrays, file names or required manifest fields change."""

DATASET_KIND = "trajectory_dataset"
"""``kind`` in the manifest (the asset name)."""

TRAJECTORIES_NAME = "trajectories.npz"
EPISODES_NAME = "episodes.jsonl"
INTEGRITY_NAME = "integrity.json"
"""First integrity report; later ones are ``integrity-0002.json``, ``integrity-0003.json``..."""

MANIFEST_DIGEST_KEY = "manifest_sha256"
"""Manifest field holding the sha256 of the manifest's own canonical JSON without this
field: an edited manifest no longer matches it (see :func:`manifest_digest`)."""

# ---- status values --------------------------------------------------------------------
STATUS_INCOMPLETE = "incomplete"
"""No manifest: the writer has not finished (or crashed)."""
STATUS_RECORDED = "recorded"
"""Manifest written, not validated yet."""
STATUS_VALIDATED = "validated"
"""The latest integrity report passed every check. The only status usable downstream."""
STATUS_QUARANTINED = "quarantined"
"""The latest integrity report failed at least one check (reasons listed in it)."""


@dataclass(frozen=True)
class ArraySpec:
    """Expected dtype and rank of one NPZ member; ``axis`` names the length of axis 0."""

    dtype: np.dtype
    ndim: int
    axis: str  # "obs" (N + E rows), "step" (N rows) or "episode" (E rows)
    width: int | None = None  # size of axis 1 when fixed


ARRAY_SPECS: dict[str, ArraySpec] = {
    "observations": ArraySpec(np.dtype(np.float32), 2, "obs"),
    "actions": ArraySpec(np.dtype(np.float32), 2, "step", width=2),
    "rewards": ArraySpec(np.dtype(np.float32), 1, "step"),
    "terminated": ArraySpec(np.dtype(np.bool_), 1, "episode"),
    "truncated": ArraySpec(np.dtype(np.bool_), 1, "episode"),
    "episode_starts": ArraySpec(np.dtype(np.int64), 1, "episode"),
    "obs_starts": ArraySpec(np.dtype(np.int64), 1, "episode"),
    "episode_lengths": ArraySpec(np.dtype(np.int64), 1, "episode"),
}
"""Every array ``trajectories.npz`` must hold, in the order they are written."""

REQUIRED_MANIFEST_FIELDS: tuple[str, ...] = (
    # artifacts.build_manifest
    "schema_version",
    "kind",
    "partition",
    "created_at",
    "git_revision",
    "packages",
    "config",
    "seeds",
    "files",
    # dataset-specific
    "dataset_schema_version",
    "dataset_id",
    "iteration",
    "scenario",
    "status",
    "source",
    "policy",
    "env_overrides",
    "n_episodes",
    "n_transitions",
    "observation_dim",
    "arrays",
    "bytes_total",
    "scenario_coverage",
    "content_sha256",
    MANIFEST_DIGEST_KEY,
)
"""Metadata completeness: a manifest lacking any of these (or holding ``null`` where a
value is required, see ``NULLABLE_MANIFEST_FIELDS``) fails validation."""

NULLABLE_MANIFEST_FIELDS: frozenset[str] = frozenset({"git_revision", "partition"})
"""Required keys whose value may be ``null`` (no git checkout; unpartitioned use)."""

REQUIRED_SOURCE_FIELDS: tuple[str, ...] = ("run_dir", "model_sha256")
"""``manifest["source"]`` must name the expert run directory and its model checksum."""


# ---- paths ----------------------------------------------------------------------------


def datasets_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``<output>/datasets`` (``root`` defaults to :func:`artifacts.output_root`)."""
    return (Path(root) if root is not None else output_root()) / "datasets"


def scenario_dir(scenario: str, root: str | os.PathLike[str] | None = None) -> Path:
    """``<output>/datasets/<scenario>``: the parent of a scenario's ``iter-NNNN`` dirs."""
    return datasets_root(root) / scenario


def archive_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``<output>/archive``: archived iterations live in ``<archive>/<scenario>/``."""
    return (Path(root) if root is not None else output_root()) / "archive"


# ---- packing --------------------------------------------------------------------------


def episode_bounds(lengths: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(episode_starts, obs_starts)`` for episodes of ``lengths`` transitions.

    >>> episode_bounds([3, 2])
    (array([0, 3]), array([0, 4]))
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        np.cumsum(lengths[:-1], out=starts[1:])
    return starts, starts + np.arange(len(lengths), dtype=np.int64)


def pack_episodes(
    observations: Sequence[np.ndarray],
    actions: Sequence[np.ndarray],
    rewards: Sequence[np.ndarray],
    terminated: Sequence[bool],
    truncated: Sequence[bool],
) -> dict[str, np.ndarray]:
    """Concatenate per-episode arrays into the :data:`ARRAY_SPECS` layout.

    :param observations: per episode ``(T_e + 1, D)`` (terminal observation last).
    :param actions: per episode ``(T_e, 2)``.
    :param rewards: per episode ``(T_e,)``.
    :param terminated: per episode flag.
    :param truncated: per episode flag.
    :raises ValueError: naming the episode whose arrays disagree.
    """
    n = len(observations)
    if not (len(actions) == len(rewards) == len(terminated) == len(truncated) == n):
        raise ValueError(
            f"per-episode sequences differ in length: {n} observations, {len(actions)} actions, "
            f"{len(rewards)} rewards, {len(terminated)} terminated, {len(truncated)} truncated"
        )
    if n == 0:
        raise ValueError("cannot pack a dataset of zero episodes")
    lengths = np.empty(n, dtype=np.int64)
    for e in range(n):
        t = len(actions[e])
        if t < 1 or len(observations[e]) != t + 1 or len(rewards[e]) != t:
            raise ValueError(
                f"episode {e}: expected T >= 1 actions, T rewards and T + 1 observations, got "
                f"{len(actions[e])}, {len(rewards[e])} and {len(observations[e])}"
            )
        lengths[e] = t
    episode_starts, obs_starts = episode_bounds(lengths)
    return {
        "observations": np.ascontiguousarray(np.concatenate(observations), dtype=np.float32),
        "actions": np.ascontiguousarray(np.concatenate(actions), dtype=np.float32).reshape(-1, 2),
        "rewards": np.ascontiguousarray(np.concatenate(rewards), dtype=np.float32),
        "terminated": np.asarray(terminated, dtype=np.bool_),
        "truncated": np.asarray(truncated, dtype=np.bool_),
        "episode_starts": episode_starts,
        "obs_starts": obs_starts,
        "episode_lengths": lengths,
    }


# ---- checksums and deterministic NPZ --------------------------------------------------


def array_sha256(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and C-order bytes (independent of the file)."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256()
    h.update(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def content_sha256(array_digests: Mapping[str, str]) -> str:
    """One digest over all array digests (sorted by name): the dataset's content id."""
    h = hashlib.sha256()
    for name in sorted(array_digests):
        h.update(f"{name}={array_digests[name]}\n".encode())
    return h.hexdigest()


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest timestamp a zip entry can hold


def write_npz(
    path: str | os.PathLike[str],
    arrays: Mapping[str, np.ndarray],
    *,
    compress: bool = True,
    compresslevel: int = 1,
) -> None:
    """Write ``arrays`` as an ``.npz`` that ``np.load`` reads, byte-for-byte reproducibly.

    ``np.savez_compressed`` stamps every member with the current time, so two writes of
    the same arrays differ. Here every member gets the fixed zip epoch timestamp and the
    members are written in the given order; the bytes then depend only on the arrays
    (and the zlib build).

    :param compresslevel: deflate level; 1 is several times faster than the default 6
        and within a few percent of its size on float observations.
    """
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, mode="x", compression=mode, compresslevel=compresslevel) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = mode
            info.external_attr = 0o644 << 16
            # ZipFile.open(ZipInfo) ignores the archive's compresslevel; set it per member
            # (public ``compress_level`` from Python 3.13, private ``_compresslevel`` before).
            if hasattr(info, "compress_level"):
                info.compress_level = compresslevel
            else:
                info._compresslevel = compresslevel  # type: ignore[attr-defined]
            with zf.open(info, mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


# ---- manifest self-digest --------------------------------------------------------------


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON (:func:`artifacts.dumps_json`) without
    :data:`MANIFEST_DIGEST_KEY`. Stored in the manifest, it detects later edits."""
    body = {k: v for k, v in manifest.items() if k != MANIFEST_DIGEST_KEY}
    return hashlib.sha256(dumps_json(body).encode("utf-8")).hexdigest()
