"""How hard a scenario is, by fixed controllers: ``python -m robosf_assets.bench.difficulty``.

For every scenario it plays fresh episodes (seeds from :data:`DIFFICULTY_SEED_BASE`, far
from every training, curve-evaluation and validation seed of ``training/train_config.py``) with
three controllers and prints success, collision and timeout rates with 95% Wilson
intervals:

- ``random``: a uniformly random policy, ``a ~ U[-1, 1]^2`` every step (numpy generator
  seeded 0), the scenario's crowd;
- ``scripted``: drives at the goal and ignores pedestrians (see :class:`ScriptedController`),
  the scenario's crowd;
- ``scripted_empty``: the same controller with ``n_peds=0``: whether the goal is reachable
  at all within the horizon;
- ``straight_empty`` (no target, shown with ``--controllers``): the same controller without
  waypoints, straight at the goal, in the empty arena: on a detour scenario it shows the trap;
- ``reactive`` (no target, shown with ``--controllers``): ``scripted`` with a LiDAR brake
  (:data:`REACTIVE_BRAKE`): it slows down as anything ahead comes close and never steers
  round it. It shows what a policy that only learnt to brake could reach, against the
  experts' bar (success >= 0.95, collision <= 0.03);
- ``scripted_slow`` (no target, shown with ``--controllers``): ``scripted`` at
  :data:`SLOW_FRACTION` of the robot's top speed, still blind to the crowd. It shows how much
  of a scenario's difficulty is speed alone: a crowd that steps out of a slow robot's way
  lets a policy that has only learnt to creep at the goal meet a bar early in training.

Targets (issue 10): random <= 2% success; scripted <= 50% with the crowd and >= 95% in the
empty arena. ``--out`` writes every number as JSON. Load the benchmark candidates with
``ROBOSF_SCENARIO_PATH=robosf_assets/sim/scenarios_benchmark``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from robosf_assets.envs import list_scenarios, make_vec_env
from robosf_assets.envs.rollout import run_episodes
from robosf_assets.envs.vec_env import RobotNavVecEnv
from robosf_assets.sim import geodesic as nav_graph
from robosf_assets.sim.scenario_checks import segment_distance
from robosf_assets.training.train_config import VALIDATION_SEED_BASE, VALIDATION_SEED_STRIDE

DIFFICULTY_SEED_BASE = 9 * 10**9
"""First episode seed of the difficulty episodes. Training worlds use ``[0, 10**6)``, curve
evaluations ``[10**6, 2 * 10**6)``, validation seed ``k`` uses ``2 * 10**6 + k * 10**5 + e``:
these seeds would be validation seed ~90,000's, which no profile uses."""

TARGETS = {"random": ("<=", 0.02), "scripted": ("<=", 0.50), "scripted_empty": (">=", 0.95)}
"""Success-rate targets per controller (issue 10 item 1)."""
CONTROLLERS = (*TARGETS, "straight_empty", "reactive", "scripted_slow")
"""Every controller; those without a target are for information."""

WAYPOINTS: dict[str, tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]] = {
    # (first route, second route): the scripted controller takes the route whose first
    # point is nearer its start, drives through the points in turn, then at the goal.
    # detour.toml's cup spans x 4..12, y 8.5..10; the gaps are x 0..4 and 12..16.
    "detour": (((2.0, 4.5), (2.0, 11.5)), ((14.0, 4.5), (14.0, 11.5))),
    # hallway.toml's cup spans x 11..12.5, y 3..6; the lanes beside it are y 0..3 and 6..9
    "hallway": (((9.5, 1.5), (14.0, 1.5)), ((9.5, 7.5), (14.0, 7.5))),
    # square.toml's fountain spans x 5.5..10.5, y 7..8.5
    "square": (((4.0, 6.0), (4.0, 9.5)), ((12.0, 6.0), (12.0, 9.5))),
}
"""Fixed paths round static obstacles, per scenario name (scenarios not listed follow the
shortest way round their walls, :class:`ScriptedController` ``geodesic``)."""

REACTIVE_BRAKE = (0.6, math.pi / 2)
"""The ``reactive`` controller's brake: (distance in m, half-angle in rad). Its speed is
capped at ``robot_max_speed * clear / distance``, with ``clear`` the shortest LiDAR range
within the half-angle of the heading less the robot's radius: it stops at contact and is
free at ``distance`` or more."""

SLOW_FRACTION = 0.5
"""The ``scripted_slow`` controller's speed, as a fraction of ``robot_max_speed`` (0.6 m/s on
the benchmark scenarios, the pace of the slowest walkers)."""

WAYPOINT_REACHED = 0.8
"""The scripted controller moves on to its next waypoint within this distance (m)."""


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (``(0, 1)`` for ``n = 0``)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def difficulty_seeds(n_episodes: int, offset: int = 0) -> list[int]:
    """``n_episodes`` fresh episode seeds from :data:`DIFFICULTY_SEED_BASE` + ``offset``."""
    start = DIFFICULTY_SEED_BASE + offset
    return list(range(start, start + n_episodes))


class RandomController:
    """Uniform random actions in ``[-1, 1]^2`` from a seeded numpy generator."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self._rng.uniform(-1.0, 1.0, (obs.shape[0], 2))


class ScriptedController:
    """Drives at the goal, blind to pedestrians; reads the robot's pose from the env's world.

    Each step, for the current target point (the next waypoint of :data:`WAYPOINTS` for the
    scenario, else the goal): bearing error ``e`` (rad) relative to the heading; angular
    command ``clip(2 e / w_max, -1, 1)`` (full turn rate beyond 0.5 rad); linear speed
    ``v_max * max(0, cos e)^2``, so it turns on the spot when facing away and drives flat out
    when aligned. A waypoint counts as passed within :data:`WAYPOINT_REACHED` m; the route
    (west or east) is picked at the episode start by which half of the arena the robot is in
    (``x`` below or above the middle of the route's two x coordinates). A scenario with
    interior walls and no fixed route follows the shortest way round the walls instead
    (``geodesic=True``): its target is the goal when no wall is in the way, else the
    visibility-graph node of :mod:`robosf_assets.sim.geodesic` (wall end points pushed out
    by the robot's radius + 0.3 m) that minimises distance to it plus the node's shortest
    distance to the goal, the same graph the geodesic progress reward uses. It never reacts
    to LiDAR or pedestrians, unless given ``brake`` (``(distance, half_angle)``, the
    ``reactive`` controller): then it caps its speed at ``v_max * clear / distance``, with
    ``clear`` the shortest range of the world's latest LiDAR scan (the one the observation
    holds) within ``half_angle`` of the heading, less the robot's radius.
    """

    def __init__(self, env: RobotNavVecEnv, waypoints: Sequence[Sequence[tuple[float, float]]] = (),
                 geodesic: bool = False, brake: tuple[float, float] | None = None,
                 speed_fraction: float = 1.0) -> None:
        if not 0 < speed_fraction <= 1:
            raise ValueError(f"speed_fraction must lie in (0, 1], got {speed_fraction}")
        self._env = env
        self._brake = brake
        if brake is not None:
            if brake[0] <= 0 or not 0 < brake[1] <= math.pi:
                raise ValueError(f"brake needs a distance > 0 and a half-angle in (0, pi], got {brake}")
            n_rays = env.world.n_rays
            # ray k points at heading + 2 pi k / n_rays (counter-clockwise from the heading)
            angles = np.arange(n_rays) * (2.0 * np.pi / n_rays)
            self._ahead = np.flatnonzero(np.abs(np.arctan2(np.sin(angles), np.cos(angles))) <= brake[1])
        self._routes = [np.asarray(r, dtype=np.float64).reshape(-1, 2) for r in waypoints]
        n = env.num_envs
        self._route = np.zeros(n, dtype=np.int64)
        self._next = np.zeros(n, dtype=np.int64)
        self._vmax = env.world.params.robot_max_speed
        self._speed = speed_fraction * self._vmax
        self._wmax = env.world.params.robot_max_angular
        self._walls = np.asarray(env.world.walls, dtype=np.float64)
        self._nodes = np.zeros((0, 2))
        if geodesic and not self._routes:
            rr = env.world.params.robot_radius
            # corner nodes sit on the bisector: sqrt(2) x the reward graph's clearance keeps the
            # disc GEODESIC_MARGIN off both walls of a right-angled corner, not 0.09 m
            self._nodes, self._edges = nav_graph.build_nav_graph(
                self._walls, math.sqrt(2.0) * (rr + nav_graph.GEODESIC_MARGIN), rr)
        self._node_dist = np.zeros((n, len(self._nodes)))

    def _start_episode(self, i: int) -> None:
        self._next[i] = 0
        if len(self._routes) >= 2:
            start = self._env.world.robot[i, :2]
            self._route[i] = int(np.argmin([math.hypot(*(r[0] - start)) for r in self._routes]))
        if len(self._nodes):
            gx, gy = self._env.world.robot_goal[i]
            nav_graph.node_goal_distances(float(gx), float(gy), self._nodes, self._edges, self._walls,
                                          self._node_dist[i])

    def _clear(self, ax: float, ay: float, bx: float, by: float) -> bool:
        """Whether the robot's disc (plus 0.1 m) can slide from a to b without touching a wall."""
        if nav_graph.segment_blocked(ax, ay, bx, by, self._walls):
            return False
        room = self._env.world.params.robot_radius + 0.1
        return all(segment_distance((ax, ay, bx, by), wall) >= room for wall in self._walls)

    def _geodesic_target(self, i: int, x: float, y: float, gx: float, gy: float) -> tuple[float, float]:
        if self._clear(x, y, gx, gy):
            return gx, gy
        # prefer nodes the disc can reach without grazing a wall; line of sight alone lets
        # the way to a corner node run along the wall it rounds
        for reachable in (self._clear, lambda ax, ay, bx, by: not nav_graph.segment_blocked(ax, ay, bx, by, self._walls)):
            best, target = math.inf, None
            for k, (nx, ny) in enumerate(self._nodes):
                if math.hypot(nx - x, ny - y) > 0.05 and reachable(x, y, float(nx), float(ny)):
                    d = math.hypot(nx - x, ny - y) + self._node_dist[i, k]
                    if d < best:
                        best, target = d, (float(nx), float(ny))
            if target is not None:
                return target
        return gx, gy

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        world = self._env.world
        actions = np.zeros((self._env.num_envs, 2))
        for i in range(self._env.num_envs):
            x, y, heading = world.robot[i, 0], world.robot[i, 1], world.robot[i, 2]
            if world.steps[i] == 0:
                self._start_episode(i)
            tx, ty = world.robot_goal[i]
            if self._routes:
                route = self._routes[self._route[i]]
                while self._next[i] < len(route) and math.hypot(*(route[self._next[i]] - (x, y))) < WAYPOINT_REACHED:
                    self._next[i] += 1
                if self._next[i] < len(route):
                    tx, ty = route[self._next[i]]
            elif len(self._nodes):
                tx, ty = self._geodesic_target(i, x, y, float(tx), float(ty))
            err = math.atan2(ty - y, tx - x) - heading
            err = math.atan2(math.sin(err), math.cos(err))
            w = max(-self._wmax, min(self._wmax, 2.0 * err))
            v = self._speed * max(0.0, math.cos(err)) ** 2
            if self._brake is not None:
                clear = float(world.lidar[i, self._ahead].min()) - world.params.robot_radius
                v = min(v, self._vmax * max(0.0, clear) / self._brake[0])
            actions[i, 0] = 2.0 * v / self._vmax - 1.0
            actions[i, 1] = w / self._wmax
        return actions


@dataclass(frozen=True)
class Rates:
    """Outcome rates of one controller on one scenario, with 95% Wilson intervals."""

    scenario: str
    controller: str
    episodes: int
    success: float
    success_ci: tuple[float, float]
    collision: float
    collision_ci: tuple[float, float]
    timeout: float
    mean_steps_success: float | None
    target: str
    target_met: bool
    seconds: float


def _rates(scenario: str, controller: str, episodes: list, seconds: float) -> Rates:
    n = len(episodes)
    succ = sum(bool(e.metrics["success"]) for e in episodes)
    coll = sum(bool(e.metrics["collision"]) for e in episodes)
    tout = sum(bool(e.metrics["timeout"]) for e in episodes)
    steps = [e.metrics["steps"] for e in episodes if e.metrics["success"]]
    rate = succ / n
    if controller in TARGETS:
        op, bar = TARGETS[controller]
        met = rate <= bar if op == "<=" else rate >= bar
        target = f"success {op} {bar:.2f}"
    else:
        met, target = True, "-"
    return Rates(
        scenario=scenario,
        controller=controller,
        episodes=n,
        success=rate,
        success_ci=wilson_interval(succ, n),
        collision=coll / n,
        collision_ci=wilson_interval(coll, n),
        timeout=tout / n,
        mean_steps_success=float(np.mean(steps)) if steps else None,
        target=target,
        target_met=met,
        seconds=round(seconds, 2),
    )


def measure(
    scenario: str,
    controller: str,
    n_episodes: int,
    n_envs: int = 16,
    **overrides: Any,
) -> Rates:
    """Play ``n_episodes`` fresh episodes of ``scenario`` with ``controller`` (one of :data:`CONTROLLERS`)."""
    if controller not in CONTROLLERS:
        raise ValueError(f"unknown controller {controller!r}; choose one of {list(CONTROLLERS)}")
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    if controller.endswith("_empty"):
        overrides = {**overrides, "n_peds": 0}
    env = make_vec_env(scenario, min(n_envs, n_episodes), 0, **overrides)
    if controller == "random":
        policy = RandomController(0)
    else:
        straight = controller == "straight_empty"
        waypoints = () if straight else WAYPOINTS.get(scenario, ())
        policy = ScriptedController(env, waypoints, geodesic=not straight,
                                    brake=REACTIVE_BRAKE if controller == "reactive" else None,
                                    speed_fraction=SLOW_FRACTION if controller == "scripted_slow" else 1.0)
    started = time.perf_counter()
    episodes = run_episodes(env, policy, difficulty_seeds(n_episodes))
    return _rates(scenario, controller, episodes, time.perf_counter() - started)


def _fmt(r: Rates) -> str:
    lo, hi = r.success_ci
    clo, chi = r.collision_ci
    steps = f"{r.mean_steps_success:.0f}" if r.mean_steps_success is not None else "-"
    return (
        f"| {r.scenario} | {r.controller} | {r.episodes} | {r.success:.3f} [{lo:.3f}, {hi:.3f}] | "
        f"{r.collision:.3f} [{clo:.3f}, {chi:.3f}] | {r.timeout:.3f} | {steps} | {r.target} | "
        f"{('yes' if r.target_met else 'NO') if r.target != '-' else '-'} |"
    )


def _parse_value(text: str) -> int | float | bool | str:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robosf_assets.bench.difficulty", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=None, help="scenario names (default: every registered one)")
    parser.add_argument("--episodes", type=int, default=200, help="episodes per scenario and controller")
    parser.add_argument("--controllers", nargs="+", default=list(TARGETS), choices=list(CONTROLLERS))
    parser.add_argument("--n-envs", type=int, default=16, help="worlds stepped together")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="env override for every scenario (SimParams or EnvConfig field), repeatable")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects NAME=VALUE, got {item!r}")
        overrides[name] = _parse_value(value)
    scenarios = args.scenarios or list_scenarios()
    print(f"difficulty: {args.episodes} fresh episodes per cell, seeds from {DIFFICULTY_SEED_BASE:,}; 95% Wilson CIs")
    print("| scenario | controller | episodes | success [95% CI] | collision [95% CI] | timeout | mean steps (success) | target | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    for sc in scenarios:
        for ctrl in args.controllers:
            r = measure(sc, ctrl, args.episodes, n_envs=args.n_envs, **overrides)
            results.append(r)
            print(_fmt(r), flush=True)
    if args.out:
        from robosf_assets.artifacts import atomic_write_json

        atomic_write_json(
            args.out,
            {"episodes": args.episodes, "seed_base": DIFFICULTY_SEED_BASE, "overrides": overrides,
             "command": "python -m robosf_assets.bench.difficulty " + " ".join(argv if argv is not None else sys.argv[1:]),
             "results": [asdict(r) for r in results]},
            overwrite=True,
        )
        print(f"wrote {args.out}")
    return 0


assert DIFFICULTY_SEED_BASE > VALIDATION_SEED_BASE + 1000 * VALIDATION_SEED_STRIDE  # far from any profile's seeds

if __name__ == "__main__":
    raise SystemExit(main())
