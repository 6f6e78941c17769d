"""Typed, validated configuration of PPO training, evaluation and promotion.

Plain pydantic v2 models whose fields are ints, floats, strings, bools, lists and dicts of
those, or nested models: the Dagster layer can mirror them in ``dg.Config`` classes (or
validate ``TrainConfig.model_validate(cfg.model_dump())``). An invalid config fails here,
before any work starts, with a message naming the field.

Seed layout (all disjoint, so no evaluation episode is ever a training world):

==========================  ====================================  ==========================
use                         seeds                                 function
==========================  ====================================  ==========================
training worlds             ``seed * 1000 + i``, i < n_envs        :func:`train_env_seeds`
                            (``[0, 10**6)``)
curve evaluation episodes   ``eval_seed_base + e``                 :func:`eval_episode_seeds`
                            (``[10**6, 1.9 * 10**6)``)
selection episodes          ``1.9 * 10**6 + e``                    :func:`selection_episode_seeds`
                            (``[1.9 * 10**6, 2 * 10**6)``)
validation episodes         ``2 * 10**6 + eval_seed * 10**5 + e``  :func:`validation_episode_seeds`
                            (``[2 * 10**6, 3 * 10**6)``:
                            eval_seed 0..9)
dataset episodes            ``seed_base + k``                      ``datasets.record``
                            (``>= 3 * 10**6``)
==========================  ====================================  ==========================

Every config that sets seeds is checked against this table (:data:`SEED_RANGES`,
:func:`check_seed_range`): seeds outside their own range fail before any work starts,
with a message naming both ranges, so demonstrations never replay curve-evaluation or
training episodes and validation never reuses a dataset's.

The curve evaluation set drives early stopping and nominates candidate policies; the
held-out selection set picks one of them (:mod:`robosf_assets.training.selection`); the
promotion verdict is computed on separate, never-seen validation episodes.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from robosf_assets.envs.env_config import EnvConfig
from robosf_assets.envs.factory import list_scenarios
from robosf_assets.training.profiles import ARM_EVAL, ARM_TIMESTEPS, PROFILES, arm_overrides

__all__ = [
    "ARM_EVAL",
    "ARM_TIMESTEPS",
    "DATASET_SEED_BASE",
    "SEED_RANGES",
    "check_seed_range",
    "EVAL_SEED_LIMIT",
    "MAX_ENVS",
    "MAX_TRAIN_SEED",
    "PROFILES",
    "TRAIN_SEED_LIMIT",
    "SELECTION_SEED_BASE",
    "VALIDATION_SEED_BASE",
    "VALIDATION_SEED_STRIDE",
    "EvalSchedule",
    "PPOHyperparams",
    "PromotionBar",
    "TrainConfig",
    "ValidationSpec",
    "arm_config",
    "eval_episode_seeds",
    "profile_config",
    "selection_episode_seeds",
    "train_env_seeds",
    "validation_episode_seeds",
]

MAX_ENVS = 1000
"""Training worlds per run; world ``i`` of run ``seed`` is seeded ``seed * MAX_ENVS + i``."""
MAX_TRAIN_SEED = 999
"""Largest run seed, so every training world seed stays below :data:`TRAIN_SEED_LIMIT`."""
TRAIN_SEED_LIMIT = (MAX_TRAIN_SEED + 1) * MAX_ENVS
"""Every training world seed is below this (10**6)."""
EVAL_SEED_LIMIT = 2 * 10**6
"""Curve evaluation and selection episode seeds lie below this."""
SELECTION_SEED_BASE = 1_900_000
"""Selection episodes are ``[SELECTION_SEED_BASE, EVAL_SEED_LIMIT)``; curve evaluation
episodes lie in ``[TRAIN_SEED_LIMIT, SELECTION_SEED_BASE)``."""
VALIDATION_SEED_BASE = EVAL_SEED_LIMIT
"""First validation episode seed."""
VALIDATION_SEED_STRIDE = 10**5
"""Episode seeds reserved per validation (evaluation) seed."""
DATASET_SEED_BASE = 3 * 10**6
"""Dataset episode seeds start here; validation episodes lie below it (eval_seed <= 9)."""

SEED_RANGES: dict[str, tuple[int, int | None]] = {
    "training worlds": (0, TRAIN_SEED_LIMIT),
    "curve evaluation episodes": (TRAIN_SEED_LIMIT, SELECTION_SEED_BASE),
    "selection episodes": (SELECTION_SEED_BASE, EVAL_SEED_LIMIT),
    "validation episodes": (VALIDATION_SEED_BASE, DATASET_SEED_BASE),
    "dataset episodes": (DATASET_SEED_BASE, None),
}
"""The disjoint seed range of each use, ``[low, high)`` (``None``: no upper end)."""


def _range_text(low: int, high: int | None) -> str:
    return f"[{low:,}, {high:,})" if high is not None else f"[{low:,}, ...)"


def check_seed_range(use: str, low: int, high: int, what: str | None = None) -> None:
    """Raise unless the seeds ``[low, high)`` of ``use`` (a :data:`SEED_RANGES` key) stay
    in that use's range.

    :param what: how to name the seeds in the message (default ``"<use> seeds"``).
    :raises ValueError: naming both ranges: the seeds' own and each one they overlap.
    """
    own_low, own_high = SEED_RANGES[use]
    if low >= own_low and (own_high is None or high <= own_high):
        return
    clashes = [
        f"{name} {_range_text(a, b)}"
        for name, (a, b) in SEED_RANGES.items()
        if name != use and low < (b if b is not None else high + 1) and high > a
    ]
    overlap = f"overlap {' and '.join(clashes)}" if clashes else "fall outside every seed range"
    raise ValueError(
        f"{what or use + ' seeds'} {_range_text(low, high)} {overlap}; {use} must stay in "
        f"{_range_text(own_low, own_high)} so that no stage replays another's episodes"
    )

_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


class _Model(BaseModel):
    """Base: unknown keys are errors (a typo must not silently keep a default)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PPOHyperparams(_Model):
    """Stable-Baselines3 PPO hyperparameters (``MlpPolicy``, separate actor and critic nets)."""

    learning_rate: float = Field(3e-4, gt=0, description="Adam learning rate (at the start of the run).")
    learning_rate_final: float | None = Field(
        None, gt=0, description="If set, the learning rate decays linearly to this value at total_timesteps."
    )
    learning_rate_horizon: int | None = Field(
        None,
        ge=1,
        description="Env steps the decay to learning_rate_final spans (None: total_timesteps); "
        "longer than the budget, the run is the start of a longer one.",
    )
    n_steps: int = Field(256, ge=1, description="Steps per environment per rollout.")
    batch_size: int = Field(512, ge=2, description="Minibatch size of each gradient step.")
    n_epochs: int = Field(10, ge=1, description="Passes over each rollout buffer.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE bias/variance trade-off.")
    clip_range: float = Field(0.2, gt=0, description="PPO policy ratio clipping.")
    ent_coef: float = Field(0.0, ge=0, description="Entropy bonus weight in the loss.")
    vf_coef: float = Field(0.5, ge=0, description="Value loss weight in the loss.")
    max_grad_norm: float = Field(0.5, gt=0, description="Gradient norm clipping.")
    net_arch: list[int] = Field(
        default_factory=lambda: [128, 128],
        description="Hidden layer sizes, used for both the actor and the critic network.",
    )
    log_std_init: float = Field(0.0, description="Initial log standard deviation of actions.")
    log_std_max: float | None = Field(
        None,
        description="Cap on the log standard deviation of actions, applied before every rollout "
        "(None: no cap). The env clips actions to [-1, 1], and without a cap PPO can widen the "
        "noise until the sampled policy brakes at random while its mean, the policy that is "
        "evaluated and recorded, drives flat out (docs/benchmark.md, 'The action noise').",
    )

    policy_average_decay: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="If set, the policy that is evaluated, snapshotted and saved is an exponential "
        "moving average of the policy's weights, updated after every PPO update with this decay "
        "(avg <- d * avg + (1 - d) * weights; about 1 / (1 - d) updates remembered); PPO itself "
        "keeps training its own weights (None: the weights as trained). Late in a run PPO's "
        "weights wander between safer and riskier policies from update to update; their average "
        "does not (docs/benchmark.md, 'The experts' weight average').",
    )

    @field_validator("net_arch")
    @classmethod
    def _positive_layers(cls, v: list[int]) -> list[int]:
        if not v or any(n < 1 for n in v):
            raise ValueError(f"net_arch must list at least one positive layer size, got {v}")
        return v


class EvalSchedule(_Model):
    """Periodic evaluation on a fixed episode set during training (the learning curve)."""

    eval_every_steps: int = Field(
        20_000, ge=1, description="Training env steps between evaluations."
    )
    n_eval_episodes: int = Field(50, ge=1, description="Episodes per evaluation (fixed seeds).")
    eval_seed_base: int = Field(
        TRAIN_SEED_LIMIT, description="First evaluation episode seed; must lie in [10**6, 1.9*10**6)."
    )
    n_eval_envs: int = Field(16, ge=1, description="Worlds stepped together while evaluating.")
    deterministic: bool = Field(True, description="Evaluate the mean action instead of sampling.")
    dense_eval_every_steps: int | None = Field(
        None,
        ge=1,
        description="Evaluate this often (instead of eval_every_steps) until dense_eval_until_steps; "
        "None: no dense phase.",
    )
    dense_eval_until_steps: int = Field(
        0, ge=0, description="End of the dense evaluation phase at the start of training (env steps)."
    )

    def next_eval_after(self, timesteps: int) -> int:
        """The first step strictly after ``timesteps`` at which an evaluation is due.

        Time to threshold can only be resolved to the evaluation spacing, and a run that
        starts good (a BC warm start) or learns fast reaches it early: the dense phase
        resolves the start finely without paying for dense evaluation over the whole run.
        """
        dense = self.dense_eval_every_steps
        if dense is not None:
            dense_due = (timesteps // dense + 1) * dense
            if dense_due <= self.dense_eval_until_steps:
                return dense_due  # only the dense spacing inside the dense phase
        return (timesteps // self.eval_every_steps + 1) * self.eval_every_steps

    @model_validator(mode="after")
    def _disjoint_from_training(self) -> EvalSchedule:
        check_seed_range(
            "curve evaluation episodes",
            self.eval_seed_base,
            self.eval_seed_base + self.n_eval_episodes,
            f"curve evaluation episodes (eval_seed_base {self.eval_seed_base:,} + "
            f"n_eval_episodes {self.n_eval_episodes:,})",
        )
        return self


class PromotionBar(_Model):
    """When a policy counts as an expert (REFERENCE §1)."""

    min_success: float = Field(0.90, ge=0, le=1, description="Success rate needed (inclusive).")
    max_collision: float = Field(
        0.05, ge=0, le=1, description="Collision rate allowed (inclusive)."
    )
    consecutive_evals: int = Field(
        3, ge=1, description="Curve evaluations in a row that must meet the bar to stop early."
    )
    per_seed: bool = Field(
        False, description="Also require every validation seed to meet the bar, not just the pool."
    )


class ValidationSpec(_Model):
    """Final validation of the trained policy on never-seen episodes (issue 3 item 4)."""

    eval_seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2],
        description="Validation seeds; each gives its own episode set.",
    )
    episodes_per_seed: int = Field(
        100, ge=1, le=VALIDATION_SEED_STRIDE, description="Episodes played per validation seed."
    )
    n_envs: int = Field(16, ge=1, description="Worlds stepped together while validating.")
    selection_episodes: int | None = Field(
        None,
        ge=0,
        le=EVAL_SEED_LIMIT - SELECTION_SEED_BASE,
        description="Held-out selection episodes each candidate policy plays before validation "
        "(None: 2 * episodes_per_seed, 200 in both profiles; 0: no selection, validate the best "
        "curve evaluation's policy).",
    )
    selection_candidates: int = Field(
        3, ge=1, description="Best curve evaluations nominated for selection (the final policy joins them)."
    )

    @property
    def n_selection_episodes(self) -> int:
        """``selection_episodes``, or twice ``episodes_per_seed`` when it is ``None``."""
        if self.selection_episodes is not None:
            return self.selection_episodes
        return min(2 * self.episodes_per_seed, EVAL_SEED_LIMIT - SELECTION_SEED_BASE)

    @field_validator("eval_seeds")
    @classmethod
    def _distinct_non_negative(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("eval_seeds must list at least one validation seed")
        if len(set(v)) != len(v) or min(v) < 0:
            raise ValueError(f"eval_seeds must be distinct non-negative ints, got {v}")
        return v

    @model_validator(mode="after")
    def _disjoint_from_datasets(self) -> ValidationSpec:
        for seed in self.eval_seeds:
            start = VALIDATION_SEED_BASE + seed * VALIDATION_SEED_STRIDE
            check_seed_range(
                "validation episodes", start, start + self.episodes_per_seed, f"validation seed {seed}'s episodes"
            )
        return self


class TrainConfig(_Model):
    """One PPO training run on one scenario with one seed."""

    scenario: str = Field(description="Scenario name from robosf_assets.envs.list_scenarios().")
    seed: int = Field(
        0, ge=0, le=MAX_TRAIN_SEED, description="Run seed: torch, SB3 and world seeds."
    )
    total_timesteps: int = Field(200_000, ge=1, description="Training env-step budget.")
    n_envs: int = Field(16, ge=1, le=MAX_ENVS, description="Training worlds stepped together.")
    ppo: PPOHyperparams = Field(default_factory=PPOHyperparams, description="PPO hyperparameters.")
    eval: EvalSchedule = Field(
        default_factory=EvalSchedule, description="Learning-curve evaluation."
    )
    promotion: PromotionBar = Field(
        default_factory=PromotionBar, description="Expert promotion bar."
    )
    validation: ValidationSpec = Field(
        default_factory=ValidationSpec, description="Final multi-seed validation."
    )
    early_stop: bool = Field(
        True, description="Stop once the promotion bar holds k evaluations in a row."
    )
    early_stop_margin: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Margin added to min_success and taken off max_collision to stop early.",
    )
    checkpoint_every_steps: int = Field(
        50_000, ge=1, description="Training env steps between checkpoints."
    )
    env_overrides: dict[str, int | float | bool | str] = Field(
        default_factory=dict, description="make_vec_env overrides (EnvConfig or SimParams fields)."
    )
    device: str = Field(
        "auto",
        description=(
            "torch device: auto (CUDA when present and the minibatch is large enough to pay, "
            "training.device.resolve_device), cpu, cuda, cuda:N."
        ),
    )
    torch_threads: int = Field(
        1,
        ge=0,
        description="torch CPU threads while training (1: reproducible; 0: leave torch's default).",
    )
    progress_interval_s: float = Field(
        30.0, ge=0, description="Seconds between progress log lines."
    )

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, v: str) -> str:
        known = list_scenarios()
        if v not in known:
            from robosf_assets.sim.scenario import ScenarioError, get_scenario

            try:  # a broken scenario file says what is wrong with it
                get_scenario(v)
            except ScenarioError as err:
                raise ValueError(f"{err}; choose one of {known}") from None
            raise ValueError(f"scenario {v!r} is not registered; choose one of {known}")
        return v

    @field_validator("device")
    @classmethod
    def _device_name(cls, v: str) -> str:
        if not _DEVICE.fullmatch(v):
            raise ValueError(f"device {v!r} must be auto, cpu, cuda, cuda:N or mps")
        return v

    @field_validator("env_overrides")
    @classmethod
    def _valid_overrides(cls, v: dict[str, Any]) -> dict[str, Any]:
        try:
            EnvConfig.from_overrides(**v)
        except (TypeError, ValueError) as err:
            raise ValueError(f"env_overrides: {err}") from None
        return v

    @model_validator(mode="after")
    def _rollout_fits_batches(self) -> TrainConfig:
        rollout = self.ppo.n_steps * self.n_envs
        if rollout % self.ppo.batch_size != 0:
            raise ValueError(
                f"ppo.n_steps ({self.ppo.n_steps}) * n_envs ({self.n_envs}) = {rollout} is not a "
                f"multiple of ppo.batch_size ({self.ppo.batch_size}); SB3 would drop a truncated "
                "minibatch every epoch. Pick a batch_size that divides the rollout size."
            )
        return self

    def run_key(self) -> dict[str, Any]:
        """What makes two runs the same work, for resuming an unfinished one: the config
        (not the budget, which may grow on resume, nor the log spacing) and the scenario's
        definition, so an edited scenario never resumes a run of the old one."""
        from robosf_assets.sim.scenario import get_scenario

        return {
            "train": self.model_dump(exclude={"progress_interval_s", "total_timesteps"}),
            "scenario_sha256": get_scenario(self.scenario).fingerprint(),
        }

    @property
    def rollout_size(self) -> int:
        """Env steps collected per PPO iteration (``ppo.n_steps * n_envs``)."""
        return self.ppo.n_steps * self.n_envs

    @property
    def train_seed_base(self) -> int:
        """Seed of training world 0 (``seed * 1000``); SB3 and torch are seeded with it too."""
        return self.seed * MAX_ENVS


def train_env_seeds(seed: int, n_envs: int) -> list[int]:
    """World seeds of a training run: ``seed * 1000 + i`` for ``i < n_envs``."""
    if not 0 <= seed <= MAX_TRAIN_SEED or not 1 <= n_envs <= MAX_ENVS:
        raise ValueError(f"need 0 <= seed <= {MAX_TRAIN_SEED} and 1 <= n_envs <= {MAX_ENVS}")
    return [seed * MAX_ENVS + i for i in range(n_envs)]


def eval_episode_seeds(schedule: EvalSchedule) -> list[int]:
    """The fixed episode seeds of every learning-curve evaluation."""
    return list(range(schedule.eval_seed_base, schedule.eval_seed_base + schedule.n_eval_episodes))


def selection_episode_seeds(n_episodes: int) -> list[int]:
    """Seeds of the held-out selection episodes: ``1.9 * 10**6 + e`` for ``e < n_episodes``."""
    if not 0 <= n_episodes <= EVAL_SEED_LIMIT - SELECTION_SEED_BASE:
        raise ValueError(f"need 0 <= n_episodes <= {EVAL_SEED_LIMIT - SELECTION_SEED_BASE}")
    return list(range(SELECTION_SEED_BASE, SELECTION_SEED_BASE + n_episodes))


def validation_episode_seeds(eval_seed: int, n_episodes: int) -> list[int]:
    """Episode seeds of validation seed ``eval_seed``: ``2*10**6 + eval_seed*10**5 + e``."""
    if eval_seed < 0 or not 1 <= n_episodes <= VALIDATION_SEED_STRIDE:
        raise ValueError(
            f"need eval_seed >= 0 and 1 <= n_episodes <= {VALIDATION_SEED_STRIDE}, "
            f"got eval_seed={eval_seed}, n_episodes={n_episodes}"
        )
    start = VALIDATION_SEED_BASE + eval_seed * VALIDATION_SEED_STRIDE
    return list(range(start, start + n_episodes))


# ------------------------------------------------------------------------- profiles

def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, BaseModel):
            value = value.model_dump()
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "env_overrides":
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def profile_config(name: str, scenario: str, seed: int = 0, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of profile ``name`` for ``scenario`` and ``seed``.

    :param name: a key of :data:`PROFILES` (``"quick"`` or ``"full"``).
    :param scenario: scenario name.
    :param seed: run seed.
    :param overrides: fields to change; nested models merge key by key, e.g.
        ``ppo={"learning_rate": 1e-4}`` keeps the profile's other PPO values.
    :raises KeyError: for an unknown profile, listing the known ones.
    """
    if name not in PROFILES:
        raise KeyError(f"unknown training profile {name!r}; choose one of {sorted(PROFILES)}")
    fields = _deep_merge(PROFILES[name], {"scenario": scenario, "seed": seed, **overrides})
    return TrainConfig.model_validate(fields)


def arm_config(name: str, scenario: str, seed: int = 0, **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a comparison arm (fine-tuned or baseline) of profile ``name``:
    the profile's expert config changed by its ``arm`` section of
    :data:`~robosf_assets.training.profiles.PROFILE_TABLE` (budget, dense evaluation phase,
    no early stop), then by ``overrides`` (merged key by key as in :func:`profile_config`).
    """
    if name not in PROFILES:
        raise KeyError(f"unknown training profile {name!r}; choose one of {sorted(PROFILES)}")
    return profile_config(name, scenario, seed, **_deep_merge(arm_overrides(name), overrides))
