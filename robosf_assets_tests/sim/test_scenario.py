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
    assert names[:3] == ["crossing", "corridor", "bottleneck"]
    walls = {n: get_scenario(n).walls for n in names[:3]}
    assert len(set(walls.values())) == 3
    for n in names[:3]:
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
