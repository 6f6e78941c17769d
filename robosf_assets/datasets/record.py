"""Record an expert's episodes into a new dataset iteration (see :mod:`.schema`).

Recording plays one episode per seed (``seed_base, seed_base + 1, ...``) with
:func:`robosf_assets.envs.rollout.run_episodes`. Every episode reseeds its world, so which
episodes are played (seeds, start and goal, pedestrians) never depends on ``n_envs``.

What does depend on it: the policy is called on a batch of ``n_envs`` observations at a
time, and a torch network's float32 forward pass rounds differently for different batch
sizes. SB3's ``predict`` on the same observation differs by up to about 1e-8 between
batch sizes (an untrained 128x128 policy, batches 1 to 64, one torch thread) and up to
6e-8 for a trained expert; once an action differs, the trajectory can drift from there.
So the arrays, and with :func:`robosf_assets.datasets.schema.write_npz` the file bytes,
are identical for the same policy, scenario, overrides, seeds, ``n_envs`` and torch
threads on the same machine (``n_envs`` and the kernel are in the manifest's
``recording`` block). A policy whose rows do not interact (a numpy controller, or an SB3
model called one observation at a time) gives the same bytes for every ``n_envs``.

Write order: ``trajectories.npz``, ``episodes.jsonl``, then ``manifest.json``. The
manifest is the commit marker: an iteration directory without it is incomplete and
ignored by loaders, validation and rotation. If recording fails, the half-written
iteration directory this call created is removed (it holds nothing of value).

:func:`run_trajectory_dataset` is the pipeline stage: it records a promoted expert's
episodes with :func:`record_dataset` and runs the dataset's checks on the result.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO

from robosf_assets.artifacts import (
    MANIFEST_NAME,
    atomic_save,
    build_manifest,
    next_iteration_dir,
    write_manifest,
)
from robosf_assets.benchmark.episodes import episode_record, write_episodes_jsonl
from robosf_assets.datasets.schema import (
    ARRAY_SPECS,
    DATASET_KIND,
    DATASET_SCHEMA_VERSION,
    EPISODES_NAME,
    MANIFEST_DIGEST_KEY,
    REQUIRED_SOURCE_FIELDS,
    STATUS_RECORDED,
    TRAJECTORIES_NAME,
    array_sha256,
    content_sha256,
    manifest_digest,
    pack_episodes,
    scenario_dir,
    write_npz,
)
from robosf_assets.datasets.integrity import CheckResult, IntegrityReport
from robosf_assets.datasets.load import read_manifest
from robosf_assets.datasets.playback import render_episode
from robosf_assets.datasets.validate import check_episode_count, check_size_cap, validate_dataset
from robosf_assets.envs import make_vec_env
from robosf_assets.envs.rollout import Episode, Policy, run_episodes, sb3_policy
from robosf_assets.logs import get_logger
from robosf_assets.refs import DatasetRef, ExpertRef, StageRefused
from robosf_assets.threads import torch_threads as limit_torch_threads
from robosf_assets.training.train_config import check_seed_range
from robosf_assets.training.expert import verify_model

__all__ = [
    "DatasetOutcome",
    "DatasetSettings",
    "episode_seeds",
    "record_dataset",
    "run_trajectory_dataset",
    "scenario_coverage",
]

_log = get_logger("datasets.record")


def episode_seeds(seed_base: int, n_episodes: int) -> list[int]:
    """The recorded episode seeds: ``seed_base + k`` for ``k < n_episodes``."""
    return [int(seed_base) + k for k in range(int(n_episodes))]


def scenario_coverage(scenario: str, episodes: list[Episode]) -> dict[str, Any]:
    """What the dataset covers: per scenario, episode and transition counts and outcomes."""
    lengths = np.array([len(ep.actions) for ep in episodes], dtype=np.int64)
    outcomes: dict[str, int] = {}
    for ep in episodes:
        name = str(ep.metrics.get("outcome", "unknown"))
        outcomes[name] = outcomes.get(name, 0) + 1
    n = len(episodes)
    return {
        scenario: {
            "episodes": n,
            "transitions": int(lengths.sum()),
            "outcomes": dict(sorted(outcomes.items())),
            "success_rate": sum(bool(ep.metrics.get("success")) for ep in episodes) / n,
            "collision_rate": sum(bool(ep.metrics.get("collision")) for ep in episodes) / n,
            "timeout_rate": sum(bool(ep.metrics.get("timeout")) for ep in episodes) / n,
            "mean_length": float(lengths.mean()),
            "mean_return": float(
                np.mean([float(np.sum(ep.rewards, dtype=np.float64)) for ep in episodes])
            ),
        }
    }


class _ProgressPolicy:
    """Wraps a policy to log recording progress every ``interval_s`` seconds (cheap:
    one clock read per batched step)."""

    def __init__(self, policy: Policy, n_envs: int, n_episodes: int, interval_s: float) -> None:
        self.policy = policy
        self.n_envs = n_envs
        self.n_episodes = n_episodes
        self.interval_s = interval_s
        self.calls = 0
        self.start = time.perf_counter()
        self._last = self.start

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        self.calls += 1
        now = time.perf_counter()
        if now - self._last >= self.interval_s:
            self._last = now
            elapsed = now - self.start
            world_steps = self.calls * self.n_envs
            _log.info(
                "recording {} episodes: {:,} world-steps in {:.1f} s ({:,.0f} world-steps/s)",
                self.n_episodes,
                world_steps,
                elapsed,
                world_steps / elapsed,
            )
        return self.policy(obs)


def _check_args(n_episodes: int, n_envs: int, source: Mapping[str, Any] | None, seed_base: int) -> None:
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if source is None:
        raise ValueError(
            "source must describe the expert that acted, e.g. "
            "{'run_dir': '<expert run dir>', 'model_sha256': '<sha256 of the model file>'}"
        )
    missing = [k for k in REQUIRED_SOURCE_FIELDS if k not in source]
    if missing:
        raise ValueError(
            f"source lacks {missing}; give the expert run directory and the sha256 of its model "
            "file (artifacts.sha256_file) so the dataset is auditable"
        )
    # demonstrations must not replay training, curve-evaluation, selection or validation
    # episodes (training.train_config.SEED_RANGES)
    check_seed_range(
        "dataset episodes",
        int(seed_base),
        int(seed_base) + int(n_episodes),
        f"dataset episodes (seed_base {int(seed_base):,} + {int(n_episodes):,} episodes)",
    )


def record_dataset(
    policy: Policy,
    scenario: str,
    out_parent: str | os.PathLike[str],
    *,
    n_episodes: int = 200,
    seed_base: int,
    n_envs: int = 16,
    env_overrides: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    config: Any = None,
    policy_name: str = "expert",
    parallel: bool = False,
    run_id: str | None = None,
    progress_interval_s: float = 15.0,
    torch_threads: int | None = 1,
) -> Path:
    """Record ``n_episodes`` episodes of ``policy`` into a new iteration of ``out_parent``.

    :param policy: batch policy ``obs (n, D) -> actions (n, 2)``, e.g.
        ``rollout.sb3_policy(model, deterministic=True)``. Actions are clipped to [-1, 1]
        and stored as applied.
    :param scenario: scenario name (``envs.list_scenarios()``).
    :param out_parent: the scenario's dataset directory (``schema.scenario_dir(scenario)``);
        the next ``iter-NNNN`` below it is claimed exclusively.
    :param n_episodes: episodes to record (the validation minimum is 200).
    :param seed_base: episode ``k`` is played on seed ``seed_base + k``; the seeds must lie
        in the dataset range (``>= training.train_config.DATASET_SEED_BASE``, 3,000,000).
    :param n_envs: worlds stepped together. Changes no episode's seed or start, but a
        batched torch policy rounds its float32 actions differently per batch size, so
        the data can differ between ``n_envs`` values (module docstring).
    :param env_overrides: ``make_vec_env`` overrides (``n_rays``, ``n_peds``, ``horizon``,
        SimParams fields); must match the expert's training env. Stored in the manifest
        and used again by playback.
    :param source: provenance of the acting policy; must hold ``run_dir`` (expert run
        directory) and ``model_sha256``; anything else (run id, promotion metrics) is kept.
    :param config: the caller's validated config, stored as the manifest's ``config``.
    :param policy_name: the ``policy`` field of each ``episodes.jsonl`` record.
    :param parallel: use the threaded simulator kernel. Default False: on a shared 2-core
        machine the serial kernel measured 40-120k world-steps/s while the OpenMP one
        swung between 2k and 120k depending on other load; the recorded data are identical.
    :param run_id: orchestrator run id for the manifest (e.g. the Dagster run id).
    :param progress_interval_s: seconds between progress log lines.
    :param torch_threads: torch intra-op threads while recording (restored afterwards);
        ``None`` leaves torch alone. Only applied when torch is already imported.
    :return: the committed iteration directory (manifest written).
    :raises ValueError: on bad arguments, before any directory is created.
    """
    _check_args(n_episodes, n_envs, source, seed_base)
    overrides = dict(env_overrides or {})
    if "parallel" in overrides:
        raise ValueError("give 'parallel' as record_dataset's own argument, not in env_overrides")
    started_at = time.time()
    seeds = episode_seeds(seed_base, n_episodes)
    # Build the env first: unknown overrides fail before an iteration number is taken.
    env = make_vec_env(scenario, min(n_envs, n_episodes), seed_base, parallel=parallel, **overrides)
    obs_dim = int(env.observation_space.shape[0])
    iter_dir = next_iteration_dir(out_parent)
    try:
        with limit_torch_threads(torch_threads):
            return _record_into(
                iter_dir,
                env,
                policy,
                scenario,
                seeds,
                overrides,
                dict(source or {}),
                config,
                policy_name,
                parallel,
                run_id,
                started_at,
                obs_dim,
                progress_interval_s,
            )
    except BaseException:
        if not (iter_dir / MANIFEST_NAME).exists():  # never remove a committed iteration
            _log.warning("recording into {} failed; removing the incomplete iteration", iter_dir)
            shutil.rmtree(iter_dir, ignore_errors=True)
        raise
    finally:
        env.close()


def _record_into(
    iter_dir: Path,
    env: Any,
    policy: Policy,
    scenario: str,
    seeds: list[int],
    overrides: dict[str, Any],
    source: dict[str, Any],
    config: Any,
    policy_name: str,
    parallel: bool,
    run_id: str | None,
    started_at: float,
    obs_dim: int,
    progress_interval_s: float,
) -> Path:
    n_envs = env.num_envs
    _log.info(
        "recording {} episodes of {} (seeds {}..{}) into {} with {} envs",
        len(seeds),
        scenario,
        seeds[0],
        seeds[-1],
        iter_dir,
        n_envs,
    )
    t0 = time.perf_counter()
    episodes = run_episodes(
        env, _ProgressPolicy(policy, n_envs, len(seeds), progress_interval_s), seeds, record=True
    )
    record_s = time.perf_counter() - t0
    n_transitions = sum(len(ep.actions) for ep in episodes)
    _log.info(
        "recorded {} episodes, {:,} transitions in {:.2f} s ({:,.0f} transitions/s)",
        len(episodes),
        n_transitions,
        record_s,
        n_transitions / max(record_s, 1e-9),
    )

    t1 = time.perf_counter()
    arrays = pack_episodes(
        [ep.observations for ep in episodes],
        [ep.actions for ep in episodes],
        [ep.rewards for ep in episodes],
        [ep.terminated for ep in episodes],
        [ep.truncated for ep in episodes],
    )
    if arrays["observations"].shape[1] != obs_dim:
        raise RuntimeError(
            f"recorded observations have {arrays['observations'].shape[1]} features, the env's "
            f"observation space {obs_dim}"
        )
    npz_path = iter_dir / TRAJECTORIES_NAME
    atomic_save(npz_path, lambda tmp: write_npz(tmp, arrays))

    records = []
    for k, ep in enumerate(episodes):
        metrics = dict(ep.metrics)
        metrics["length"] = len(ep.actions)
        metrics["return"] = float(np.sum(ep.rewards, dtype=np.float64))
        records.append(
            episode_record(
                scenario=scenario,
                seed=ep.seed,
                episode_index=k,
                policy=policy_name,
                metrics=metrics,
                extra={
                    "terminated": ep.terminated,
                    "truncated": ep.truncated,
                    "episode_start": int(arrays["episode_starts"][k]),
                    "obs_start": int(arrays["obs_starts"][k]),
                },
            )
        )
    write_episodes_jsonl(iter_dir / EPISODES_NAME, records)
    write_s = time.perf_counter() - t1

    digests = {name: array_sha256(arrays[name]) for name in ARRAY_SPECS}
    files = [TRAJECTORIES_NAME, EPISODES_NAME]
    bytes_total = sum((iter_dir / f).stat().st_size for f in files)
    extra = {
        "dataset_schema_version": DATASET_SCHEMA_VERSION,
        "dataset_id": uuid.uuid4().hex,
        "iteration": int(iter_dir.name.split("-")[-1]),
        "iteration_name": iter_dir.name,
        "scenario": scenario,
        "status": STATUS_RECORDED,
        "source": source,
        "policy": {"name": policy_name, "deterministic_expected": True},
        "env_overrides": overrides,
        "n_episodes": len(episodes),
        "n_transitions": int(n_transitions),
        "n_observations": int(arrays["observations"].shape[0]),
        "observation_dim": obs_dim,
        "arrays": {
            name: {
                "shape": list(arrays[name].shape),
                "dtype": arrays[name].dtype.str,
                "sha256": digests[name],
            }
            for name in ARRAY_SPECS
        },
        "content_sha256": content_sha256(digests),
        "bytes_total": int(bytes_total),
        "scenario_coverage": scenario_coverage(scenario, episodes),
        "recording": {
            "n_envs": n_envs,
            "parallel_kernel": parallel,
            "record_s": round(record_s, 4),
            "write_s": round(write_s, 4),
            "transitions_per_s": round(n_transitions / max(record_s, 1e-9), 1),
        },
    }
    manifest = build_manifest(
        kind=DATASET_KIND,
        partition=scenario,
        config=config if config is not None else {},
        seeds={"seed_base": seeds[0], "episode_seeds": seeds},
        artifact_dir=iter_dir,
        files=files,
        started_at=started_at,
        run_id=run_id,
        extra=extra,
    )
    manifest[MANIFEST_DIGEST_KEY] = manifest_digest(manifest)
    write_manifest(iter_dir, manifest)
    total_s = time.time() - started_at
    _log.info(
        "dataset {} committed: {} episodes, {:,} transitions, {:.1f} MB, {:.2f} s total "
        "({:,.0f} transitions/s end to end)",
        iter_dir,
        len(episodes),
        n_transitions,
        bytes_total / 1e6,
        total_s,
        n_transitions / max(total_s, 1e-9),
    )
    return iter_dir


# ------------------------------------------------------------------------ the stage


@dataclass(frozen=True)
class DatasetSettings:
    """What the dataset stages record and check against (the Dagster ``DatasetConfig``
    gives every value; stored as the manifest's ``config``)."""

    n_episodes: int
    seed_base: int
    n_envs: int
    min_episodes: int
    size_cap_gb: float
    render_sample: bool

    @property
    def size_cap_bytes(self) -> int:
        return int(self.size_cap_gb * 10**9)


@dataclass(frozen=True)
class DatasetOutcome:
    """A recorded iteration and its checks: ``size`` (the cap), ``count`` (the minimum),
    ``integrity`` (full validation); ``sample_png`` is episode 0 rendered, if asked for."""

    ref: DatasetRef
    manifest: dict[str, Any]
    size: CheckResult
    count: CheckResult
    integrity: IntegrityReport
    sample_png: bytes | None = None


def run_trajectory_dataset(
    settings: DatasetSettings,
    expert: ExpertRef,
    root: str | os.PathLike[str],
    *,
    run_id: str | None = None,
) -> DatasetOutcome:
    """The dataset stage: record the expert's deterministic episodes into the next
    ``<root>/datasets/<scenario>/iter-NNNN/`` (manifest included) and check it.

    The sample rendering goes to ``<root>/playback/<scenario>/``.

    :raises StageRefused: if the expert was not promoted.
    :raises ValueError: if the expert's model changed since it was validated.
    """
    if not expert.promoted:
        raise StageRefused(
            f"expert {expert.run_dir} did not pass the promotion bar; no dataset is built from a failed expert"
        )
    verify_model(expert.model_path, expert.model_sha256)
    model = PPO.load(expert.model_path, device="cpu")
    root = Path(root)
    iter_dir = record_dataset(
        sb3_policy(model, deterministic=True),
        expert.scenario,
        scenario_dir(expert.scenario, root=root),
        n_episodes=settings.n_episodes,
        seed_base=settings.seed_base,
        n_envs=settings.n_envs,
        env_overrides=expert.env_overrides,
        source={"run_dir": str(expert.run_dir), "model_sha256": expert.model_sha256},
        config=asdict(settings),
        run_id=run_id,
    )
    manifest = read_manifest(iter_dir)
    cap = settings.size_cap_bytes
    size = check_size_cap(iter_dir, cap)
    count = check_episode_count(iter_dir, settings.min_episodes)
    integrity = validate_dataset(iter_dir, min_episodes=settings.min_episodes, size_cap_bytes=cap)
    png = None
    if settings.render_sample:
        target = root / "playback" / expert.scenario / f"{iter_dir.name}-episode-0000.png"
        png = Path(render_episode(iter_dir, 0, target).png).read_bytes()
    ref = DatasetRef(iter_dir=iter_dir, dataset_id=manifest["dataset_id"], scenario=expert.scenario)
    return DatasetOutcome(ref, manifest, size, count, integrity, png)
