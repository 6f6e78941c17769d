"""Environments: the Gymnasium and SB3 checkers, the VecEnv contract, episode metrics."""

import math
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from robosf_assets.envs import list_scenarios, make_robot_env, make_vec_env
from robosf_assets.envs.rollout import run_episodes

SCENARIOS = ["crossing", "corridor", "bottleneck"]
METRIC_KEYS = [
    "success", "collision", "collision_type", "timeout", "steps", "time_to_goal", "path_length",
    "path_efficiency", "min_ped_distance", "near_misses", "comfort_exposure", "jerk",
]


@pytest.mark.parametrize("name", SCENARIOS)
def test_gymnasium_and_sb3_checkers_pass(name):
    assert name in list_scenarios()
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)  # SB3 warns on anything odd
        gym_check_env(make_robot_env(name, 0), skip_render_check=True)
        sb3_check_env(make_robot_env(name, 0), warn=True)


def test_vec_env_world_i_is_the_single_env_seeded_seed_plus_i():
    n = 4
    vec = make_vec_env("bottleneck", n, 10, frame_stack=2)
    singles = [make_robot_env("bottleneck", 10 + i, frame_stack=2) for i in range(n)]
    obs = vec.reset()
    assert np.array_equal(obs, np.stack([e.reset()[0] for e in singles]))
    rng = np.random.default_rng(1)
    ends = 0
    for t in range(500):
        actions = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        obs, rewards, dones, infos = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, terminated, truncated, info = env.step(actions[i])
            assert dones[i] == (terminated or truncated)
            assert rewards[i] == np.float32(r)
            if dones[i]:
                ends += 1
                assert np.array_equal(infos[i]["terminal_observation"], o)
                assert infos[i]["TimeLimit.truncated"] == truncated
                assert infos[i]["episode_metrics"]["steps"] == info["episode_metrics"]["steps"]
                o, _ = env.reset()
            assert np.array_equal(obs[i], o), (t, i)
    assert ends > 0


def test_frame_stack_keeps_the_previous_frame_first():
    env = make_robot_env("crossing", 3, frame_stack=3)
    obs0, _ = env.reset()
    d = obs0.shape[0] // 3
    assert np.array_equal(obs0[:d], obs0[2 * d :])  # after reset every frame is the first
    obs1, *_ = env.step(np.array([1.0, 0.0], dtype=np.float32))
    assert np.array_equal(obs1[d : 2 * d], obs0[2 * d :])
    assert not np.array_equal(obs1[2 * d :], obs0[2 * d :])


def test_unknown_override_names_the_key_and_the_valid_ones():
    with pytest.raises(TypeError, match="robot_radiu'"):
        make_robot_env("crossing", 0, robot_radiu=0.3)
    env = make_robot_env("crossing", 0, robot_radius=0.25, n_rays=36, n_peds=2)
    assert env.observation_space.shape == (41,)
    assert env.world.params.robot_radius == 0.25 and env.world.n_peds == 2


@pytest.mark.parametrize("name", SCENARIOS)
def test_random_policy_episodes_end_by_timeout_or_collision_with_finite_metrics(name):
    env = make_vec_env(name, 8, 0)
    rng = np.random.default_rng(0)
    episodes = run_episodes(env, lambda o: rng.uniform(-1, 1, (len(o), 2)), range(16))
    outcomes = {e.metrics["outcome"] for e in episodes}
    assert outcomes <= {"timeout", "pedestrian", "obstacle", "goal"}
    assert sum(e.metrics["success"] for e in episodes) <= 2  # a random policy rarely gets there
    for e in episodes:
        m = e.metrics
        assert set(METRIC_KEYS) <= set(m)
        for key in ("steps", "path_length", "near_misses", "comfort_exposure", "jerk", "min_ped_distance"):
            assert math.isfinite(m[key]), (key, m[key])
        assert m["success"] or math.isnan(m["time_to_goal"])
        assert 0.0 <= m["comfort_exposure"] <= 1.0


def go_to_goal(obs: np.ndarray) -> np.ndarray:
    """Scripted controller: turn towards the goal, drive when roughly facing it."""
    sin_b, cos_b = obs[:, -2], obs[:, -1]
    bearing = np.arctan2(sin_b, cos_b)
    turn = np.clip(2.0 * bearing, -1, 1)
    speed = np.where(np.abs(bearing) < 0.2, 1.0, -1.0)
    return np.stack([speed, turn], axis=1)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scripted_go_to_goal_succeeds_in_the_empty_scenario(name):
    env = make_vec_env(name, 8, 0, n_peds=0)
    episodes = run_episodes(env, go_to_goal, range(100, 124))
    assert all(e.metrics["success"] for e in episodes), [e.metrics["outcome"] for e in episodes]
    assert all(e.metrics["path_efficiency"] > 0.9 for e in episodes)
