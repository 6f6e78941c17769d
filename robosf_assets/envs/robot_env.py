"""Gymnasium environment: a differential-drive robot drives to a goal through a crowd.

Description
    One world of :class:`~robosf_assets.sim.world.BatchedWorld`. Pedestrians follow the
    social force model (PySocialForce parameters) and avoid the robot; they walk along
    the scenario's flows and respawn at the flow's source when they arrive, so crowds
    persist. Walls are line segments. ``dt`` = 0.1 s.

Action Space
    ``Box(-1, 1, (2,), float32)``. ``a[0]`` maps linearly to the commanded linear speed
    in [0, 2] m/s, ``a[1]`` to the commanded angular speed in [-1, 1] rad/s; the robot
    approaches the command within its acceleration limits (2 m/s^2, 4 rad/s^2).

Observation Space
    ``Box(float32)`` of ``frame_stack * (n_rays + 5)`` values, oldest frame first. One frame:

    ===============  ==========================================  =====  ===========
    index            meaning                                     unit   range
    ===============  ==========================================  =====  ===========
    0 .. R-1         LiDAR range / lidar_range, ray k at          -      [0, 1]
                     heading + k * 360/R degrees
    R                linear speed / max linear speed              -      [0, 1]
    R+1              angular speed / max angular speed            -      [-1, 1]
    R+2              min(goal distance / 20 m, 1)                 -      [0, 1]
    R+3, R+4         sin and cos of the goal bearing (relative    -      [-1, 1]
                     to the robot heading)
    ===============  ==========================================  =====  ===========

Rewards
    Per step ``r = progress * (d_prev - d) - time``, where ``d`` is the distance to the
    goal (1.0 per metre, 0.01 per step by default; the straight line, or the shortest way
    round the walls with ``reward_progress_geodesic = 1``); ``- near_miss * (1 - c / 0.5)`` while
    the clearance ``c`` to the nearest pedestrian is in [0, 0.5) m (0.2); ``+ goal`` on
    reaching the goal (10); ``- collision`` on a collision (10). All weights are
    ``SimParams.reward_*`` overrides.

Starting State
    Robot start and goal are sampled in the scenario's rectangles (at least
    ``min_goal_distance`` apart), heading towards the goal plus uniform noise, at rest.
    Pedestrians start spread along their first leg with speeds drawn from the scenario.

Episode End
    - Termination: the robot centre is within 1.0 m of the goal (success).
    - Termination: collision with a pedestrian (clearance < 0) or a wall.
    - Truncation: the scenario's horizon (in steps) is reached.

    The last ``info`` holds ``episode_metrics`` (success, collision type, timeout, steps,
    time to goal, path length and efficiency, minimum pedestrian clearance, near misses,
    comfort exposure, jerk, return) and ``episode`` (``r``, ``l``, ``t`` as SB3 expects).

Arguments
    Make it with :func:`robosf_assets.envs.make_robot_env` (``scenario``, ``seed``,
    ``**overrides``: see :class:`~robosf_assets.envs.env_config.EnvConfig`).
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np

from robosf_assets.envs.env_config import EnvConfig
from robosf_assets.sim import kernels
from robosf_assets.sim.scenario import Scenario
from robosf_assets.sim.world import BatchedWorld


def observation_space(n_rays: int, frame_stack: int) -> gym.spaces.Box:
    low = np.concatenate([np.zeros(n_rays), [0.0, -1.0, 0.0, -1.0, -1.0]])
    high = np.concatenate([np.ones(n_rays), [1.0, 1.0, 1.0, 1.0, 1.0]])
    return gym.spaces.Box(
        low=np.tile(low, frame_stack).astype(np.float32),
        high=np.tile(high, frame_stack).astype(np.float32),
        dtype=np.float32,
    )


ACTION_SPACE = gym.spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)


class FrameStack:
    """Frame buffer ``(B, K, D)``; ``flat`` is the stacked observation ``(B, K * D)``."""

    def __init__(self, n_worlds: int, frame_stack: int, frame_dim: int) -> None:
        self.buffer = np.zeros((n_worlds, frame_stack, frame_dim), dtype=np.float32)

    def push(self, frames: np.ndarray) -> None:
        if self.buffer.shape[1] > 1:
            self.buffer[:, :-1] = self.buffer[:, 1:]
        self.buffer[:, -1] = frames

    def fill(self, mask: np.ndarray, frames: np.ndarray) -> None:
        """After a reset every frame of the masked worlds is the first observation."""
        self.buffer[mask] = frames[mask][:, None, :]

    @property
    def flat(self) -> np.ndarray:
        return self.buffer.reshape(self.buffer.shape[0], -1)


def episode_info(world: BatchedWorld, index: int, started: float) -> dict[str, Any]:
    """The end-of-episode ``info`` entries shared by the single and the vector env."""
    metrics = world.episode_metrics(index)
    return {
        "episode_metrics": metrics,
        "episode": {"r": metrics["episode_return"], "l": metrics["steps"], "t": round(time.time() - started, 6)},
        "is_success": metrics["success"],
    }


class RobotNavEnv(gym.Env):
    """A single crowd-navigation world (see the module docstring for spaces and rewards)."""

    metadata = {"render_modes": []}

    def __init__(self, scenario: Scenario, seed: int, config: EnvConfig) -> None:
        super().__init__()
        self.scenario = scenario
        self.config = config
        self.world = BatchedWorld(
            scenario, 1, [seed], params=config.params, n_rays=config.n_rays, n_peds=config.n_peds,
            horizon=config.horizon, parallel=False,
        )
        self._seed = seed
        self._stack = FrameStack(1, config.frame_stack, self.world.obs.shape[1])
        self.observation_space = observation_space(config.n_rays, config.frame_stack)
        self.action_space = ACTION_SPACE
        self._all = np.ones(1, dtype=bool)
        self._needs_reset = True
        self._started = time.time()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._seed = seed
            self.world.seed_world(0, seed)
        obs = self.world.reset(self._all)
        self._stack.fill(self._all, obs)
        self._needs_reset = False
        return self._stack.flat[0].copy(), {}

    def step(self, action):
        if self._needs_reset:
            raise RuntimeError("call reset() before step() (the episode has ended or never started)")
        obs = self.world.step(np.asarray(action, dtype=np.float64).reshape(1, 2))
        self._stack.push(obs)
        status = int(self.world.status[0])
        terminated = status in (kernels.GOAL, kernels.COLLISION_PED, kernels.COLLISION_WALL)
        truncated = status == kernels.TIMEOUT
        info: dict[str, Any] = {}
        if terminated or truncated:
            self._needs_reset = True
            info = episode_info(self.world, 0, self._started)
        return self._stack.flat[0].copy(), float(self.world.reward[0]), terminated, truncated, info
