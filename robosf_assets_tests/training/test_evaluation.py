"""Tests for robosf_assets.training.evaluation: multi-seed validation and the promotion verdict."""

import numpy as np
import pytest
import torch

from robosf_assets.benchmark.stats import rate_with_ci
from robosf_assets.training.train_config import PromotionBar, TrainConfig, validation_episode_seeds
from robosf_assets.training.evaluation import (
    curve_point,
    evaluate_multi_seed,
    evaluate_policy_episodes,
    promotion_verdict,
    validate_policy,
)

N_RAYS = 16
TINY = {"n_rays": N_RAYS, "horizon": 80}


def steer_to_goal(obs: np.ndarray) -> np.ndarray:
    """A hand-written controller: full speed, turn towards the goal bearing."""
    sin_bearing = obs[:, N_RAYS + 3]
    return np.stack([np.ones(len(obs)), np.clip(3.0 * sin_bearing, -1, 1)], axis=1)


def _summary(success: list[bool], collision: list[bool], per_seed: dict | None = None) -> dict:
    return {
        "pooled": {"success": rate_with_ci(success), "collision": rate_with_ci(collision)},
        "per_seed": per_seed or {},
    }


def test_verdict_passes_with_margins() -> None:
    summary = _summary([True] * 95 + [False] * 5, [True] * 2 + [False] * 98)
    v = promotion_verdict(summary, PromotionBar())
    assert v["passed"]
    assert v["success"]["margin"] == pytest.approx(0.05)
    assert v["collision"]["margin"] == pytest.approx(0.03)
    assert v["success"]["ci"][0] <= 0.95 <= v["success"]["ci"][1]
    assert v["message"].startswith("PASSED") and "by 0.050" in v["message"]


def test_verdict_fails_and_says_by_how_much() -> None:
    summary = _summary([True] * 85 + [False] * 15, [True] * 8 + [False] * 92)
    v = promotion_verdict(summary)
    assert not v["passed"]
    assert not v["success"]["passed"] and v["success"]["margin"] == pytest.approx(-0.05)
    assert not v["collision"]["passed"] and v["collision"]["margin"] == pytest.approx(-0.03)
    assert "0.050 below 0.900" in v["message"] and "0.030 above 0.050" in v["message"]


def test_verdict_bounds_are_inclusive_and_one_failure_fails() -> None:
    assert promotion_verdict({"success": 0.90, "collision": 0.05})["passed"]
    only_collision = promotion_verdict({"success": 0.99, "collision": 0.06})
    assert not only_collision["passed"] and only_collision["success"]["passed"]


def test_verdict_per_seed_requirement() -> None:
    per_seed = {"0": {"success": 0.99, "collision": 0.0}, "1": {"success": 0.80, "collision": 0.0}}
    summary = {"pooled": {"success": 0.92, "collision": 0.01}, "per_seed": per_seed}
    lenient = promotion_verdict(summary, PromotionBar())
    strict = promotion_verdict(summary, PromotionBar(per_seed=True))
    assert lenient["passed"] and lenient["failed_seeds"] == ["1"]
    assert not strict["passed"] and "seeds ['1']" in strict["message"]


def test_curve_point_known_records() -> None:
    records = [
        {"success": True, "collision": False, "episode_return": 4.0},
        {"success": False, "collision": True, "episode_return": -2.0},
        {"success": False, "collision": False, "episode_return": 1.0},
        {"success": True, "collision": False, "episode_return": 5.0},
    ]
    assert curve_point(records) == {
        "success": 0.5,
        "collision": 0.25,
        "mean_return": 2.0,
        "n_episodes": 4,
    }


def test_evaluate_policy_episodes_is_fixed_by_seeds() -> None:
    seeds = [2_000_007, 2_000_003, 2_000_005]
    a = evaluate_policy_episodes(
        steer_to_goal, "crossing", seeds, n_envs=2, env_overrides=TINY, policy_name="steer"
    )
    b = evaluate_policy_episodes(
        steer_to_goal, "crossing", seeds[::-1], n_envs=3, env_overrides=TINY, policy_name="steer"
    )
    assert [r["seed"] for r in a] == seeds and [r["episode_index"] for r in a] == [0, 1, 2]
    assert a[0]["policy"] == "steer" and a[0]["schema_version"] == 1
    # the same episode whatever the order and the number of worlds
    assert [r["steps"] for r in a] == [r["steps"] for r in b][::-1]


def test_evaluate_multi_seed_per_seed_and_pooled() -> None:
    out = evaluate_multi_seed(
        steer_to_goal,
        "crossing",
        [0, 1, 2],
        episodes_per_seed=4,
        n_envs=4,
        env_overrides=TINY,
        policy_name="steer",
    )
    assert set(out["per_seed"]) == {"0", "1", "2"}
    assert out["pooled"]["n_episodes"] == 12 == len(out["episodes"])
    records = out["episodes"]
    assert [r["episode_index"] for r in records] == list(range(12))
    assert [r["seed"] for r in records[4:8]] == validation_episode_seeds(1, 4)
    assert all(r["extra"]["eval_seed"] == int(i // 4) for i, r in enumerate(records))
    pooled_success = np.mean([r["success"] for r in records])
    assert out["pooled"]["success"]["mean"] == pytest.approx(pooled_success)
    assert out["pooled"]["success"]["mean"] == pytest.approx(
        np.mean([s["success"]["mean"] for s in out["per_seed"].values()])
    )
    assert {"path_length", "min_ped_distance", "steps"} <= set(out["pooled"]["metrics"])
    v = promotion_verdict(out, PromotionBar())
    assert v["passed"] == (
        out["pooled"]["success"]["mean"] >= 0.9 and out["pooled"]["collision"]["mean"] <= 0.05
    )
    with pytest.raises(ValueError, match="distinct"):
        evaluate_multi_seed(steer_to_goal, "crossing", [0, 0], 2, env_overrides=TINY)


def test_validate_policy_uses_the_config_and_adds_the_verdict() -> None:
    cfg = TrainConfig(
        scenario="crossing",
        env_overrides=TINY,
        validation={"eval_seeds": [3, 4, 5], "episodes_per_seed": 3, "n_envs": 3},
        promotion={"min_success": 0.0, "max_collision": 1.0},
    )
    out = validate_policy(steer_to_goal, cfg, policy_name="steer")
    assert out["eval_seeds"] == [3, 4, 5] and out["pooled"]["n_episodes"] == 9
    assert out["verdict"]["passed"] and out["verdict"]["bar"]["min_success"] == 0.0
    assert [r["seed"] for r in out["episodes"][:3]] == validation_episode_seeds(3, 3)


def test_lean_deterministic_policy_returns_exactly_what_predict_returns() -> None:
    from robosf_assets.envs import make_vec_env
    from robosf_assets.envs.rollout import sb3_policy
    from robosf_assets.training.evaluation import as_policy
    from robosf_assets.training.ppo import build_ppo

    config = TrainConfig(
        scenario="crossing", n_envs=4, env_overrides={**TINY, "frame_stack": 2}, device="cpu",
        ppo={"n_steps": 32, "batch_size": 64, "n_epochs": 1, "net_arch": [16, 16]},
    )
    model = build_ppo(config, make_vec_env("crossing", 4, 0, **config.env_overrides))
    with torch.no_grad():  # a mean far outside [-1, 1] for some inputs, so clipping matters
        model.policy.action_net.bias.add_(torch.tensor([2.0, -0.5]))
    lean = as_policy(model)
    assert lean.__qualname__.startswith("_mean_action_policy")  # the lean path, not predict
    obs = np.random.default_rng(0).uniform(-2, 2, (7, model.observation_space.shape[0])).astype(np.float32)
    expected = model.predict(obs, deterministic=True)[0]
    assert np.array_equal(lean(obs), expected) and expected.max() == 1.0
    seeds = list(range(10**6, 10**6 + 6))
    fast = evaluate_policy_episodes(model, "crossing", seeds, n_envs=3, env_overrides=config.env_overrides)
    slow = evaluate_policy_episodes(
        sb3_policy(model), "crossing", seeds, n_envs=3, env_overrides=config.env_overrides
    )
    strip = [{k: v for k, v in r.items() if k != "policy"} for r in fast]
    assert strip == [{k: v for k, v in r.items() if k != "policy"} for r in slow]
    # a sampling evaluation still goes through predict (SB3 draws from its own generator)
    assert as_policy(model, deterministic=False).__qualname__.startswith("sb3_policy")
