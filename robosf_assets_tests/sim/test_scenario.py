import pytest

from robosf_assets.sim.scenario import (
    ScenarioError,
    get_scenario,
    list_scenarios,
    load_scenario_file,
)

USER_SCENARIO = """
name = "plaza-small"
description = "a user scenario"
horizon = 120
walls = [[0, 0, 10, 0], [10, 0, 10, 10], [10, 10, 0, 10], [0, 10, 0, 0]]
[robot]
start = [[1, 1, 2, 2]]
goal = [[8, 8, 9, 9]]
[pedestrians]
count = 3
speed = [0.5, 0.8]
[[pedestrians.flows]]
source = [1, 8, 2, 9]
target = [8, 1, 9, 2]
"""


def test_defaults_are_registered_with_distinct_geometry():
    names = list_scenarios()
    assert names[:3] == ["hallway", "square", "detour"]
    assert {"crossing", "corridor", "bottleneck"} <= set(names[3:])  # the easy variants stay
    walls = {n: get_scenario(n).walls for n in names[:3]}
    assert len(set(walls.values())) == 3
    for n in names:
        sc = get_scenario(n)
        assert sc.ped_count > 0 and sc.flows and sc.horizon > 0


def test_a_user_scenario_file_is_picked_up_without_code(tmp_path, monkeypatch):
    (tmp_path / "plaza.toml").write_text(USER_SCENARIO)
    monkeypatch.setenv("ROBOSF_SCENARIO_PATH", str(tmp_path))
    assert "plaza-small" in list_scenarios()
    from robosf_assets.envs import make_robot_env

    env = make_robot_env("plaza-small", 0)
    obs, _ = env.reset()
    assert obs.shape == env.observation_space.shape
    assert env.world.n_peds == 3


@pytest.mark.parametrize(
    "bad, message",
    [
        (USER_SCENARIO.replace("horizon = 120", ""), "missing required field 'horizon'"),
        (USER_SCENARIO.replace("start = [[1, 1, 2, 2]]", "start = [[3, 1, 2, 2]]"), "robot.start"),
        (USER_SCENARIO.replace("[[pedestrians.flows]]", "[[other]]"), "at least one [[pedestrians.flows]]"),
        ("name = [", "not valid TOML"),
    ],
)
def test_bad_scenario_files_name_the_problem(tmp_path, bad, message):
    f = tmp_path / "bad.toml"
    f.write_text(bad)
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_scenario_file(f)


def test_unknown_scenario_lists_the_known_ones():
    with pytest.raises(ScenarioError, match="crossing"):
        get_scenario("nowhere")


def test_scenario_params_apply_and_explicit_overrides_win(tmp_path, monkeypatch):
    (tmp_path / "plaza.toml").write_text(USER_SCENARIO + "\n[params]\nrobot_repulsion_factor = 2.5\nreward_goal = 7.0\n")
    monkeypatch.setenv("ROBOSF_SCENARIO_PATH", str(tmp_path))
    from robosf_assets.envs import make_robot_env, make_vec_env

    p = make_robot_env("plaza-small", 0).world.params
    assert (p.robot_repulsion_factor, p.reward_goal) == (2.5, 7.0)
    p = make_vec_env("plaza-small", 2, 0, reward_goal=3.0).world.params
    assert (p.robot_repulsion_factor, p.reward_goal) == (2.5, 3.0)


def test_unknown_scenario_param_is_named(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(USER_SCENARIO + "\n[params]\nrobot_speed = 3.0\n")
    with pytest.raises(ScenarioError, match="robot_speed"):
        load_scenario_file(f)


def test_fingerprint_changes_with_the_scenario_not_with_its_file(tmp_path):
    a = tmp_path / "a" / "plaza.toml"
    b = tmp_path / "b" / "plaza.toml"
    c = tmp_path / "c" / "plaza.toml"
    for path, text in ((a, USER_SCENARIO), (b, USER_SCENARIO), (c, USER_SCENARIO.replace("count = 3", "count = 4"))):
        path.parent.mkdir()
        path.write_text(text)
    fa, fb, fc = (load_scenario_file(p).fingerprint() for p in (a, b, c))
    assert fa == fb and fa != fc and len(fa) == 64
    with_params = tmp_path / "d.toml"
    with_params.write_text(USER_SCENARIO + "\n[params]\nped_start_clearance = 3.0\n")
    assert load_scenario_file(with_params).fingerprint() != fa


# ---- geometry checked at load (issue 13 item 8) ---------------------------------------------

DIVIDED = USER_SCENARIO.replace(
    "walls = [[0, 0, 10, 0], [10, 0, 10, 10], [10, 10, 0, 10], [0, 10, 0, 0]]",
    "walls = [[0, 0, 10, 0], [10, 0, 10, 10], [10, 10, 0, 10], [0, 10, 0, 0], [5, 0, 5, 10]]",
)


@pytest.mark.parametrize(
    "bad, message",
    [
        # a goal inside a wall / outside the arena, a start on a wall
        (USER_SCENARIO.replace("goal = [[8, 8, 9, 9]]", "goal = [[9.5, 8, 10.5, 9]]"),
         "robot.goal[0] [9.5, 8, 10.5, 9] is not inside the arena [0, 0, 10, 10]"),
        (USER_SCENARIO.replace("goal = [[8, 8, 9, 9]]", "goal = [[8, 11, 9, 12]]"), "robot.goal[0]"),
        (USER_SCENARIO.replace("start = [[1, 1, 2, 2]]", "start = [[0.2, 1, 2, 2]]"),
         "robot.start[0] [0.2, 1, 2, 2] comes within 0.20 m of walls[3] [0, 10, 0, 0]; the robot (radius 0.4 m)"),
        (USER_SCENARIO + "\n[params]\nrobot_radius = 1.5\n", "robot.start[0] [1, 1, 2, 2] comes within 1.00 m"),
        # pedestrians: a source outside, a via on a wall, a target behind a wall
        (USER_SCENARIO.replace("source = [1, 8, 2, 9]", "source = [-3, 8, -2, 9]"),
         "pedestrians.flows[0].source [-3, 8, -2, 9] is not inside the arena"),
        (USER_SCENARIO.replace("target = [8, 1, 9, 2]", "target = [8, 1, 9, 2]\nvia = [[5, 9.9]]"),
         "pedestrians.flows[0].via[0] [5, 9.9] comes within 0.10 m of walls[2]"),
        (DIVIDED.replace("goal = [[8, 8, 9, 9]]", "goal = [[3, 8, 4, 9]]"),
         "pedestrians.flows[0].target [8, 1, 9, 2] cannot be reached from pedestrians.flows[0].source"),
        (DIVIDED, "robot.goal[0] [8, 8, 9, 9] cannot be reached from robot.start[0] [1, 1, 2, 2]"),
        (USER_SCENARIO.replace("goal = [[8, 8, 9, 9]]", "goal = [[8, 8, 9, 9]]\nmin_goal_distance = 20"),
         "robot.min_goal_distance 20 m is more than the largest start-goal distance"),
    ],
)
def test_impossible_geometry_is_refused_naming_file_and_field(tmp_path, bad, message):
    f = tmp_path / "bad.toml"
    f.write_text(bad)
    with pytest.raises(ScenarioError) as err:
        load_scenario_file(f)
    assert str(f) in str(err.value) and message in str(err.value), str(err.value)


def test_a_gap_the_robot_fits_through_is_reachable(tmp_path):
    # the dividing wall leaves a 1.2 m door at y 4.4..5.6: wide enough for 0.8 m of robot
    door = DIVIDED.replace("[5, 0, 5, 10]]", "[5, 0, 5, 4.4], [5, 5.6, 5, 10]]")
    f = tmp_path / "door.toml"
    f.write_text(door)
    assert load_scenario_file(f).name == "plaza-small"
    f.write_text(door + "\n[params]\nrobot_radius = 0.7\n")  # 1.4 m of robot: no way through
    with pytest.raises(ScenarioError, match="robot.goal.0. .* cannot be reached"):
        load_scenario_file(f)


def test_the_scenario_files_shipped_pass_the_geometry_checks():
    from pathlib import Path

    import robosf_assets.sim as sim

    dirs = [Path(sim.__file__).parent / d for d in ("scenarios", "scenarios_benchmark")]
    files = [f for d in dirs if d.is_dir() for f in sorted(d.glob("*.toml"))]
    assert len(files) >= 3
    for f in files:
        load_scenario_file(f)


# ---- a broken file is that file's error (issue 13 item 5) ------------------------------------


def test_a_broken_file_is_reported_and_the_other_scenarios_keep_working(tmp_path, monkeypatch):
    from robosf_assets.sim.scenario import scenario_load_errors

    (tmp_path / "plaza.toml").write_text(USER_SCENARIO)
    (tmp_path / "broken.toml").write_text("name = [")  # a TOML syntax error
    (tmp_path / "walled.toml").write_text(
        USER_SCENARIO.replace('"plaza-small"', '"walled"').replace("goal = [[8, 8, 9, 9]]", "goal = [[9.5, 8, 10.5, 9]]"))
    monkeypatch.setenv("ROBOSF_SCENARIO_PATH", str(tmp_path))
    assert list_scenarios() == ["hallway", "square", "detour", "bottleneck", "corridor", "crossing", "plaza-small"]
    errors = {e.path.rsplit("/", 1)[-1]: e for e in scenario_load_errors()}
    assert sorted(errors) == ["broken.toml", "walled.toml"]
    assert "not valid TOML" in errors["broken.toml"].message and errors["walled.toml"].name == "walled"
    with pytest.raises(ScenarioError, match="'walled' cannot be loaded: .*walled.toml: robot.goal.0."):
        get_scenario("walled")
    with pytest.raises(ScenarioError, match="'broken' cannot be loaded: .*not valid TOML"):
        get_scenario("broken")
    assert get_scenario("plaza-small").horizon == 120
    # a broken override of a built-in hides the built-in instead of silently using it
    (tmp_path / "crossing.toml").write_text(USER_SCENARIO.replace('"plaza-small"', '"crossing"').replace(
        "horizon = 120", "horizon = -1"))
    assert "crossing" not in list_scenarios()
    with pytest.raises(ScenarioError, match="horizon must be a positive"):
        get_scenario("crossing")


def test_the_dagster_definitions_load_with_a_broken_scenario_file(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "broken.toml").write_text("name = [")
    (tmp_path / "plaza.toml").write_text(USER_SCENARIO)
    env = {**os.environ, "ROBOSF_SCENARIO_PATH": str(tmp_path)}
    code = ("from robosf_assets.defs.partitions import scenario_partitions, SCENARIO_LOAD_ERRORS as e; "
            "print(scenario_partitions.get_partition_keys(), [x.path for x in e])")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "['hallway', 'square', 'detour', 'bottleneck', 'corridor', 'crossing', 'plaza-small']" in proc.stdout
    assert "broken.toml" in proc.stdout and "broken.toml" in proc.stderr  # listed and logged as a warning


def test_a_config_naming_a_broken_scenario_gets_the_files_error(tmp_path, monkeypatch):
    from robosf_assets.training.train_config import TrainConfig

    (tmp_path / "walled.toml").write_text(
        USER_SCENARIO.replace('"plaza-small"', '"walled"').replace("goal = [[8, 8, 9, 9]]", "goal = [[9.5, 8, 10.5, 9]]"))
    monkeypatch.setenv("ROBOSF_SCENARIO_PATH", str(tmp_path))
    with pytest.raises(ValueError, match=r"'walled' cannot be loaded: .*walled.toml: robot.goal\[0\] .* not inside"):
        TrainConfig(scenario="walled")
