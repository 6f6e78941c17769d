"""Per-episode benchmark records and their JSON Lines storage.

A record is a flat, JSON-safe dict::

    {"schema_version": 1, "scenario": ..., "seed": ..., "episode_index": ...,
     "policy": ..., <metric>: <value>, ..., "extra": {...}}

Metrics sit at the top level so :func:`robosf_assets.benchmark.stats.aggregate_episode_metrics`
reads them directly. Non-finite floats (NaN, inf) are stored as ``None`` (JSON has no NaN);
numpy scalars and arrays become Python numbers and lists. Files are written atomically and
never overwritten, so a benchmark run cannot silently replace an earlier one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

EPISODE_SCHEMA_VERSION = 1
"""Bump when the record layout changes; readers reject other versions."""

IDENTITY_KEYS: tuple[str, ...] = ("schema_version", "scenario", "seed", "episode_index", "policy")
"""Keys every record carries; metric names must not reuse them (nor ``"extra"``)."""

_RESERVED = frozenset(IDENTITY_KEYS) | {"extra"}


def json_safe(value: Any) -> Any:
    """Convert ``value`` to plain JSON types: numpy to Python, NaN/inf to ``None``.

    :param value: a scalar, numpy array, or nested dict/list/tuple of them.
    :return: the converted value (dict keys become ``str``).
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} in an episode record")


def episode_record(
    *,
    scenario: str,
    seed: int,
    episode_index: int,
    policy: str,
    metrics: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build one JSON-safe episode record.

    :param scenario: scenario name.
    :param seed: environment seed of the episode.
    :param episode_index: index of the episode within its (scenario, seed, policy) run.
    :param policy: name of the evaluated policy (e.g. ``"ppo_bc_finetuned/seed3"``).
    :param metrics: per-episode metrics (REFERENCE §4), stored at the top level.
    :param extra: free-form context (config, paths), stored under ``"extra"``.
    :return: the record; NaN/inf metrics are ``None``.
    """
    clash = sorted(_RESERVED.intersection(metrics))
    if clash:
        raise ValueError(f"metric names {clash} are reserved record keys; rename them")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if isinstance(episode_index, bool) or not isinstance(episode_index, int | np.integer):
        raise TypeError(f"episode_index must be an int, got {type(episode_index).__name__}")
    if episode_index < 0:
        raise ValueError(f"episode_index must be >= 0, got {episode_index}")
    record: dict[str, Any] = {
        "schema_version": EPISODE_SCHEMA_VERSION,
        "scenario": str(scenario),
        "seed": int(seed),
        "episode_index": int(episode_index),
        "policy": str(policy),
    }
    record.update(json_safe(metrics))
    record["extra"] = json_safe(extra or {})
    return record


def write_episodes_jsonl(
    path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]]
) -> Path:
    """Write records as JSON Lines (sorted keys), atomically; never overwrite.

    The lines go to a temporary file in the target folder, which is flushed, fsynced and
    then moved into place with ``os.replace``. The existence check happens before writing
    and again just before the move; a writer racing on the same path in between can
    still lose, so give concurrent runs distinct paths.

    :param path: destination ``.jsonl`` file; its folder is created if missing.
    :param records: episode records (made JSON-safe again on the way out).
    :return: the destination path.
    """
    dest = Path(path)
    if dest.exists():
        raise FileExistsError(f"refusing to overwrite existing episode file {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(json_safe(record), sort_keys=True, allow_nan=False) + "\n")
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        if dest.exists():
            raise FileExistsError(f"refusing to overwrite existing episode file {dest}")
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    logger.debug("wrote {} episode records to {}", n, dest)
    return dest


def read_episodes_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read and validate an episode JSON Lines file.

    Blank lines are skipped. ``None`` values (stored NaN) are returned as ``None``;
    :func:`robosf_assets.benchmark.stats.aggregate_episode_metrics` treats them as missing.

    :param path: file written by :func:`write_episodes_jsonl`.
    :return: the records, in file order.
    :raises ValueError: naming the file and line on bad JSON, a non-object line, a missing
        identity key or a ``schema_version`` other than :data:`EPISODE_SCHEMA_VERSION`.
    """
    src = Path(path)
    records: list[dict[str, Any]] = []
    with src.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{src}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                msg = f"{where}: invalid JSON ({err.msg} at column {err.colno})"
                raise ValueError(msg) from err
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
            missing = [k for k in IDENTITY_KEYS if k not in record]
            if missing:
                raise ValueError(f"{where}: episode record lacks {missing}")
            version = record["schema_version"]
            if version != EPISODE_SCHEMA_VERSION:
                raise ValueError(
                    f"{where}: schema_version {version!r} is not the supported "
                    f"{EPISODE_SCHEMA_VERSION}; re-run the benchmark or migrate the file"
                )
            records.append(record)
    return records
