"""The social force kernels against PySocialForce 1.1.2, the field's reference implementation."""

import logging
import os

import numpy as np
import pytest

from robosf_assets.sim import forces
from robosf_assets.sim.params import SimParams

P = SimParams()
RTOL = 1e-6


@pytest.fixture(scope="module")
def psf(tmp_path_factory):
    """Import PySocialForce without its side effects (root logger at DEBUG, ./file.log)."""
    cwd = os.getcwd()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    os.chdir(tmp_path_factory.mktemp("psf"))
    try:
        import pysocialforce
    finally:
        os.chdir(cwd)
        root.setLevel(level)
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
    return pysocialforce


def random_scene(rng, n):
    pos = rng.uniform(0, 8, (n, 2))
    vel = rng.normal(0, 0.7, (n, 2))
    goal = rng.uniform(-5, 13, (n, 2))
    return pos, vel, goal


def psf_sim(psf, pos, vel, goal, obstacles=None, config_file=None):
    state = np.concatenate([pos, vel, goal], axis=1)
    return psf.Simulator(state.copy(), obstacles=obstacles, config_file=config_file)


@pytest.mark.parametrize("seed", range(10))
def test_desired_and_social_force_match_pysocialforce(psf, seed):
    rng = np.random.default_rng(seed)
    pos, vel, goal = random_scene(rng, int(rng.integers(2, 12)))
    goal[0] = pos[0] + 0.05  # one pedestrian inside the goal threshold
    sim = psf_sim(psf, pos, vel, goal)
    ref_desired = sim.forces[0].get_force()
    ref_social = sim.forces[1].get_force()

    max_speed = P.max_speed_multiplier * np.linalg.norm(vel, axis=1)
    out = np.zeros_like(pos)
    forces.desired_force(pos, vel, goal, max_speed, P.relaxation_time, P.goal_threshold, P.desired_factor, out)
    np.testing.assert_allclose(out, ref_desired, rtol=RTOL, atol=1e-12)
    forces.social_force(pos, vel, P.lambda_importance, P.gamma, P.n, P.n_prime, P.social_factor, out)
    np.testing.assert_allclose(out, ref_social, rtol=RTOL, atol=1e-12)
    assert np.abs(ref_social).max() > 1e-3, "scene too sparse to test anything"


@pytest.mark.parametrize("seed", range(5))
def test_obstacle_force_matches_pysocialforce_for_point_obstacles(psf, seed):
    """PySocialForce samples walls into points; a zero-length segment is exactly such a point."""
    rng = np.random.default_rng(100 + seed)
    pos, vel, goal = random_scene(rng, 8)
    points = rng.uniform(0, 8, (15, 2))
    # a line of length 0.15 at resolution 10 samples to exactly its start point
    lines = [(x, x + 0.15, y, y) for x, y in points]
    sim = psf_sim(psf, pos, vel, goal, obstacles=lines)
    np.testing.assert_allclose(np.vstack(sim.get_obstacles()), points)
    ref = sim.forces[2].get_force()

    walls = np.array([[x, y, x, y] for x, y in points])
    out = np.zeros_like(pos)
    forces.obstacle_force(pos, walls, P.ped_radius, P.obstacle_sigma, P.obstacle_threshold, P.obstacle_factor, out)
    np.testing.assert_allclose(out, ref, rtol=RTOL, atol=1e-12)
    assert np.abs(ref).max() > 1e-3


def test_obstacle_force_of_a_segment_is_the_force_of_its_closest_point():
    pos = np.array([[1.0, 0.6], [5.0, -0.5], [-0.7, 0.0]])
    walls = np.array([[0.0, 0.0, 4.0, 0.0]])
    closest = np.array([[1.0, 0.0, 1.0, 0.0], [4.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out_seg = np.zeros_like(pos)
    forces.obstacle_force(pos, walls, 0.35, 0.2, 3.0, 10.0, out_seg)
    for i in range(3):
        out_pt = np.zeros((1, 2))
        forces.obstacle_force(pos[i : i + 1], closest[i : i + 1], 0.35, 0.2, 3.0, 10.0, out_pt)
        np.testing.assert_allclose(out_seg[i], out_pt[0])
    assert out_seg[0, 1] > 0 and out_seg[0, 0] == pytest.approx(0.0)  # pushed away from the wall


@pytest.mark.parametrize("seed", range(5))
def test_one_integration_step_matches_pysocialforce(psf, seed, tmp_path):
    config = tmp_path / "psf.toml"
    # PedState reads step_width from the top level of the config (not from [scene]).
    config.write_text(
        "step_width = 0.1\n"
        "[scene]\nenable_group = false\nagent_radius = 0.35\nstep_width = 0.1\nmax_speed_multiplier = 1.3\n"
        "tau = 0.5\nresolution = 10\n"
        "[desired_force]\nfactor = 1.0\nrelaxation_time = 0.5\ngoal_threshold = 0.2\n"
        "[social_force]\nfactor = 5.1\nlambda_importance = 2.0\ngamma = 0.35\nn = 2\nn_prime = 3\n"
        "[obstacle_force]\nfactor = 10.0\nsigma = 0.2\nthreshold = 3.0\n"
    )
    rng = np.random.default_rng(200 + seed)
    pos, vel, goal = random_scene(rng, 10)
    goal[1] = pos[1] + 0.3  # inside the 0.5 m stop distance
    points = rng.uniform(0, 8, (6, 2))
    sim = psf_sim(psf, pos, vel, goal, obstacles=[(x, x + 0.15, y, y) for x, y in points], config_file=str(config))
    sim.step()
    ref = sim.peds.state

    max_speed = P.max_speed_multiplier * np.linalg.norm(vel, axis=1)
    walls = np.array([[x, y, x, y] for x, y in points])
    total = np.zeros_like(pos)
    part = np.zeros_like(pos)
    forces.desired_force(pos, vel, goal, max_speed, 0.5, 0.2, 1.0, total)
    forces.social_force(pos, vel, 2.0, 0.35, 2.0, 3.0, 5.1, part)
    total += part
    forces.obstacle_force(pos, walls, 0.35, 0.2, 3.0, 10.0, part)
    total += part
    p, v = pos.copy(), vel.copy()
    forces.integrate_peds(p, v, goal, max_speed, total, 0.1, P.ped_stop_distance)
    np.testing.assert_allclose(p, ref[:, 0:2], rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(v, ref[:, 2:4], rtol=RTOL, atol=1e-12)
    assert np.all(v[1] == 0.0)


def test_robot_disc_repulsion_pushes_away_with_the_obstacle_force_profile():
    pos = np.array([[1.0, 0.0], [0.0, -2.0], [10.0, 0.0]])
    out = np.ones_like(pos)  # the push is added to what is there
    forces.disc_repulsion(pos, 0.0, 0.0, 0.75, 0.2, 3.0, 5.0, out)
    assert out[0] == pytest.approx([1.0 + 5.0 * np.exp(-0.25 / 0.2), 1.0])
    assert out[1] == pytest.approx([1.0, 1.0 - 5.0 * np.exp(-1.25 / 0.2)])
    assert out[2] == pytest.approx([1.0, 1.0])  # beyond the 3 m threshold
