"""Geodesic progress reward (``SimParams.reward_progress_geodesic``, ``sim/geodesic.py``)."""

import math
from pathlib import Path

import numpy as np
import pytest

from robosf_assets.bench.difficulty import WAYPOINTS
from robosf_assets.sim import geodesic, kernels
from robosf_assets.sim.params import SimParams
from robosf_assets.sim.scenario import Scenario, load_scenario_file
from robosf_assets.sim.world import BatchedWorld


def _detour() -> Scenario:
    """detour.toml, a built-in scenario or still a benchmark candidate."""
    here = Path(kernels.__file__).parent
    for folder in ("scenarios", "scenarios_benchmark"):
        if (here / folder / "detour.toml").exists():
            return load_scenario_file(here / folder / "detour.toml")
    raise FileNotFoundError("detour.toml")


DETOUR = _detour()
RR = SimParams().robot_radius
CLEARANCE = RR + geodesic.GEODESIC_MARGIN
BOX = [(0.0, 0.0, 20.0, 0.0), (20.0, 0.0, 20.0, 20.0), (20.0, 20.0, 0.0, 20.0), (0.0, 20.0, 0.0, 0.0)]


def _graph(walls):
    walls = np.array(walls, dtype=np.float64)
    nodes, edges = geodesic.build_nav_graph(walls, CLEARANCE, RR)
    return walls, nodes, edges


def _box_scenario(walls, start, goal, horizon=300):
    return Scenario(
        name="box", description="", horizon=horizon, walls=tuple(walls), robot_start=((*start, *start),),
        robot_goal=((*goal, *goal),), min_goal_distance=0.0, heading_noise=0.0, ped_count=0,
        ped_speed=(0.5, 0.5), flows=(),
    )


def test_without_interior_walls_the_geodesic_distance_is_the_euclidean_one():
    walls, nodes, edges = _graph(BOX)
    assert len(nodes) == 0  # the arena's corners push their nodes outside it
    rng = np.random.default_rng(0)
    for p, g in zip(rng.uniform(0.5, 19.5, (200, 2)), rng.uniform(0.5, 19.5, (200, 2)), strict=True):
        assert geodesic.geodesic_distance(walls, nodes, edges, p, g) == pytest.approx(math.hypot(*(p - g)), rel=1e-15)
    # and the world's rewards are the Euclidean world's bytes
    sc = _box_scenario(BOX, (2.0, 3.0), (17.0, 15.0))
    worlds = [BatchedWorld(sc, 1, [0], params=SimParams(reward_progress_geodesic=g)) for g in (0.0, 1.0)]
    rewards = [[], []]
    for k, w in enumerate(worlds):
        w.reset()
        for a in np.random.default_rng(1).uniform(-1, 1, (150, 2)):
            w.step(a[None])
            rewards[k].append(w.reward[0])
            if w.status[0] != kernels.RUNNING:
                break
    assert np.array(rewards[0]).tobytes() == np.array(rewards[1]).tobytes()


def test_round_a_single_wall_it_is_the_detour_via_the_offset_end_point():
    walls, nodes, edges = _graph([*BOX, (10.0, 5.0, 10.0, 15.0)])
    # one node beyond each end of the wall, clearance along the wall
    assert sorted(map(tuple, nodes.round(12))) == [(10.0, 5.0 - CLEARANCE), (10.0, 15.0 + CLEARANCE)]
    start, goal = (5.0, 10.0), (15.0, 10.0)
    d = geodesic.geodesic_distance(walls, nodes, edges, start, goal)
    assert d == pytest.approx(2.0 * math.hypot(5.0, 5.0 + CLEARANCE), rel=1e-12)
    # between the true (point-robot) detour via the wall end and that plus the offset both ways
    assert 2.0 * math.hypot(5.0, 5.0) < d < 2.0 * math.hypot(5.0, 5.0) + 2.0 * CLEARANCE
    # off-centre: the shorter side wins; a visible goal is the straight line
    d_low = geodesic.geodesic_distance(walls, nodes, edges, (5.0, 7.0), (15.0, 7.0))
    assert d_low == pytest.approx(2.0 * math.hypot(5.0, 2.0 + CLEARANCE), rel=1e-12)
    assert geodesic.geodesic_distance(walls, nodes, edges, (5.0, 2.0), (15.0, 3.0)) == pytest.approx(math.hypot(10.0, 1.0),
                                                                                                  rel=1e-15)


def test_a_wall_collinear_with_the_line_of_sight_blocks_it():
    walls = np.array([(4.0, 8.5, 4.0, 10.0)])
    assert geodesic.segment_blocked(4.0, 5.0, 4.0, 13.0, walls)  # along the wall
    assert geodesic.segment_blocked(3.0, 9.0, 5.0, 9.0, walls)  # across it
    assert not geodesic.segment_blocked(4.0, 5.0, 4.0, 8.0, walls)  # short of its end
    assert not geodesic.segment_blocked(3.0, 7.0, 6.0, 8.0, walls)


def _route(start, waypoints, goal, step=0.01):
    """Points every ``step`` m along start -> waypoints -> goal."""
    corners = np.array([start, *waypoints, goal], dtype=np.float64)
    points = []
    for a, b in zip(corners[:-1], corners[1:], strict=True):
        n = max(1, int(math.ceil(np.linalg.norm(b - a) / step)))
        points += [a + (b - a) * t for t in np.arange(n) / n]
    return np.array(points)


@pytest.mark.parametrize("side", [0, 1])
def test_on_detour_the_geodesic_potential_falls_all_along_the_scripted_route_and_the_euclidean_does_not(side):
    walls, nodes, edges = _graph(DETOUR.walls)
    start, goal = ((8.5, 2.0), (7.5, 13.0)) if side == 0 else ((7.5, 2.0), (8.5, 13.0))
    route = _route(start, WAYPOINTS["detour"][side], goal)
    goal_radius = DETOUR.sim_params().goal_radius
    route = route[np.hypot(*(route - goal).T) > goal_radius + 0.1]
    geo = np.array([geodesic.geodesic_distance(walls, nodes, edges, p, goal) for p in route])
    euclid = np.hypot(*(route - goal).T)
    assert np.all(np.diff(geo) < 0.0), f"geodesic rises at {route[1:][np.diff(geo) >= 0][:3]}"
    assert np.any(np.diff(euclid) > 0.0)
    assert np.all(geo >= euclid - 1e-12)


def test_on_detour_the_bottom_of_the_cup_is_no_local_minimum_of_the_geodesic_potential():
    walls, nodes, edges = _graph(DETOUR.walls)
    goal = (8.0, 13.0)
    pit = np.array([8.0, 10.0 - RR - 0.01])  # under the cup's bar, about as close to the goal as the robot gets
    angles = np.linspace(0.0, 2.0 * np.pi, 72, endpoint=False)
    ring = pit + 0.2 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    free = ring[:, 1] <= pit[1] + 1e-9  # the neighbours the robot can stand on (and a little more)
    euclid = np.hypot(*(ring[free] - goal).T)
    assert euclid.min() > math.hypot(*(pit - goal))  # the Euclidean potential's trap
    geo_pit = geodesic.geodesic_distance(walls, nodes, edges, pit, goal)
    geo = [geodesic.geodesic_distance(walls, nodes, edges, q, goal) for q in ring[free]]
    assert min(geo) < geo_pit - 0.1  # somewhere downhill: out of the cup


def _drive(world, waypoints, max_steps):
    """Pure pursuit through ``waypoints`` then at the goal; returns the per-step rewards."""
    rewards = []
    k = 0
    for _ in range(max_steps):
        x, y, heading = world.robot[0, :3]
        while k < len(waypoints) and math.hypot(waypoints[k][0] - x, waypoints[k][1] - y) < 0.8:
            k += 1
        tx, ty = waypoints[k] if k < len(waypoints) else world.robot_goal[0]
        err = math.atan2(ty - y, tx - x) - heading
        err = math.atan2(math.sin(err), math.cos(err))
        world.step(np.array([[2.0 * max(0.0, math.cos(err)) ** 2 - 1.0, max(-1.0, min(1.0, 2.0 * err))]]))
        rewards.append(world.reward[0])
        if world.status[0] != kernels.RUNNING:
            break
    return np.array(rewards)


def _detour_world(**changes):
    params = DETOUR.sim_params().replace(reward_progress_geodesic=1.0, **changes)
    world = BatchedWorld(DETOUR, 1, [3], params=params, n_peds=0)
    world.reset()
    return world, params


def test_the_geodesic_progress_reward_sums_to_the_geodesic_distance_made_good():
    world, p = _detour_world()
    start, goal = world.robot[0, :2].copy(), world.robot_goal[0].copy()
    d0 = geodesic.geodesic_distance(world.walls, world.nav_nodes, world.nav_edges, start, goal)
    assert world.metrics[0, kernels.M_PREV_DIST] == d0 == world.metrics[0, kernels.M_START_PROG]
    # the metrics' start distance stays the straight line
    assert world.metrics[0, kernels.M_START_DIST] == pytest.approx(math.hypot(*(goal - start)), rel=1e-15)
    assert d0 > math.hypot(*(goal - start)) + 1.0  # the cup is in the way
    side = 0 if start[0] < 8.0 else 1
    rewards = _drive(world, WAYPOINTS["detour"][side], int(p.horizon))
    assert world.status[0] == kernels.GOAL
    d_end = geodesic.geodesic_distance(world.walls, world.nav_nodes, world.nav_edges, world.robot[0, :2], goal)
    assert world.progress_distance[0] == d_end
    steps = len(rewards)
    expected = p.reward_progress * (d0 - d_end) - p.reward_time * steps + p.reward_goal
    assert rewards.sum() == pytest.approx(expected, abs=1e-9)
    assert world.metrics[0, kernels.M_RETURN] == pytest.approx(expected, abs=1e-9)


def test_with_the_full_forfeit_driving_into_the_cup_returns_minus_the_collision_and_time_costs():
    world, p = _detour_world(reward_collision_forfeit=1.0)
    world.robot_goal[0] = (8.0, 13.0)
    rewards = _drive(world, [(8.0, 9.0), (8.0, 11.0)], int(p.horizon))  # straight into the bar
    assert world.status[0] == kernels.COLLISION_WALL
    assert rewards.sum() == pytest.approx(-p.reward_collision - p.reward_time * len(rewards), abs=1e-9)


def test_geodesic_worlds_are_deterministic_and_the_threaded_kernel_gives_the_serial_bytes():
    params = DETOUR.sim_params().replace(reward_progress_geodesic=1.0)
    out = []
    for parallel in (False, True):
        w = BatchedWorld(DETOUR, 8, list(range(8)), params=params, parallel=parallel)
        w.reset()
        rng = np.random.default_rng(0)
        frames = []
        for _ in range(150):
            w.step(rng.uniform(-1, 1, (8, 2)))
            frames.append(np.concatenate([w.obs.ravel().view(np.uint8), w.reward.view(np.uint8),
                                          w.nav_dist.ravel().view(np.uint8)]))
            done = w.status != kernels.RUNNING
            if done.any():
                w.reset(done)
        out.append(np.concatenate(frames).tobytes())
    assert out[0] == out[1]


def test_reward_progress_geodesic_must_be_zero_or_one():
    with pytest.raises(ValueError, match="reward_progress_geodesic"):
        SimParams(reward_progress_geodesic=0.5)
