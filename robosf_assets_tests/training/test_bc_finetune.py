"""BC into PPO's architecture, value-head pre-training, and fine-tuning with a critic warm-up."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from robosf_assets.datasets.load import load_trajectories
from robosf_assets.datasets.record import record_dataset
from robosf_assets.datasets.validate import validate_dataset, write_integrity_report
from robosf_assets.envs import make_vec_env
from robosf_assets.training.bc import BCConfig, discounted_returns, load_policy_state, train_bc
from robosf_assets.training.train_config import profile_config
from robosf_assets.training.finetune import (
    CriticWarmup,
    FinetuneConfig,
    actor_parameters,
    finetune_from_bc,
)
from robosf_assets.training.ppo import build_ppo

OVERRIDES = {"n_peds": 2, "horizon": 80}


def go_to_goal(obs: np.ndarray) -> np.ndarray:
    bearing = np.arctan2(obs[:, -2], obs[:, -1])
    return np.stack([np.where(np.abs(bearing) < 0.3, 1.0, -0.5), np.clip(2 * bearing, -1, 1)], axis=1)


def tiny_config(**changes):
    cfg = {
        "total_timesteps": 1024, "n_envs": 4, "env_overrides": OVERRIDES,
        "ppo": {"n_steps": 128, "batch_size": 256, "n_epochs": 2, "net_arch": [32, 32]},
        "eval": {"eval_every_steps": 512, "n_eval_episodes": 6, "n_eval_envs": 3},
        "checkpoint_every_steps": 512,
    }
    cfg.update(changes)
    return profile_config("quick", "crossing", seed=1, **cfg)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    iter_dir = record_dataset(go_to_goal, "crossing", root / "crossing", n_episodes=12, seed_base=3_000_000,
                              n_envs=4, env_overrides=OVERRIDES, source={"run_dir": "scripted", "model_sha256": "-"},
                              policy_name="go-to-goal")
    report = validate_dataset(iter_dir, min_episodes=10)
    assert report.passed, report.reasons
    write_integrity_report(iter_dir, report)
    return load_trajectories(iter_dir)


def test_discounted_returns_on_a_known_sequence():
    assert discounted_returns(np.array([1.0, 0.0, 2.0]), 0.5) == pytest.approx([1.5, 1.0, 2.0])


def test_bc_clones_into_ppo_architecture_and_every_key_loads(demos, tmp_path):
    config = tiny_config()
    bc = BCConfig(epochs=3, batch_size=64, value_epochs=5, eval_episodes=6, finetune_log_std=-1.0)
    result = train_bc(config, bc, demos, tmp_path)
    state = load_policy_state(result.policy_path)
    ppo = build_ppo(config, make_vec_env("crossing", 2, 0, **OVERRIDES))
    ppo.policy.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
    assert set(state) == set(ppo.policy.state_dict())
    assert torch.allclose(ppo.policy.log_std, torch.full_like(ppo.policy.log_std, -1.0))
    # BC learnt something: the cloned policy's mean action follows the scripted controller
    obs = np.concatenate([t.obs[:-1] for t in demos])[:200]
    acts = np.concatenate([t.acts for t in demos])[:200]
    pred, _ = ppo.predict(obs, deterministic=True)
    untrained = build_ppo(config, make_vec_env("crossing", 2, 0, **OVERRIDES)).predict(obs, deterministic=True)[0]
    assert np.mean((pred - acts) ** 2) < np.mean((untrained - acts) ** 2)
    # the critic was regressed on returns: its loss went down
    assert result.value_losses[-1] < result.value_losses[0]
    assert {"deterministic", "stochastic", "learnt_log_std"} <= set(result.evaluation)
    assert result.bc_losses and (tmp_path / "bc_loss.png").stat().st_size > 1000
    assert PPO.load(result.model_path).policy.state_dict().keys() == state.keys()


def test_critic_warmup_freezes_the_actor_then_releases_it(demos, tmp_path):
    config = tiny_config()
    bc = train_bc(config, BCConfig(epochs=1, value_epochs=1, eval_episodes=3), demos, tmp_path / "bc")
    before = {k: v.clone() for k, v in load_policy_state(bc.policy_path).items()}
    # warm-up covers the first of two rollouts (512 steps each)
    result = finetune_from_bc(tiny_config(total_timesteps=512), FinetuneConfig(critic_warmup_steps=10_000),
                              bc.policy_path, tmp_path / "ft")
    after = PPO.load(result.model_path).policy.state_dict()
    actor_keys = [k for k in before if k.startswith(("mlp_extractor.policy_net", "action_net", "log_std"))]
    critic_keys = [k for k in before if k.startswith(("mlp_extractor.value_net", "value_net"))]
    assert actor_keys and critic_keys
    assert all(torch.equal(before[k], after[k]) for k in actor_keys), "actor moved during warm-up"
    assert any(not torch.equal(before[k], after[k]) for k in critic_keys), "critic did not learn"
    assert result.curve[0]["timesteps"] == 0  # the jumpstart evaluation of the BC start


def test_critic_warmup_unfreezes_after_the_warmup_steps():
    env = make_vec_env("crossing", 2, 0, **OVERRIDES)
    model = build_ppo(tiny_config(n_envs=2), env)
    cb = CriticWarmup(warmup_steps=300)
    cb.init_callback(model)
    model.num_timesteps = 256
    cb.on_training_start(locals(), globals())
    assert cb.frozen and not any(p.requires_grad for p in actor_parameters(model.policy))
    model.num_timesteps = 512
    cb.on_rollout_end()
    assert not cb.frozen and all(p.requires_grad for p in actor_parameters(model.policy))


def test_finetuning_scales_the_whole_learning_rate_schedule_and_records_it(demos, tmp_path):
    # the decay over this run's own budget (quick follows the full run's longer one)
    ppo = {"n_steps": 128, "batch_size": 256, "n_epochs": 2, "net_arch": [32, 32], "learning_rate_horizon": None}
    config = tiny_config(total_timesteps=512, ppo=ppo)
    bc = train_bc(config, BCConfig(epochs=1, value_epochs=1, eval_episodes=3), demos, tmp_path / "bc")
    finetune = FinetuneConfig(critic_warmup_steps=0, learning_rate_scale=0.1)
    scaled = finetune.apply(config)
    assert scaled.ppo.learning_rate == pytest.approx(config.ppo.learning_rate * 0.1)
    assert scaled.ppo.learning_rate_final == pytest.approx(config.ppo.learning_rate_final * 0.1)
    profile_lr = profile_config("quick", "crossing").ppo.learning_rate
    assert scaled.ppo.n_epochs == config.ppo.n_epochs and config.ppo.learning_rate == profile_lr  # input untouched
    result = finetune_from_bc(config, finetune, bc.policy_path, tmp_path / "ft")
    model = PPO.load(result.model_path)
    assert model.learning_rate(1.0) == pytest.approx(scaled.ppo.learning_rate)
    assert model.learning_rate(0.0) == pytest.approx(scaled.ppo.learning_rate_final)
    with pytest.raises(ValueError, match="learning_rate_scale"):
        FinetuneConfig(learning_rate_scale=2.0)
