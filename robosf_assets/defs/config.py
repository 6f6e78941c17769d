"""Typed Dagster configs, one per stage, on top of the core library's profiles.

Every field left at ``None`` takes the value of the chosen profile (``quick`` or ``full``,
see ``robosf_assets.training.config.PROFILES``); the profile itself defaults to the
``ROBOSF_PROFILE`` environment variable, else ``quick``. The core config validates the
result before any work starts, naming the offending field.
"""


import os
from typing import Any

import dagster as dg
from pydantic import Field

from robosf_assets.training.config import ARM_EVAL, ARM_TIMESTEPS, PROFILES, TrainConfig, profile_config
from robosf_assets.training.finetune import CRITIC_WARMUP_STEPS, FinetuneConfig

DEFAULT_PROFILE_ENV = "ROBOSF_PROFILE"


def resolve_profile(profile: str | None) -> str:
    name = profile or os.environ.get(DEFAULT_PROFILE_ENV, "quick")
    if name not in PROFILES:
        raise dg.Failure(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return name


def _set(out: dict[str, Any], path: str, value: Any) -> None:
    """``out["a"]["b"] = value`` for ``path = "a.b"``, skipping ``None``."""
    if value is None:
        return
    *parents, leaf = path.split(".")
    for p in parents:
        out = out.setdefault(p, {})
    out[leaf] = value


class PPOSettings(dg.Config):
    """PPO hyperparameters; ``None`` keeps the profile's value."""

    learning_rate: float | None = Field(None, description="Adam learning rate at the start.")
    learning_rate_final: float | None = Field(None, description="Linear decay to this learning rate at the end.")
    learning_rate_horizon: int | None = Field(
        None, description="Steps the decay spans (default: the budget; quick: the full expert's 1,998,848)."
    )
    n_steps: int | None = Field(None, description="Steps per environment per rollout.")
    batch_size: int | None = Field(None, description="Minibatch size; must divide n_steps * n_envs.")
    n_epochs: int | None = Field(None, description="Passes over each rollout.")
    gamma: float | None = Field(None, description="Discount factor.")
    gae_lambda: float | None = Field(None, description="GAE lambda.")
    clip_range: float | None = Field(None, description="PPO ratio clipping.")
    ent_coef: float | None = Field(None, description="Entropy bonus weight.")
    net_arch: list[int] | None = Field(None, description="Hidden layer sizes of actor and critic.")


class TrainingSettings(dg.Config):
    """What every PPO-training stage shares (expert and baseline)."""

    profile: str | None = Field(None, description="quick (tiny demo budget) or full (real training).")
    total_timesteps: int | None = Field(None, description="Training env-step budget.")
    n_envs: int | None = Field(None, description="Training worlds stepped together.")
    ppo: PPOSettings = Field(default_factory=PPOSettings, description="PPO hyperparameters.")
    eval_every_steps: int | None = Field(None, description="Env steps between learning-curve evaluations.")
    n_eval_episodes: int | None = Field(None, description="Fixed evaluation episodes per evaluation.")
    dense_eval_every_steps: int | None = Field(
        None, description="Evaluation spacing during the dense phase at the start of training."
    )
    dense_eval_until_steps: int | None = Field(None, description="End of the dense evaluation phase (env steps).")
    checkpoint_every_steps: int | None = Field(None, description="Env steps between checkpoints.")
    env_overrides: dict[str, Any] | None = Field(
        None, description="make_vec_env overrides (n_rays, frame_stack, n_peds, any SimParams field)."
    )

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("total_timesteps", "n_envs", "checkpoint_every_steps", "env_overrides"):
            _set(out, name, getattr(self, name))
        _set(out, "eval.eval_every_steps", self.eval_every_steps)
        _set(out, "eval.n_eval_episodes", self.n_eval_episodes)
        _set(out, "eval.dense_eval_every_steps", self.dense_eval_every_steps)
        _set(out, "eval.dense_eval_until_steps", self.dense_eval_until_steps)
        for name, value in self.ppo.model_dump().items():
            _set(out, f"ppo.{name}", value)
        return out


class ExpertConfig(TrainingSettings):
    """The expert PPO run of one scenario, its validation and its promotion bar."""

    seed: int = Field(0, description="Run seed (torch, SB3 and training worlds seed*1000+i).")
    early_stop: bool | None = Field(None, description="Stop once the promotion bar holds k evaluations in a row.")
    min_success: float | None = Field(None, description="Promotion bar: success rate needed (default 0.90).")
    max_collision: float | None = Field(None, description="Promotion bar: collision rate allowed (default 0.05).")
    consecutive_evals: int | None = Field(None, description="k: evaluations in a row that must meet the bar.")
    validation_seeds: list[int] | None = Field(None, description="Validation seeds (at least 3).")
    validation_episodes_per_seed: int | None = Field(None, description="Validation episodes per seed (100).")
    scenario_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Fields changed for one scenario only, e.g. {'corridor': {'min_success': 0.95}}: a backfill "
                    "gives every scenario's run the same config.",
    )

    def train_config(self, scenario: str) -> TrainConfig:
        if self.scenario_overrides.get(scenario):
            unknown = sorted(set(self.scenario_overrides[scenario]) - set(ExpertConfig.model_fields) - {"scenario_overrides"})
            if unknown:
                raise dg.Failure(f"expert scenario_overrides for {scenario} name unknown fields {unknown}")
            fields = {**self.model_dump(exclude={"scenario_overrides"}), **self.scenario_overrides[scenario]}
            try:
                changed = ExpertConfig(**fields)
            except Exception as err:  # dagster/pydantic name the field
                raise dg.Failure(f"invalid expert scenario_overrides for {scenario}: {err}") from None
            return changed.train_config(scenario)
        out = self.overrides()
        _set(out, "early_stop", self.early_stop)
        _set(out, "promotion.min_success", self.min_success)
        _set(out, "promotion.max_collision", self.max_collision)
        _set(out, "promotion.consecutive_evals", self.consecutive_evals)
        _set(out, "validation.eval_seeds", self.validation_seeds)
        _set(out, "validation.episodes_per_seed", self.validation_episodes_per_seed)
        try:
            return profile_config(resolve_profile(self.profile), scenario, self.seed, **out)
        except ValueError as err:  # pydantic's message names the field
            raise dg.Failure(f"invalid expert config: {err}") from None


class ArmConfig(TrainingSettings):
    """A comparison arm (fine-tuned from BC, or PPO from scratch) for one scenario x seed.

    Both arms take the same profile and overrides, so they share hyperparameters, budget,
    seeds and evaluation schedule; only their starting policy differs. Their budget
    defaults to ``ARM_TIMESTEPS`` of the profile (quick 60k, full 2M steps).
    """

    early_stop: bool = Field(False, description="Stop at the threshold (default off: arms run their whole budget).")

    def train_config(self, scenario: str, seed: int) -> TrainConfig:
        out = self.overrides()
        out["early_stop"] = self.early_stop
        profile = resolve_profile(self.profile)
        out.setdefault("total_timesteps", ARM_TIMESTEPS[profile])
        out["eval"] = {**ARM_EVAL[profile], **out.get("eval", {})}
        try:
            return profile_config(profile, scenario, seed, **out)
        except ValueError as err:
            raise dg.Failure(f"invalid training config: {err}") from None


class BCPolicyConfig(ArmConfig):
    """Behaviour cloning (architecture and PPO settings are the fine-tuning arm's)."""

    bc_epochs: int = Field(10, description="Passes over the demonstrations.")
    bc_batch_size: int = Field(256, description="Transitions per BC gradient step.")
    bc_learning_rate: float = Field(1e-3, description="BC Adam learning rate.")
    value_epochs: int = Field(10, description="Epochs of value-head regression on the demonstrations' returns.")
    finetune_log_std: float | None = Field(-1.0, description="log_std handed to fine-tuning (None: keep BC's).")
    bc_eval_episodes: int = Field(50, description="Evaluation episodes of the BC policy.")


class FinetuneArmConfig(ArmConfig):
    critic_warmup_steps: int | None = Field(
        None, description="Env steps with the actor frozen at the start of fine-tuning (quick 16384, full 40960)."
    )
    learning_rate_scale: float = Field(
        1.0, description="Multiplies the PPO learning rate schedule while fine-tuning (the baseline keeps 1)."
    )

    def finetune_config(self) -> FinetuneConfig:
        warmup = self.critic_warmup_steps
        if warmup is None:
            warmup = CRITIC_WARMUP_STEPS[resolve_profile(self.profile)]
        try:
            return FinetuneConfig(critic_warmup_steps=warmup, learning_rate_scale=self.learning_rate_scale)
        except ValueError as err:
            raise dg.Failure(f"invalid fine-tuning config: {err}") from None
