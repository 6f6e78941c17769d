"""Expert trajectory datasets: record, load, validate, archive, play back; and the two
dataset stages, :func:`run_trajectory_dataset` (record and check) and
:func:`run_validated_dataset` (every check, then the integrity report), both given a
:class:`DatasetSettings`.

Layout and constants: :mod:`robosf_assets.datasets.schema`. Nothing here imports Dagster.
Heavier modules (playback pulls matplotlib) are imported on first use of their names.
"""

from __future__ import annotations

from typing import Any

from robosf_assets.datasets.schema import (
    DATASET_SCHEMA_VERSION,
    STATUS_INCOMPLETE,
    STATUS_QUARANTINED,
    STATUS_RECORDED,
    STATUS_VALIDATED,
    archive_root,
    scenario_dir,
)

_LAZY = {
    "record_dataset": "record",
    "run_trajectory_dataset": "record",
    "DatasetSettings": "record",
    "DatasetOutcome": "record",
    "load_trajectories": "load",
    "iter_episodes": "load",
    "dataset_status": "load",
    "latest_validated": "load",
    "read_manifest": "load",
    "read_integrity_report": "load",
    "DatasetError": "load",
    "validate_dataset": "validate",
    "write_integrity_report": "validate",
    "check_size_cap": "validate",
    "check_episode_count": "validate",
    "IntegrityReport": "validate",
    "run_validated_dataset": "validate",
    "ValidationOutcome": "validate",
    "plan_rotation": "archive",
    "rotate": "archive",
    "rotation_run_key": "archive",
    "archive_iteration": "archive",
    "restore_iteration": "archive",
    "render_episode": "playback",
    "replay_episode": "playback",
}

__all__ = [
    "DATASET_SCHEMA_VERSION",
    "STATUS_INCOMPLETE",
    "STATUS_QUARANTINED",
    "STATUS_RECORDED",
    "STATUS_VALIDATED",
    "DatasetError",
    "DatasetOutcome",
    "DatasetSettings",
    "IntegrityReport",
    "ValidationOutcome",
    "archive_iteration",
    "archive_root",
    "check_episode_count",
    "check_size_cap",
    "dataset_status",
    "iter_episodes",
    "latest_validated",
    "load_trajectories",
    "plan_rotation",
    "read_integrity_report",
    "read_manifest",
    "record_dataset",
    "render_episode",
    "replay_episode",
    "restore_iteration",
    "rotate",
    "rotation_run_key",
    "run_trajectory_dataset",
    "run_validated_dataset",
    "scenario_dir",
    "validate_dataset",
    "write_integrity_report",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'robosf_assets.datasets' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"robosf_assets.datasets.{module}"), name)
