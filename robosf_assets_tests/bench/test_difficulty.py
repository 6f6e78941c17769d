"""The difficulty command and the benchmark scenarios' safety-first reward (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import robosf_assets
from robosf_assets.bench import difficulty
from robosf_assets.envs import make_vec_env
from robosf_assets.envs.rollout import run_episodes

BENCH_DIR = Path(robosf_assets.__file__).parent / "sim" / "scenarios_benchmark"


@pytest.fixture(autouse=True)
def _benchmark_scenarios(monkeypatch):
    monkeypatch.setenv("ROBOSF_SCENARIO_PATH", str(BENCH_DIR))


def test_wilson_interval_brackets_the_rate():
    lo, hi = difficulty.wilson_interval(0, 100)
    assert lo == 0.0 and 0.03 < hi < 0.04  # the rule of three, roughly
    lo, hi = difficulty.wilson_interval(50, 100)
    assert lo < 0.5 < hi and hi - lo < 0.2
    assert difficulty.wilson_interval(0, 0) == (0.0, 1.0)


def test_difficulty_seeds_are_fresh():
    seeds = difficulty.difficulty_seeds(5)
    assert seeds[0] == difficulty.DIFFICULTY_SEED_BASE and len(set(seeds)) == 5
    assert min(seeds) > 2 * 10**6 + 1000 * 10**5  # beyond every training, eval and validation seed in use


@pytest.mark.parametrize("scenario", ["plaza", "hallway", "square", "detour"])
def test_scripted_controller_reaches_the_goal_in_the_empty_arena(scenario):
    r = difficulty.measure(scenario, "scripted_empty", 4, n_envs=4)
    assert r.success == 1.0 and r.collision == 0.0 and r.target_met


@pytest.mark.parametrize("scenario", ["hallway", "square", "detour"])
def test_straight_at_the_goal_is_a_trap_on_every_default_scene(scenario):
    # issue 10: at least one default scene with a static detour; now every one has a wall on
    # the straight line (square's fountain leaves 1% of start-goal pairs a straight path)
    r = difficulty.measure(scenario, "straight_empty", 8, n_envs=8)
    assert r.success == 0.0 and r.collision == 1.0


def test_random_and_crowded_rates_are_proportions(tmp_path):
    out = tmp_path / "d.json"
    assert difficulty.main(["--scenarios", "plaza", "--episodes", "6", "--n-envs", "6",
                            "--controllers", "random", "scripted", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [r["controller"] for r in data["results"]] == ["random", "scripted"]
    for r in data["results"]:
        assert r["episodes"] == 6
        assert 0.0 <= r["success"] <= 1.0 and 0.0 <= r["collision"] <= 1.0
        assert r["success_ci"][0] <= r["success"] <= r["success_ci"][1]
        assert r["success"] + r["collision"] + r["timeout"] == pytest.approx(1.0)


def _straight_into_the_cup(**overrides):
    env = make_vec_env("detour", 4, 0, n_peds=0, reward_time=0.0, reward_near_miss=0.0, **overrides)
    return run_episodes(env, difficulty.ScriptedController(env), difficulty.difficulty_seeds(4))


def test_driving_straight_at_the_goal_is_a_trap_and_a_collision_forfeits_progress():
    # no waypoints: the controller drives into the U-shaped wall between start and goal
    forfeit = _straight_into_the_cup(reward_collision_forfeit=1.0)
    assert all(e.metrics["collision_obstacle"] for e in forfeit)
    # detour.toml: reward_collision 3; with forfeit 1 the episode returns exactly -3
    assert np.allclose([e.metrics["episode_return"] for e in forfeit], -3.0)
    # forfeit 0: the straight-line progress term keeps the metres driven towards the goal
    # before the crash (0.1 per metre, about 7 m) ...
    straight = [e.metrics["episode_return"] for e in _straight_into_the_cup(reward_progress_geodesic=0)]
    assert all(r > -3.0 + 0.5 for r in straight)
    # ... the scenario's geodesic progress pays less for it: the cup is not the way round
    geodesic = [e.metrics["episode_return"] for e in _straight_into_the_cup()]
    assert all(g < s - 0.2 for g, s in zip(geodesic, straight))


def test_forfeit_must_be_a_share():
    with pytest.raises(ValueError, match="reward_collision_forfeit"):
        make_vec_env("plaza", 1, 0, reward_collision_forfeit=1.5)


def test_the_reactive_controller_brakes_for_what_is_ahead_and_only_for_it():
    env = make_vec_env("hallway", 1, 0, n_peds=0)
    free = difficulty.ScriptedController(env)
    brake = difficulty.ScriptedController(env, brake=(0.6, np.pi / 2))
    obs = env.reset()
    world = env.world
    # face the goal, nothing near: the brake leaves the scripted command alone
    world.robot[0, 2] = np.arctan2(*(world.robot_goal[0] - world.robot[0, :2])[::-1])
    world.lidar[0] = 5.0
    assert brake(obs)[0, 0] == free(obs)[0, 0] == 1.0
    # something 0.3 m off the robot's surface straight ahead: half the top speed at most
    world.lidar[0, 0] = world.params.robot_radius + 0.3
    v_cmd = 0.5 * (brake(obs)[0, 0] + 1.0) * world.params.robot_max_speed
    assert v_cmd == pytest.approx(0.5 * world.params.robot_max_speed)
    # the same right behind it: no brake
    world.lidar[0, 0] = 5.0
    world.lidar[0, world.n_rays // 2] = world.params.robot_radius + 0.3
    assert brake(obs)[0, 0] == 1.0
    with pytest.raises(ValueError, match="half-angle"):
        difficulty.ScriptedController(env, brake=(0.6, 4.0))


def test_the_reactive_controller_is_measured_without_a_target():
    r = difficulty.measure("hallway", "reactive", 4, n_envs=4)
    assert r.target == "-" and r.episodes == 4 and r.success + r.collision + r.timeout == pytest.approx(1.0)


def test_the_slow_controller_drives_blind_at_a_fraction_of_the_top_speed():
    env = make_vec_env("hallway", 1, 0, n_peds=0)
    obs = env.reset()
    world = env.world
    world.robot[0, 2] = np.arctan2(*(world.robot_goal[0] - world.robot[0, :2])[::-1])
    slow = difficulty.ScriptedController(env, speed_fraction=difficulty.SLOW_FRACTION)
    v_cmd = 0.5 * (slow(obs)[0, 0] + 1.0) * world.params.robot_max_speed
    assert v_cmd == pytest.approx(difficulty.SLOW_FRACTION * world.params.robot_max_speed)
    world.lidar[0] = world.params.robot_radius  # touching something ahead: it does not brake
    assert slow(obs)[0, 0] == pytest.approx(2 * difficulty.SLOW_FRACTION - 1.0)
    with pytest.raises(ValueError, match="speed_fraction"):
        difficulty.ScriptedController(env, speed_fraction=0.0)
    r = difficulty.measure("hallway", "scripted_slow", 4, n_envs=4)
    assert r.target == "-" and r.episodes == 4


BOX_SCENARIO = """
name = "boxtest"
description = "an empty 16 m square with a 6 m x 1.5 m box between start and goal"
horizon = 400
walls = [[0.0, 0.0, 16.0, 0.0], [16.0, 0.0, 16.0, 16.0], [16.0, 16.0, 0.0, 16.0], [0.0, 16.0, 0.0, 0.0],
         [5.0, 7.0, 11.0, 7.0], [11.0, 7.0, 11.0, 8.5], [11.0, 8.5, 5.0, 8.5], [5.0, 8.5, 5.0, 7.0]]
[robot]
start = [[5.0, 1.0, 11.0, 2.5]]
goal = [[5.0, 13.5, 11.0, 15.0]]
heading_noise = 3.141592653589793
[pedestrians]
count = 0
"""


def test_the_scripted_route_round_a_box_keeps_the_disc_off_its_corners(tmp_path, monkeypatch):
    # the geodesic graph's corner nodes sit 0.7 m out along the corner's bisector, only 0.09 m
    # more than the robot's radius from either wall: driving node to node grazed the box
    (tmp_path / "boxtest.toml").write_text(BOX_SCENARIO)
    monkeypatch.setenv("ROBOSF_SCENARIO_PATH", f"{BENCH_DIR}:{tmp_path}")
    r = difficulty.measure("boxtest", "scripted_empty", 16, n_envs=8)
    assert r.success == 1.0 and r.collision == 0.0
