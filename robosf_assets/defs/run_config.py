"""Typed Dagster configs, one per stage, on top of the core library's profiles.

Every field left at ``None`` takes the value of the chosen profile (``quick`` or ``full``,
see ``robosf_assets.training.profiles.PROFILE_TABLE``); the profile itself defaults to the
``ROBOSF_PROFILE`` environment variable, else ``quick``. The core config validates the
result before any work starts, naming the offending field.

Each class maps its fields onto the core models' fields in ``CORE_PATHS`` (``PPOSettings``
is derived from ``PPOHyperparams`` field by field); ``robosf_assets_tests/defs/
test_config_parity.py`` fails when a core knob has no counterpart here.
"""


import os
from typing import Any, ClassVar, Optional

import dagster as dg
from pydantic import Field, create_model

from robosf_assets.training.bc import BCConfig
from robosf_assets.training.train_config import PROFILES, PPOHyperparams, TrainConfig, arm_config, profile_config
from robosf_assets.training.finetune import FinetuneConfig

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


def _all_optional(model: type, name: str, doc: str) -> type:
    """A ``dg.Config`` with every field of the pydantic ``model``, each optional (``None``)."""
    fields = {
        field: (Optional[info.annotation], Field(None, description=info.description))  # noqa: UP045
        for field, info in model.model_fields.items()
    }
    return create_model(name, __base__=dg.Config, __doc__=doc, __module__=__name__, **fields)


PPOSettings = _all_optional(
    PPOHyperparams, "PPOSettings", "PPO hyperparameters (every PPOHyperparams field); ``None`` keeps the profile's value."
)


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
    eval_seed_base: int | None = Field(None, description="First curve evaluation episode seed, in [10**6, 1.9*10**6).")
    n_eval_envs: int | None = Field(None, description="Worlds stepped together while evaluating.")
    eval_deterministic: bool | None = Field(None, description="Evaluate the mean action instead of sampling (default True).")
    checkpoint_every_steps: int | None = Field(None, description="Env steps between checkpoints.")
    env_overrides: dict[str, Any] | None = Field(
        None, description="make_vec_env overrides (n_rays, frame_stack, n_peds, any SimParams field)."
    )
    early_stop_margin: float | None = Field(
        None, description="Margin added to min_success and taken off max_collision to stop early."
    )
    device: str | None = Field(None, description="torch device: auto (CUDA when present and the minibatch pays), cpu, cuda, cuda:N.")
    torch_threads: int | None = Field(None, description="torch CPU threads (1: reproducible; 0: torch's default).")
    progress_interval_s: float | None = Field(None, description="Seconds between progress log lines.")

    CORE_PATHS: ClassVar[dict[str, str]] = {
        **{name: name for name in ("total_timesteps", "n_envs", "checkpoint_every_steps", "env_overrides",
                                   "early_stop_margin", "device", "torch_threads", "progress_interval_s")},
        **{name: f"eval.{name}" for name in ("eval_every_steps", "n_eval_episodes", "dense_eval_every_steps",
                                             "dense_eval_until_steps", "eval_seed_base", "n_eval_envs")},
        "eval_deterministic": "eval.deterministic",
        **{f"ppo.{name}": f"ppo.{name}" for name in PPOHyperparams.model_fields},
    }
    """Each field's place in :class:`TrainConfig` (``ppo.x``: the nested ``PPOSettings``)."""

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        ppo = self.ppo.model_dump()
        for name, path in self.CORE_PATHS.items():
            value = ppo[name[4:]] if name.startswith("ppo.") else getattr(self, name)
            _set(out, path, value)
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
    validation_n_envs: int | None = Field(None, description="Worlds stepped together while validating.")
    per_seed: bool | None = Field(
        None, description="Promotion bar: also require every validation seed to meet it (default False)."
    )
    selection_episodes: int | None = Field(
        None, description="Held-out selection episodes per candidate (default 2 x validation episodes; 0: none)."
    )
    selection_candidates: int | None = Field(None, description="Best curve evaluations nominated for selection (3).")
    expert_source: str | None = Field(
        None,
        description="Where the expert comes from: 'train' (PPO from scratch here) or 'shipped' (the full-profile "
                    "expert the repository ships in robosf_assets/experts/<scenario>/, validated again here on "
                    "fresh episodes against this bar; trains when none is shipped). Default: the profile's "
                    "(quick: shipped, full: train).",
    )
    scenario_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Fields changed for one scenario only, e.g. {'corridor': {'min_success': 0.95}}: a backfill "
                    "gives every scenario's run the same config.",
    )

    CORE_PATHS: ClassVar[dict[str, str]] = {
        **TrainingSettings.CORE_PATHS,
        "early_stop": "early_stop",
        **{name: f"promotion.{name}" for name in ("min_success", "max_collision", "consecutive_evals", "per_seed")},
        "validation_seeds": "validation.eval_seeds",
        "validation_episodes_per_seed": "validation.episodes_per_seed",
        "validation_n_envs": "validation.n_envs",
        "selection_episodes": "validation.selection_episodes",
        "selection_candidates": "validation.selection_candidates",
    }

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
        try:
            return profile_config(resolve_profile(self.profile), scenario, self.seed, **out)
        except ValueError as err:  # pydantic's message names the field
            raise dg.Failure(f"invalid expert config: {err}") from None


class ArmConfig(TrainingSettings):
    """A comparison arm (fine-tuned from BC, or PPO from scratch) for one scenario x seed.

    Both arms take the same profile and overrides, so they share hyperparameters, budget,
    seeds and evaluation schedule; only their starting policy differs. Their budget and
    dense evaluation phase default to the profile's ``arm`` section of ``PROFILE_TABLE``
    (quick 40,960, full 2,998,272 steps).
    """

    early_stop: bool = Field(False, description="Stop at the threshold (default off: arms run their whole budget).")

    CORE_PATHS: ClassVar[dict[str, str]] = {**TrainingSettings.CORE_PATHS, "early_stop": "early_stop"}

    def train_config(self, scenario: str, seed: int) -> TrainConfig:
        out = self.overrides()
        try:
            return arm_config(resolve_profile(self.profile), scenario, seed, **out)
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
    bc_ent_weight: float | None = Field(None, description="Entropy bonus weight in the BC loss (default 1e-3).")
    bc_l2_weight: float | None = Field(None, description="L2 weight decay in the BC loss (default 0).")
    value_learning_rate: float | None = Field(None, description="Adam learning rate of the value regression (1e-3).")

    BC_FIELDS: ClassVar[dict[str, str]] = {
        "bc_epochs": "epochs", "bc_batch_size": "batch_size", "bc_learning_rate": "learning_rate",
        "bc_ent_weight": "ent_weight", "bc_l2_weight": "l2_weight", "value_epochs": "value_epochs",
        "value_learning_rate": "value_learning_rate", "finetune_log_std": "finetune_log_std",
        "bc_eval_episodes": "eval_episodes",
    }
    """Each BC field's name in :class:`BCConfig`."""

    def bc_config(self) -> BCConfig:
        """The core BC config; ``None`` keeps BCConfig's default (``finetune_log_std`` None: keep BC's)."""
        fields = {core: getattr(self, name) for name, core in self.BC_FIELDS.items()}
        fields = {k: v for k, v in fields.items() if v is not None or k == "finetune_log_std"}
        try:
            return BCConfig(**fields)
        except ValueError as err:
            raise dg.Failure(f"invalid BC config: {err}") from None


class FinetuneArmConfig(ArmConfig):
    critic_warmup_steps: int | None = Field(
        None, description="Env steps with the actor frozen at the start of fine-tuning (quick 16384, full 40960)."
    )
    learning_rate_scale: float = Field(
        1.0, description="Multiplies the PPO learning rate schedule while fine-tuning (the baseline keeps 1)."
    )
    actor_ramp_steps: int | None = Field(
        None, description="Env steps after the warm-up over which the actor's learning rate rises from 0 (default 0: off)."
    )
    # the defaults quoted below are FinetuneConfig's own, so they cannot drift from it
    anchor_coef: float | None = Field(
        None, description="Weight of the KL(pi_BC || pi) anchor after the warm-up "
        f"(default {FinetuneConfig.model_fields['anchor_coef'].default}; 0: off)."
    )
    anchor_decay: float | None = Field(None, description="Anchor weight factor per rollout after the warm-up "
                                       f"({FinetuneConfig.model_fields['anchor_decay'].default}).")
    anchor_batch_size: int | None = Field(None, description="Rollout observations the anchor's KL averages over "
                                          f"({FinetuneConfig.model_fields['anchor_batch_size'].default}).")

    FINETUNE_FIELDS: ClassVar[tuple[str, ...]] = (
        "critic_warmup_steps", "learning_rate_scale", "actor_ramp_steps", "anchor_coef", "anchor_decay",
        "anchor_batch_size",
    )
    """The :class:`FinetuneConfig` fields, same names; ``None`` keeps the profile's (or the core) default."""

    def finetune_config(self) -> FinetuneConfig:
        fields = {name: getattr(self, name) for name in self.FINETUNE_FIELDS if getattr(self, name) is not None}
        try:
            return FinetuneConfig.for_profile(resolve_profile(self.profile), **fields)
        except ValueError as err:
            raise dg.Failure(f"invalid fine-tuning config: {err}") from None
