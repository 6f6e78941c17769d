"""The expert stage: train PPO, validate it on fresh episodes, judge it against the bar.

:func:`run_expert` is the stage: it opens (or resumes) the scenario's run directory and
holds it while :func:`train_expert` writes into it. One run directory
(``output/experts/<scenario>/<run-id>/``) gets everything
:func:`~robosf_assets.training.ppo.train_ppo` writes plus::

    learning_curve.png          success and collision against env steps, with the bar
    selection.json              the candidate policies and their held-out selection rates
    selected_model.zip          the picked policy, the one validated (training.selection)
    validation.json             per-seed and pooled rates with CIs, metrics, verdict
    validation_episodes.jsonl   every validation episode (versioned episode schema)
    manifest.json               config, seeds, git revision, versions, files + sha256, wall time
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3 import PPO

from robosf_assets.artifacts import (
    atomic_save,
    atomic_write_json,
    atomic_write_text,
    build_manifest,
    held_run_dir,
    resumable_run_dir,
    sha256_file,
    write_manifest,
)
from robosf_assets.benchmark.episodes import json_safe
from robosf_assets.benchmark.plots import learning_curve_png
from robosf_assets.logs import get_logger
from robosf_assets.refs import ExpertRef
from robosf_assets.training.train_config import TrainConfig, eval_episode_seeds, train_env_seeds
from robosf_assets.training.evaluation import validate_policy
from robosf_assets.training.ppo import TrainResult, train_ppo
from robosf_assets.training.selection import select_policy

log = get_logger("training.expert")

CURVE_PNG = "learning_curve.png"
VALIDATION_JSON = "validation.json"
VALIDATION_EPISODES = "validation_episodes.jsonl"


@dataclass(frozen=True)
class ExpertOutcome:
    """What the expert stage produced; ``verdict`` says whether it may be promoted."""

    run_dir: Path
    train: TrainResult
    model_path: Path
    """The validated policy: the candidate picked on the held-out selection episodes
    (``selected_model.zip``; see :mod:`robosf_assets.training.selection`)."""
    validation: dict[str, Any]
    verdict: dict[str, Any]
    manifest: dict[str, Any]
    curve_png: bytes
    config: TrainConfig
    resumed: bool = False

    @property
    def promoted(self) -> bool:
        return bool(self.verdict["passed"])

    @property
    def model_sha256(self) -> str:
        return next(f["sha256"] for f in self.manifest["files"] if f["path"] == self.model_path.name)

    @property
    def ref(self) -> ExpertRef:
        """What the dataset stage needs of this expert."""
        return ExpertRef(
            run_dir=self.run_dir, model_path=self.model_path, model_sha256=self.model_sha256,
            promoted=self.promoted, scenario=self.config.scenario, env_overrides=dict(self.config.env_overrides),
            timesteps_used=self.train.timesteps_used,
        )


def run_expert(config: TrainConfig, root: str | Path | None = None, *, extra: dict | None = None) -> ExpertOutcome:
    """The expert stage: train, validate and judge an expert in the newest unfinished run
    directory of ``<root>/experts/<scenario>/`` with the same run key (resumed from its
    checkpoints), or in a new one; the directory is released however this ends.

    :param config: the validated training config.
    :param root: the output tree (default :func:`~robosf_assets.artifacts.output_root`).
    :param extra: more manifest fields (e.g. the Dagster run id).
    """
    with resumable_run_dir("experts", config.scenario, config.run_key(), root=root) as (run_dir, resumed):
        log.info("expert run directory {} ({})", run_dir, "resuming" if resumed else "new")
        return train_expert(config, run_dir, resumed=resumed, extra=extra)


def train_expert(config: TrainConfig, run_dir: Path, *, resumed: bool = False, extra: dict | None = None) -> ExpertOutcome:
    """Train, validate and judge an expert in ``run_dir`` (resuming from its checkpoints).

    :param config: the validated training config (budget, PPO, evaluation, bar, validation).
    :param run_dir: from :func:`~robosf_assets.artifacts.open_resumable_run_dir`; released here.
    :param resumed: whether the directory was reopened (recorded in the manifest).
    :param extra: more manifest fields (e.g. the Dagster run id).
    """
    started = time.time()
    with held_run_dir(run_dir):
        result = train_ppo(config, run_dir)
        # nominated on the curve, picked on held-out selection episodes, judged on the
        # validation episodes: neither choice biases the verdict
        selection = select_policy(config, run_dir, result)
        chosen = selection.model_path
        model = PPO.load(chosen, device="cpu")
        validation = validate_policy(model, config, policy_name="expert")
        verdict = validation["verdict"]
        episodes = validation.pop("episodes")
        # files written late are replaced on a retry: until manifest.json commits the run
        # nothing here is final, and a run killed between them must not trap its retries
        _write_jsonl(run_dir / VALIDATION_EPISODES, episodes)
        atomic_write_json(run_dir / VALIDATION_JSON, validation, overwrite=True)
        png = learning_curve_png(
            result.curve,
            title=f"expert PPO, {config.scenario}, seed {config.seed}",
            min_success=config.promotion.min_success,
            max_collision=config.promotion.max_collision,
        )
        atomic_save(run_dir / CURVE_PNG, lambda tmp: tmp.write_bytes(png), overwrite=True)
        manifest = build_manifest(
            kind="expert_policy",
            partition=config.scenario,
            config=config.model_dump(),
            seeds={
                "run_seed": config.seed,
                "training_worlds": train_env_seeds(config.seed, config.n_envs),
                "curve_evaluation_episodes": eval_episode_seeds(config.eval),
                "validation_seeds": config.validation.eval_seeds,
                "selection_episodes": selection.episode_seeds,
            },
            artifact_dir=run_dir,
            started_at=started,
            extra={
                "resumed": resumed,
                "expert_model": Path(chosen).name,
                "expert_model_timesteps": selection.timesteps,
                "selection_candidates": [c.timesteps for c in selection.candidates],
                "resumed_from": str(result.resumed_from) if result.resumed_from else None,
                "promoted": verdict["passed"],
                "verdict": verdict["message"],
                "timesteps_used": result.timesteps_used,
                "training_wall_time_s": result.wall_time_s,
                "env_steps_per_s": result.env_steps_per_s,
                **(extra or {}),
            },
        )
        write_manifest(run_dir, manifest)
    log.info("expert {} in {}: {}", config.scenario, run_dir, verdict["message"])
    return ExpertOutcome(run_dir, result, Path(chosen), validation, verdict, manifest, png, config, resumed)


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Episode records as JSON Lines (as ``write_episodes_jsonl`` writes them), atomically
    replacing a leftover of an interrupted attempt."""
    text = "".join(json.dumps(json_safe(r), sort_keys=True, allow_nan=False) + "\n" for r in records)
    atomic_write_text(path, text, overwrite=True)


def verify_model(model_path: Path, expected_sha256: str) -> None:
    """Raise if the expert's model changed since it was validated."""
    actual = sha256_file(model_path)
    if actual != expected_sha256:
        raise ValueError(f"{model_path} changed since validation (sha256 {actual} != {expected_sha256})")
