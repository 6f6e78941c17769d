"""Tests of robosf_assets.datasets; shared helpers for tiny, fast datasets live here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from robosf_assets.artifacts import sha256_file

SCENARIO = "crossing"
TINY_OVERRIDES = {"horizon": 40, "n_peds": 4, "n_rays": 16}
"""A short horizon, few pedestrians and rays: episodes record in milliseconds."""
TINY_EPISODES = 6
SOURCE = {"run_dir": "output/expert_policy/crossing/run-test", "model_sha256": "0" * 64}


def goal_seeking_policy(obs: np.ndarray) -> np.ndarray:
    """Scripted, deterministic: drive forward and steer towards the goal bearing."""
    r = obs.shape[1] - 5  # frame_stack 1: the last 5 features are the drive state
    turn = np.clip(2.0 * obs[:, r + 3], -1.0, 1.0)
    return np.stack([np.full(len(obs), 0.8), turn], axis=1).astype(np.float32)


def record_tiny(
    parent: Path,
    *,
    n_episodes: int = TINY_EPISODES,
    seed_base: int = 3_000_100,
    n_envs: int = 4,
    policy=goal_seeking_policy,
) -> Path:
    from robosf_assets.datasets.record import record_dataset

    return record_dataset(
        policy,
        SCENARIO,
        parent,
        n_episodes=n_episodes,
        seed_base=seed_base,
        n_envs=n_envs,
        env_overrides=TINY_OVERRIDES,
        source=SOURCE,
        config={"test": True},
        progress_interval_s=60,
    )


def snapshot(directory: Path) -> dict[str, str]:
    """sha256 of every file below ``directory`` by relative path."""
    out = {}
    for dirpath, _, files in os.walk(directory):
        for name in files:
            p = Path(dirpath) / name
            out[p.relative_to(directory).as_posix()] = sha256_file(p)
    return out
