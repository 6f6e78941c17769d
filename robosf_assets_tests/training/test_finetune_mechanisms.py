"""The actor learning-rate ramp and the decaying BC anchor of fine-tuning, on tiny budgets."""

import copy

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from robosf_assets.envs import make_vec_env
from robosf_assets.training.train_config import profile_config
from robosf_assets.training.finetune import (
    ActorLearningRateRamp,
    BCAnchor,
    CriticWarmup,
    FinetuneConfig,
    actor_lr_factor,
    actor_parameters,
    anchor_weight,
    finetune_from_bc,
    gaussian_kl,
)
from robosf_assets.training.ppo import build_ppo

OVERRIDES = {"n_peds": 2, "horizon": 80}
ROLLOUT = 512  # 4 envs x 128 steps


def tiny_config(**changes):
    cfg = {
        "total_timesteps": 4 * ROLLOUT, "n_envs": 4, "env_overrides": OVERRIDES,
        "ppo": {"n_steps": 128, "batch_size": 256, "n_epochs": 2, "net_arch": [32, 32],
                "learning_rate_final": None, "learning_rate_horizon": None,
                # as fine-tuning starts in the pipeline: BC hands over log_std -1, at the
                # profile's noise cap, so the cap moves nothing while the actor is frozen
                "log_std_init": -1.0},
        "eval": {"eval_every_steps": 100_000, "n_eval_episodes": 3, "n_eval_envs": 3},
        "checkpoint_every_steps": 100_000, "early_stop": False,
    }
    cfg.update(changes)
    return profile_config("quick", "crossing", seed=2, **cfg)


class ActorProbe(BaseCallback):
    """Actor parameters at each rollout start (after each update) and the callbacks' state."""

    def __init__(self, watch=None) -> None:
        super().__init__(verbose=0)
        self.snapshots, self.steps, self.factors, self.weights = [], [], [], []
        self.watch = watch

    def _snap(self) -> None:
        self.snapshots.append([p.detach().clone() for p in actor_parameters(self.model.policy)])
        self.steps.append(self.model.num_timesteps)
        if isinstance(self.watch, ActorLearningRateRamp):
            self.factors.append(self.watch.factor)
        if isinstance(self.watch, BCAnchor):
            self.weights.append(self.watch.last_weight)

    def _on_training_start(self) -> None:
        self._snap()

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps > 0:
            self._snap()

    def _on_training_end(self) -> None:
        self._snap()

    def _on_step(self) -> bool:
        return True


def moved(a, b) -> float:
    return float(sum((x - y).abs().sum() for x, y in zip(a, b, strict=True)))


def test_schedules() -> None:
    assert actor_lr_factor(0, 1024, 2048) == 0.0
    assert actor_lr_factor(1024, 1024, 2048) == 0.0
    assert actor_lr_factor(2048, 1024, 2048) == 0.5
    assert actor_lr_factor(10**6, 1024, 2048) == 1.0
    assert actor_lr_factor(1024, 1024, 0) == 1.0
    assert anchor_weight(512, 1024, 512, 2.0, 0.5) == 0.0  # warm-up: actor frozen
    assert anchor_weight(1024, 1024, 512, 2.0, 0.5) == 2.0
    assert anchor_weight(2048, 1024, 512, 2.0, 0.5) == 0.5
    assert anchor_weight(2048, 1024, 512, 0.0, 0.5) == 0.0


def test_update_scaling_is_adam_with_a_scaled_actor_rate() -> None:
    """The ramp's hooks give exactly what Adam with an actor parameter group at f * lr gives."""
    model = build_ppo(tiny_config(), make_vec_env("crossing", 4, 0, **OVERRIDES))
    policy = model.policy
    twin = copy.deepcopy(policy)
    actor_ids = {id(p) for p in actor_parameters(twin)}
    lr, eps = model.lr_schedule(1.0), policy.optimizer.defaults["eps"]
    groups = torch.optim.Adam([
        {"params": [p for p in twin.parameters() if id(p) in actor_ids], "lr": 0.25 * lr},
        {"params": [p for p in twin.parameters() if id(p) not in actor_ids], "lr": lr},
    ], eps=eps)
    ramp = ActorLearningRateRamp(warmup_steps=1000, ramp_steps=4000)
    ramp.init_callback(model)
    model.num_timesteps = 2000  # factor 0.25
    ramp.on_training_start(locals(), globals())
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        for p, q in zip(policy.parameters(), twin.parameters(), strict=True):
            g = torch.randn(p.shape, generator=gen)
            p.grad, q.grad = g.clone(), g.clone()
        policy.optimizer.step()
        groups.step()
    assert ramp.factor == 0.25
    for p, q in zip(policy.parameters(), twin.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-7)
    ramp.on_training_end()
    assert not policy.optimizer._optimizer_step_pre_hooks  # hooks removed after learn()


def test_actor_rate_is_zero_then_rises_after_the_warmup(tmp_path) -> None:
    config = tiny_config()
    model = build_ppo(config, make_vec_env("crossing", 4, config.train_seed_base, **OVERRIDES))
    state = model.policy.state_dict()
    path = tmp_path / "bc.pt"
    torch.save(state, path)
    finetune = FinetuneConfig(critic_warmup_steps=2 * ROLLOUT, actor_ramp_steps=2 * ROLLOUT,
                              anchor_coef=0.0)
    callbacks = finetune.callbacks(state)
    assert [type(c) for c in callbacks] == [CriticWarmup, ActorLearningRateRamp]
    probe = ActorProbe(callbacks[1])
    from robosf_assets.training.ppo import train_ppo

    result = train_ppo(finetune.apply(config), tmp_path / "ft", init_policy_state=state,
                       callbacks=[*callbacks, probe])
    # updates after 512 (frozen), 1024 (warm-up over, factor 0), 1536 (0.5), 2048 (1.0)
    assert probe.steps == [0, 512, 1024, 1536, 2048]
    assert probe.factors[-3:] == [0.0, 0.5, 1.0]
    s = probe.snapshots
    assert moved(s[0], s[1]) == 0.0  # warm-up: frozen
    assert moved(s[1], s[2]) == 0.0  # the actor's rate starts at 0
    assert moved(s[2], s[3]) > 0.0 and moved(s[3], s[4]) > 0.0  # then it moves
    assert PPO.load(result.model_path).policy.optimizer.state_dict()["param_groups"][0]["params"]


def _anchored_kl(tmp_path, anchor_coef: float):
    """Fine-tune 4 rollouts from a random "BC" state; return (KL to it, anchor probe)."""
    config = tiny_config()
    model = build_ppo(config, make_vec_env("crossing", 4, config.train_seed_base, **OVERRIDES))
    state = {k: v.clone() for k, v in model.policy.state_dict().items()}
    path = tmp_path / f"bc-{anchor_coef}.pt"
    torch.save(state, path)
    finetune = FinetuneConfig(critic_warmup_steps=0, anchor_coef=anchor_coef, anchor_decay=0.5,
                              anchor_batch_size=128)
    result = finetune_from_bc(config, finetune, path, tmp_path / f"ft-{anchor_coef}")
    tuned = PPO.load(result.model_path, device="cpu").policy
    reference = copy.deepcopy(tuned)
    reference.load_state_dict(state)
    env = make_vec_env("crossing", 16, 1_500_000, **OVERRIDES)
    obs = torch.as_tensor(env.reset())
    with torch.no_grad():
        return float(gaussian_kl(reference, tuned, obs))


def test_the_anchor_pulls_the_policy_towards_the_bc_policy(tmp_path) -> None:
    free = _anchored_kl(tmp_path, 0.0)
    anchored = _anchored_kl(tmp_path, 20.0)
    assert free > 0.0
    assert anchored < 0.5 * free


def test_the_anchor_decays_as_configured(tmp_path) -> None:
    config = tiny_config()
    model = build_ppo(config, make_vec_env("crossing", 4, config.train_seed_base, **OVERRIDES))
    state = model.policy.state_dict()
    finetune = FinetuneConfig(critic_warmup_steps=ROLLOUT, anchor_coef=2.0, anchor_decay=0.5)
    callbacks = finetune.callbacks(state, seed=7)
    anchor = callbacks[-1]
    assert isinstance(anchor, BCAnchor) and anchor.seed == 7
    probe = ActorProbe(anchor)
    from robosf_assets.training.ppo import train_ppo

    train_ppo(config, tmp_path / "ft", init_policy_state=state, callbacks=[*callbacks, probe])
    # weight at the updates after 512 (k=0), 1024 (k=1), 1536 (k=2), 2048 (k=3)
    assert probe.steps == [0, 512, 1024, 1536, 2048]
    assert probe.weights[1:] == pytest.approx([2.0, 1.0, 0.5, 0.25])
    assert np.isfinite(anchor.last_kl) and anchor.last_kl > 0.0
    with pytest.raises(ValueError, match="BC policy state"):
        finetune.callbacks(None)


def test_config_fields_are_validated() -> None:
    with pytest.raises(ValueError, match="anchor_decay"):
        FinetuneConfig(anchor_decay=0.0)
    with pytest.raises(ValueError, match="actor_ramp_steps"):
        FinetuneConfig(actor_ramp_steps=-1)
    with pytest.raises(ValueError, match="extra"):
        FinetuneConfig(anchor_weight=1.0)
    # the defaults: warm-up and anchor (the ablation's choice), no ramp
    assert [type(c) for c in FinetuneConfig().callbacks({})] == [CriticWarmup, BCAnchor]
    off = FinetuneConfig(anchor_coef=0.0)
    assert [type(c) for c in off.callbacks(None)] == [CriticWarmup]


def test_every_finetune_and_selection_knob_is_documented() -> None:
    from pathlib import Path

    from robosf_assets.training.train_config import ValidationSpec

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    for title, model, fields in (
        ("`FinetuneConfig`", FinetuneConfig, list(FinetuneConfig.model_fields)),
        ("`ValidationSpec` (selection)", ValidationSpec, ["selection_episodes", "selection_candidates"]),
    ):
        body = doc.split(f"### {title}", 1)[1].split("### ", 1)[0]
        assert all(f"| `{name}` |" in body for name in fields), title
        for name in fields:
            default = model.model_fields[name].default
            assert f"| `{name}` | {default} |" in body, (name, default)
