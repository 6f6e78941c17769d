import dagster as dg
import pytest

from robosf_assets.defs.resources import OutputTree


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def output(tmp_path):
    return OutputTree(root=str(tmp_path / "output"))


TINY_TRAINING = {
    "total_timesteps": 1024,
    "n_envs": 4,
    "ppo": {"n_steps": 128, "batch_size": 256, "n_epochs": 2, "net_arch": [32, 32]},
    "eval_every_steps": 512,
    "n_eval_episodes": 4,
    "checkpoint_every_steps": 512,
    "env_overrides": {"n_peds": 3, "horizon": 60},
}


def expert_config(**changes):
    cfg = {
        "profile": "quick",
        **TINY_TRAINING,
        "validation_seeds": [0, 1, 2],
        "validation_episodes_per_seed": 4,
        # tiny experts are trained, never the shipped ones (robosf_assets/experts/)
        "expert_source": "train",
    }
    cfg.update(changes)
    return cfg


def tiny_stage_config() -> dict:
    """Per-asset config for the whole graph on tiny budgets, with a bar every expert passes."""
    dataset = {"n_episodes": 6, "min_episodes": 5, "n_envs": 3, "render_sample": False}
    return {
        "expert_policy": expert_config(min_success=0.0, max_collision=1.0),
        "trajectory_dataset": dataset, "validated_dataset": dataset,
        "bc_policy": {**TINY_TRAINING, "bc_epochs": 1, "value_epochs": 1, "bc_eval_episodes": 3},
        "finetuned_policy": {**TINY_TRAINING, "critic_warmup_steps": 512}, "baseline_policy": TINY_TRAINING,
        "comparison_report": {"n_resamples": 200, "min_seeds": 1},
    }
