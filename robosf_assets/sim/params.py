"""Physical and reward parameters of the simulator.

Every constant lives in :class:`SimParams` with its unit. The numba kernels take the
values as one float64 vector (``SimParams.to_array``) whose layout is given by
``PARAM_INDEX``, so the kernels compile once and every parameter stays configurable.
The social force defaults are PySocialForce 1.1.2's (``config/default.toml``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SimParams:
    """Simulator constants (SI units: m, s, rad)."""

    dt: float = 0.1
    """Time step (s)."""

    # --- robot: differential drive -------------------------------------------------
    robot_radius: float = 0.4
    """Robot radius (m)."""
    robot_max_speed: float = 2.0
    """Linear speed range is [0, robot_max_speed] (m/s); no reversing."""
    robot_max_angular: float = 1.0
    """Angular speed range is [-robot_max_angular, robot_max_angular] (rad/s)."""
    robot_max_accel: float = 2.0
    """Linear acceleration limit (m/s^2)."""
    robot_max_angular_accel: float = 4.0
    """Angular acceleration limit (rad/s^2)."""
    goal_radius: float = 1.0
    """The goal is reached when the robot centre is within this distance (m)."""

    # --- lidar ---------------------------------------------------------------------
    lidar_range: float = 10.0
    """Maximum LiDAR range (m); rays over 360 degrees starting at the robot heading."""

    # --- pedestrians: social force model (PySocialForce 1.1.2 defaults) -------------
    ped_radius: float = 0.35
    desired_factor: float = 1.0
    relaxation_time: float = 0.5
    goal_threshold: float = 0.2
    social_factor: float = 5.1
    lambda_importance: float = 2.0
    gamma: float = 0.35
    n: float = 2.0
    n_prime: float = 3.0
    obstacle_factor: float = 10.0
    obstacle_sigma: float = 0.2
    obstacle_threshold: float = 3.0
    max_speed_multiplier: float = 1.3
    robot_force_factor: float = 5.1
    """Social force on pedestrians from the robot, treated as one more agent (Robot SF)."""
    robot_repulsion_factor: float = 5.0
    """Hard-body push of pedestrians away from the robot's disc (obstacle-force form)."""
    robot_repulsion_sigma: float = 0.2
    """Decay length (m) of that push over the surface clearance."""
    ped_aware_fraction: float = 1.0
    """Share (dimensionless, in [0, 1]) of pedestrians that react to the robot: they feel its
    social force (``robot_force_factor``) and its hard-body push (``robot_repulsion_*``); the
    others ignore it, like CrowdNav's "invisible robot". Pedestrian ``i`` (0-based) of a world
    with ``P`` pedestrians is aware iff ``i < round(ped_aware_fraction * P)`` (round half to
    even), so no random draw is involved. The robot still collides with every pedestrian."""
    ped_stop_distance: float = 0.5
    """PySocialForce stops a pedestrian closer than this to its goal (m)."""
    ped_respawn_distance: float = 0.5
    """A pedestrian this close to its final target respawns at its flow's source (m)."""
    via_reach_distance: float = 1.0
    """A pedestrian this close to a via point moves on to the next one (m)."""
    ped_start_clearance: float = 1.0
    """Surface clearance (m) from the robot of every pedestrian placed when an episode starts
    (respawned pedestrians keep 1.6 m). Placed closer and walking at it, a pedestrian can
    reach a robot standing at its start before the robot can get out of the way."""

    # --- metrics ---------------------------------------------------------------------
    near_miss_distance: float = 0.5
    """Clearance (surface to surface, m) below which a step counts as a near miss."""
    comfort_force_threshold: float = 2.0
    """Robot-induced social force above which a pedestrian-step counts as discomfort."""
    goal_distance_scale: float = 20.0
    """Goal distance is divided by this (and clipped to 1) in the observation (m)."""

    # --- reward (see robosf_assets.envs.robot_env for the formula) -------------------
    reward_progress: float = 1.0
    """Reward per metre of progress towards the goal."""
    reward_time: float = 0.01
    """Cost per step."""
    reward_goal: float = 10.0
    """Bonus for reaching the goal."""
    reward_collision: float = 10.0
    """Penalty for a collision with a pedestrian or a wall."""
    reward_near_miss: float = 0.2
    """Near-miss penalty per step, scaled by how deep the robot is inside the near-miss band."""
    reward_collision_forfeit: float = 0.0
    """Share (in [0, 1]) of the episode's net progress reward taken back on a collision: the
    collision step also costs ``reward_collision_forfeit * reward_progress * (d0 - d)``, where
    ``d0`` is the start and ``d`` the current goal distance (m). With 1 every collision episode
    returns ``-reward_collision`` minus its time and near-miss costs, wherever it happened, so
    driving fast and crashing late never pays more than crashing early, and a collision costs
    more than the bonus plus the remaining progress a finished episode could still earn as
    soon as ``reward_collision > reward_goal + reward_progress * d0`` (the benchmark scenarios,
    ``docs/benchmark.md``). 0 (default): the plain progress term, today's behaviour."""
    reward_progress_geodesic: float = 0.0
    """Which goal distance ``d`` the progress term (and the forfeit's ``d0 - d``) measures:
    0 (default) the straight line; 1 the geodesic one, the shortest way round the walls
    (:mod:`robosf_assets.sim.geodesic`), as Habitat's PointNav reward, so that a wall between
    start and goal (``detour``) leaves no local optimum of the potential in front of it.
    Only the reward changes: the goal test, the observation's goal distance and the metrics
    (``path_efficiency`` divides the straight-line start distance) stay Euclidean."""

    # --- scenario-level values, filled in from the scenario ---------------------------
    horizon: float = 250.0
    min_goal_distance: float = 0.0
    heading_noise: float = 0.0
    ped_speed_low: float = 0.6
    ped_speed_high: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.ped_aware_fraction <= 1.0:
            raise ValueError(f"ped_aware_fraction must be in [0, 1], got {self.ped_aware_fraction}")
        if not 0.0 <= self.reward_collision_forfeit <= 1.0:
            raise ValueError(f"reward_collision_forfeit must be in [0, 1], got {self.reward_collision_forfeit}")
        if self.reward_progress_geodesic not in (0.0, 1.0):
            raise ValueError(f"reward_progress_geodesic must be 0 (Euclidean) or 1 (geodesic), "
                             f"got {self.reward_progress_geodesic}")

    def replace(self, **changes: float) -> SimParams:
        """A copy with ``changes`` applied; unknown names raise ``TypeError``."""
        return dataclasses.replace(self, **changes)

    def to_array(self) -> np.ndarray:
        """The parameter vector the kernels read, laid out as ``PARAM_INDEX``."""
        return np.array([float(getattr(self, name)) for name in PARAM_NAMES], dtype=np.float64)


PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SimParams))
PARAM_INDEX: dict[str, int] = {name: i for i, name in enumerate(PARAM_NAMES)}
