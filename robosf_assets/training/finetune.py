"""PPO fine-tuning from a BC policy, and PPO from scratch.

Fine-tuning starts PPO from the BC policy (every state_dict key matched, the critic
already regressed onto the demonstrations' returns, ``log_std`` reset: see
:mod:`robosf_assets.training.bc`). Three optional mechanisms keep the cloned start
(REFERENCE §6, §10), each a :class:`FinetuneConfig` field and one callback:

- **Critic warm-up** (:class:`CriticWarmup`, WSRL / PIRLNav): for the first
  ``critic_warmup_steps`` env steps the actor is frozen, so PPO's updates only fit the
  critic to the fine-tuning policy's own returns and the first policy-gradient steps use
  a sensible advantage estimate.
- **Actor learning-rate ramp** (:class:`ActorLearningRateRamp`, PIRLNav): after the
  warm-up the actor's learning rate rises linearly from 0 to the PPO rate over
  ``actor_ramp_steps`` env steps, while the critic keeps the full rate.
- **Decaying BC anchor** (:class:`BCAnchor`, DAPG): every PPO gradient step also descends
  ``lambda * KL(pi_BC || pi)`` on states of the current rollout, with
  ``lambda = anchor_coef * anchor_decay ** k`` and ``k`` the PPO iterations since the
  warm-up ended.

Everything else is the same PPO, hyperparameters, budget, seeds and evaluation schedule as
the baseline, optionally with a scaled learning rate (``learning_rate_scale``), so the two
arms differ only in their start and these mechanisms.

How the ramp and the anchor reach SB3's PPO. SB3 has one Adam optimizer for actor and
critic, rebuilds nothing after ``PPO.load`` (setting ``model.learning_rate`` then does
nothing: the schedule is built once) and sets every parameter group's rate from its
schedule at each ``train()`` call. Neither mechanism changes the optimizer, its parameter
groups or the saved model (so checkpoints, resume and ``PPO.load`` work as before); both
are torch optimizer step hooks registered by a callback at the start of ``learn()``:

- the ramp scales the *update* of the actor's parameters: a pre-step hook keeps them, a
  post-step hook sets ``p = p_before + f * (p_after - p_before)``. For Adam without weight
  decay this is exactly a learning rate of ``f * lr`` for those parameters (Adam's step is
  linear in the rate; its moments are updated either way, as with a per-group rate).
  Scaling the actor's *gradients* instead would do nothing: Adam divides the gradient by
  its own running scale.
- the anchor adds the gradient of ``lambda * KL`` (on a minibatch of the rollout's
  observations, ``anchor_batch_size`` rows, seeded) to PPO's gradient in a pre-step hook,
  then clips the sum to ``max_grad_norm`` again, so one Adam step takes PPO's loss plus
  the anchor term. The reference policy is the BC state handed to fine-tuning (with its
  reset ``log_std``), rebuilt at every ``learn()``, so a resumed run anchors to BC too,
  not to its checkpoint.

What was measured for the warm-up (full profile, 163,840 steps, evaluations of 100
episodes every 4,096 steps, seeds 0-1 of crossing and bottleneck): with an 8,192-step
warm-up the cloned policy drifted from 0.99 success to 0.84-0.93 within 160k steps, at the
baseline's learning rate and at a tenth of it alike; with a 40,960-step warm-up it held
0.92-0.99 (mean 0.97-0.99). The warm-up is therefore 40,960 steps in the full profile
(:data:`CRITIC_WARMUP_STEPS`). Evaluations inside the warm-up see the frozen BC actor.

The ablation of the ramp and the anchor (``python -m robosf_assets.bench.finetune_ablation``,
docs/results/ablation/) chose the defaults: the anchor on (:data:`ANCHOR_COEF`), the ramp
off (it kept the bar less often than the warm-up alone); a second one on hallway, over a
full arm's 3M steps, the anchor's slower decay (:data:`ANCHOR_DECAY`, 0.998 per rollout
instead of 0.99).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from stable_baselines3.common.callbacks import BaseCallback

from robosf_assets.artifacts import atomic_save, build_manifest, resumable_run_dir, write_manifest
from robosf_assets.benchmark.plots import learning_curve_png
from robosf_assets.logs import get_logger
from robosf_assets.refs import BCPolicyRef, PolicyRef
from robosf_assets.training.bc import load_policy_state, seed_partition
from robosf_assets.training.train_config import TrainConfig
from robosf_assets.training.profiles import CRITIC_WARMUP_STEPS, PROFILE_TABLE
from robosf_assets.training.ppo import TrainResult, train_ppo

log = get_logger("training.finetune")


# The critic warm-up per profile (quick: 4 of its 10 rollouts; full: 10 of 488) lives in
# the profile table with every other per-profile value.

ANCHOR_COEF = 2.0
"""Default anchor weight at the end of the warm-up (decaying by ``anchor_decay`` per
rollout). Chosen by the ablation in docs/results/ablation/: on crossing x 3 seeds x 327,680
steps the warm-up alone kept the bar in 50% of the evaluations after it (no seed held it),
warm-up + actor ramp in 44%, warm-up + this anchor in 100% (every seed held it from step 0)."""

ANCHOR_DECAY = 0.998
"""Default anchor weight factor per rollout after the warm-up: half-life 346 rollouts
(1.4M steps), 0.23 of the weight left at the end of a full-profile arm (732 rollouts).
At 0.99 (half-life 69 rollouts) the full profile's hallway arms held 0.98-1.00 until
about 1.5M steps, when the anchor was down to 0.03 of its weight, then drifted to PPO's
own 0.90-0.95; on hallway x 3 seeds x 2,998,272 steps 0.998 kept the bar in every
evaluation (docs/results/ablation/hallway-3m)."""

ANCHOR_MIN_WEIGHT = 1e-6
"""Below this anchor weight the anchor step is skipped (its gradient is negligible)."""


class FinetuneConfig(BaseModel):
    """What fine-tuning adds to plain PPO (see the module doc for each mechanism)."""

    model_config = ConfigDict(extra="forbid")

    critic_warmup_steps: int = Field(
        CRITIC_WARMUP_STEPS["full"],
        ge=0,
        description="Env steps at the start during which the actor is frozen and only the critic learns.",
    )
    learning_rate_scale: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Multiplies the PPO learning rate schedule (start and end) while fine-tuning.",
    )
    actor_ramp_steps: int = Field(
        0,
        ge=0,
        description="Env steps after the warm-up over which the actor's learning rate rises linearly "
        "from 0 to the PPO rate (the critic keeps the full rate); 0: no ramp.",
    )
    anchor_coef: float = Field(
        ANCHOR_COEF,
        ge=0,
        description="lambda0: weight of the KL(pi_BC || pi) anchor in the PPO loss at the first update "
        "after the warm-up; 0: no anchor.",
    )
    anchor_decay: float = Field(
        ANCHOR_DECAY,
        gt=0,
        le=1,
        description="lambda1: the anchor weight is multiplied by this per PPO iteration (rollout) "
        "after the warm-up; 1: no decay.",
    )
    anchor_batch_size: int = Field(
        256, ge=1, description="Rollout observations the anchor's KL is averaged over at each gradient step."
    )

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> FinetuneConfig:
        """The fine-tuning config of ``profile`` (its ``finetune`` section of
        :data:`~robosf_assets.training.profiles.PROFILE_TABLE`), with ``overrides``."""
        if profile not in PROFILE_TABLE:
            raise KeyError(f"unknown training profile {profile!r}; choose one of {sorted(PROFILE_TABLE)}")
        return cls(**{**PROFILE_TABLE[profile]["finetune"], **overrides})

    def apply(self, config: TrainConfig) -> TrainConfig:
        """``config`` with the fine-tuning learning rate (what the run records and resumes with)."""
        ppo = config.ppo
        final = ppo.learning_rate_final
        return config.model_copy(update={"ppo": ppo.model_copy(update={
            "learning_rate": ppo.learning_rate * self.learning_rate_scale,
            "learning_rate_final": None if final is None else final * self.learning_rate_scale,
        })})

    def callbacks(
        self, reference_state: Mapping[str, torch.Tensor] | None = None, seed: int = 0
    ) -> list[BaseCallback]:
        """One callback per enabled mechanism: the warm-up always, the ramp and the anchor
        when configured (the anchor needs ``reference_state``, the BC policy's state)."""
        out: list[BaseCallback] = [CriticWarmup(self.critic_warmup_steps)]
        if self.actor_ramp_steps > 0:
            out.append(ActorLearningRateRamp(self.critic_warmup_steps, self.actor_ramp_steps))
        if self.anchor_coef > 0:
            if reference_state is None:
                raise ValueError("anchor_coef > 0 needs the BC policy state to anchor to")
            out.append(BCAnchor(reference_state, self.critic_warmup_steps, self.anchor_coef,
                                self.anchor_decay, self.anchor_batch_size, seed))
        return out


# ------------------------------------------------------------------ pure schedules


def actor_lr_factor(steps: int, warmup_steps: int, ramp_steps: int) -> float:
    """The actor's share of the PPO learning rate at an update after ``steps`` env steps.

    0 during the warm-up (the actor is frozen then anyway); after it, rising linearly from
    0 at ``warmup_steps`` to 1 at ``warmup_steps + ramp_steps``; 1 from then on (and at
    once when ``ramp_steps`` is 0).
    """
    if steps < warmup_steps:
        return 0.0
    if ramp_steps <= 0:
        return 1.0
    return min(1.0, (steps - warmup_steps) / ramp_steps)


def anchor_weight(steps: int, warmup_steps: int, rollout_size: int, coef: float, decay: float) -> float:
    """``coef * decay ** k`` with ``k = (steps - warmup_steps) / rollout_size`` the PPO
    iterations since the warm-up ended (DAPG's lambda0 * lambda1^iteration); 0 during the
    warm-up, when the actor is frozen."""
    if steps < warmup_steps or coef <= 0:
        return 0.0
    return float(coef * decay ** ((steps - warmup_steps) / rollout_size))


def gaussian_kl(reference: Any, policy: Any, obs: torch.Tensor) -> torch.Tensor:
    """Mean over ``obs`` of ``KL(reference(.|s) || policy(.|s))``, summed over action
    dimensions (SB3 diagonal Gaussian policies); differentiable in ``policy`` only."""
    with torch.no_grad():
        ref = reference.get_distribution(obs).distribution
    pi = policy.get_distribution(obs).distribution
    return torch.distributions.kl_divergence(ref, pi).sum(dim=-1).mean()


def actor_parameters(policy) -> list:
    """The parameters that decide actions: the actor's MLP, the action head and log_std."""
    return (
        list(policy.mlp_extractor.policy_net.parameters())
        + list(policy.action_net.parameters())
        + [policy.log_std]
    )


# ------------------------------------------------------------------------ callbacks


class CriticWarmup(BaseCallback):
    """Freeze the actor until ``warmup_steps`` env steps have been collected."""

    def __init__(self, warmup_steps: int) -> None:
        super().__init__(verbose=0)
        self.warmup_steps = warmup_steps
        self.frozen = False

    def _set_frozen(self, frozen: bool) -> None:
        for p in actor_parameters(self.model.policy):
            p.requires_grad_(not frozen)
        if frozen != self.frozen:
            log.info("actor {} at {:,} steps", "frozen (critic warm-up)" if frozen else "unfrozen", self.model.num_timesteps)
        self.frozen = frozen

    def _on_training_start(self) -> None:
        self._set_frozen(self.model.num_timesteps < self.warmup_steps)

    def _on_rollout_end(self) -> None:
        # called right before the PPO update of this rollout
        self._set_frozen(self.model.num_timesteps < self.warmup_steps)

    def _on_step(self) -> bool:
        return True


class _StepHooks(BaseCallback):
    """Base: torch step hooks on the PPO optimizer for the duration of one ``learn()``."""

    def __init__(self) -> None:
        super().__init__(verbose=0)
        self._handles: list[Any] = []

    def _hooks(self) -> tuple[Any, Any]:
        """``(pre_hook, post_hook)``, either may be ``None``."""
        raise NotImplementedError

    def _on_training_start(self) -> None:
        optimizer = self.model.policy.optimizer
        pre, post = self._hooks()
        if pre is not None:
            self._handles.append(optimizer.register_step_pre_hook(pre))
        if post is not None:
            self._handles.append(optimizer.register_step_post_hook(post))

    def _on_training_end(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _on_step(self) -> bool:
        return True


class ActorLearningRateRamp(_StepHooks):
    """After the warm-up, the actor's learning rate rises linearly from 0 over
    ``ramp_steps`` env steps (:func:`actor_lr_factor`); the critic keeps the full rate.

    :ivar factor: the factor of the last optimizer step (for tests and logs).
    """

    def __init__(self, warmup_steps: int, ramp_steps: int) -> None:
        super().__init__()
        self.warmup_steps = warmup_steps
        self.ramp_steps = ramp_steps
        self.factor = 0.0
        self._before: list[torch.Tensor] | None = None

    def _hooks(self) -> tuple[Any, Any]:
        params = actor_parameters(self.model.policy)

        def pre(optimizer, args, kwargs) -> None:
            self.factor = actor_lr_factor(self.model.num_timesteps, self.warmup_steps, self.ramp_steps)
            moving = self.factor < 1.0 and params[0].requires_grad  # frozen: nothing to scale
            self._before = [p.detach().clone() for p in params] if moving else None

        def post(optimizer, args, kwargs) -> None:
            if self._before is None:
                return
            with torch.no_grad():
                for p, old in zip(params, self._before, strict=True):
                    p.copy_(old + self.factor * (p - old))
            self._before = None

        return pre, post

    def _on_rollout_start(self) -> None:
        self.logger.record("train/actor_lr_factor", self.factor)


class BCAnchor(_StepHooks):
    """Adds ``lambda * KL(pi_BC || pi)`` (:func:`anchor_weight`, :func:`gaussian_kl`) to
    every PPO gradient step after the warm-up, on ``batch_size`` observations of the
    current rollout drawn with a seeded generator.

    :ivar last_weight: anchor weight of the last step (0 when skipped).
    :ivar last_kl: KL to the BC policy measured at the last anchored step.
    """

    def __init__(self, reference_state: Mapping[str, torch.Tensor], warmup_steps: int, coef: float,
                 decay: float, batch_size: int = 256, seed: int = 0) -> None:
        super().__init__()
        self.reference_state = dict(reference_state)
        self.warmup_steps = warmup_steps
        self.coef = coef
        self.decay = decay
        self.batch_size = batch_size
        self.seed = seed
        self.last_weight = 0.0
        self.last_kl = float("nan")
        self.reference = None

    def _hooks(self) -> tuple[Any, Any]:
        policy = self.model.policy
        self.reference = copy.deepcopy(policy)
        self.reference.load_state_dict(self.reference_state, strict=True)
        self.reference.set_training_mode(False)
        for p in self.reference.parameters():
            p.requires_grad_(False)
        params = actor_parameters(policy)
        rng = np.random.default_rng([self.seed, int(self.model.num_timesteps)])

        def pre(optimizer, args, kwargs) -> None:
            model = self.model
            w = anchor_weight(model.num_timesteps, self.warmup_steps, model.n_steps * model.n_envs,
                              self.coef, self.decay)
            if w < ANCHOR_MIN_WEIGHT or not params[0].requires_grad:
                self.last_weight = 0.0
                return
            buf = model.rollout_buffer.observations
            flat = buf.reshape(-1, buf.shape[-1])
            idx = rng.integers(0, len(flat), size=min(self.batch_size, len(flat)))
            obs = torch.as_tensor(flat[idx], device=policy.device)
            with torch.enable_grad():
                kl = gaussian_kl(self.reference, policy, obs)
                grads = torch.autograd.grad(w * kl, params, allow_unused=True)
            with torch.no_grad():
                for p, g in zip(params, grads, strict=True):
                    if g is not None:
                        p.grad = g.clone() if p.grad is None else p.grad + g
            torch.nn.utils.clip_grad_norm_(policy.parameters(), model.max_grad_norm)
            self.last_weight, self.last_kl = w, float(kl.detach())

        return pre, None

    def _on_rollout_start(self) -> None:
        self.logger.record("train/anchor_weight", self.last_weight)
        self.logger.record("train/anchor_kl", self.last_kl)


# ------------------------------------------------------------------------ the stage


def finetune_from_bc(config: TrainConfig, finetune: FinetuneConfig, bc_policy_path: Path, run_dir: Path) -> TrainResult:
    """PPO from the BC policy at ``bc_policy_path`` into ``run_dir`` (resumable), with the
    warm-up, ramp and anchor ``finetune`` configures."""
    state = load_policy_state(bc_policy_path)
    return train_ppo(
        finetune.apply(config), run_dir, init_policy_state=state,
        callbacks=finetune.callbacks(state, seed=config.train_seed_base),
    )


def train_baseline(config: TrainConfig, run_dir: Path) -> TrainResult:
    """PPO from scratch with the same config: the arm fine-tuning is compared against."""
    return train_ppo(config, run_dir)


# ------------------------------------------------------------------------ the arm stages


@dataclass(frozen=True)
class ArmOutcome:
    """What a comparison arm's stage produced: its reference, the training result, the
    manifest and the learning-curve PNG written next to the model."""

    ref: PolicyRef
    result: TrainResult
    manifest: dict[str, Any]
    curve_png: bytes


def run_finetuned(config: TrainConfig, finetune: FinetuneConfig, bc: BCPolicyRef, root: str | Path) -> ArmOutcome:
    """The fine-tuned arm: :func:`finetune_from_bc` in the resumable run directory
    ``<root>/finetuned_policies/<scenario>-seed<seed>/`` keyed by the config, the BC run
    and ``finetune``."""
    key = {**config.run_key(), "bc_run": str(bc.run_dir), **finetune.model_dump()}
    extra = {"bc_run": str(bc.run_dir), "dataset_iteration": bc.dataset_iteration,
             "demo_transitions": bc.demo_transitions, **finetune.model_dump()}
    return _run_arm("finetuned_policy", "finetuned_policies", config, key, root, extra,
                    lambda run_dir: finetune_from_bc(config, finetune, bc.policy_path, run_dir))


def run_baseline(config: TrainConfig, root: str | Path) -> ArmOutcome:
    """The baseline arm: :func:`train_baseline` in the resumable run directory
    ``<root>/baseline_policies/<scenario>-seed<seed>/``."""
    return _run_arm("baseline_policy", "baseline_policies", config, config.run_key(), root, {},
                    lambda run_dir: train_baseline(config, run_dir))


def _run_arm(kind: str, subdir: str, config: TrainConfig, key: Mapping[str, Any], root: str | Path,
             extra: dict[str, Any], train: Any) -> ArmOutcome:
    """Train an arm in its resumable run directory, then write its learning curve and
    manifest while still holding the directory (released however this ends)."""
    partition = seed_partition(config.scenario, config.seed)
    with resumable_run_dir(subdir, partition, key, root=root) as (run_dir, _):
        started = time.time()
        result: TrainResult = train(run_dir)
        png = learning_curve_png(result.curve, title=f"{kind}, {config.scenario}, seed {config.seed}")
        if not (run_dir / "learning_curve.png").exists():  # a resumed run may have written it before dying
            atomic_save(run_dir / "learning_curve.png", lambda tmp: tmp.write_bytes(png))
        manifest = build_manifest(
            kind=kind, partition=partition, config=config.model_dump(),
            seeds={"run_seed": config.seed, "train_seed_base": config.train_seed_base}, artifact_dir=run_dir,
            started_at=started,
            extra={"timesteps_used": result.timesteps_used, "resumed_from": str(result.resumed_from or ""), **extra},
        )
        write_manifest(run_dir, manifest)
    ref = PolicyRef(arm=kind, run_dir=run_dir, model_path=result.model_path, scenario=config.scenario,
                    seed=config.seed, timesteps_used=result.timesteps_used,
                    demo_transitions=extra.get("demo_transitions"),
                    bc_run=Path(extra["bc_run"]) if "bc_run" in extra else None,
                    dataset_iteration=extra.get("dataset_iteration"))
    return ArmOutcome(ref, result, manifest, png)
