"""Stable-Baselines3 ``VecEnv`` that steps all of its worlds with one batched kernel call.

It honours SB3's contract: ``step`` returns ``(obs, rewards, dones, infos)`` with
``done = terminated or truncated``; finished worlds are reset in the same step; the last
observation of an episode is in ``infos[i]["terminal_observation"]`` and time-limit ends
set ``infos[i]["TimeLimit.truncated"]``. World ``i`` is seeded ``seed + i`` and behaves
exactly like ``make_robot_env(scenario, seed + i)`` given the same actions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from robosf_assets.envs.env_config import EnvConfig
from robosf_assets.envs.robot_env import ACTION_SPACE, FrameStack, episode_info, observation_space
from robosf_assets.sim import kernels
from robosf_assets.sim.scenario import Scenario
from robosf_assets.sim.world import BatchedWorld


class RobotNavVecEnv(VecEnv):
    """``n_envs`` crowd-navigation worlds of one scenario, advanced together."""

    def __init__(self, scenario: Scenario, n_envs: int, seed: int, config: EnvConfig, parallel: bool = False):
        self.scenario = scenario
        self.config = config
        self.render_mode = None  # before VecEnv.__init__, which warns when it is missing
        self.world = BatchedWorld(
            scenario, n_envs, [seed + i for i in range(n_envs)], params=config.params, n_rays=config.n_rays,
            n_peds=config.n_peds, horizon=config.horizon, parallel=parallel,
        )
        super().__init__(n_envs, observation_space(config.n_rays, config.frame_stack), ACTION_SPACE)
        self._stack = FrameStack(n_envs, config.frame_stack, self.world.obs.shape[1])
        self._actions = np.zeros((n_envs, 2))
        self._episode_seeds: list[int] = []
        self.world_episode_seed: list[int | None] = [None] * n_envs
        """Seed of each world's current episode when it came from ``set_episode_seeds``, else None."""
        self._started = time.time()

    # ---- fixed episode sets ------------------------------------------------------------------
    def set_episode_seeds(self, seeds: Sequence[int]) -> None:
        """Queue per-episode seeds: each following reset of a world reseeds it with the next one.

        This makes an episode depend only on its own seed (and the actions), not on what
        the world did before, so evaluation and recording sets are fixed and reproducible.
        """
        self._episode_seeds = [int(s) for s in seeds][::-1]

    def _reseed_for_episode(self, mask: np.ndarray) -> None:
        for i in np.flatnonzero(mask):
            if self._episode_seeds:
                seed = self._episode_seeds.pop()
                self.world.seed_world(i, seed)
                self.world_episode_seed[i] = seed
            else:
                self.world_episode_seed[i] = None

    # ---- VecEnv API ------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        for i, s in enumerate(self._seeds):
            if s is not None:
                self.world.seed_world(i, s)
        self._reset_seeds()
        self._reset_options()
        everything = np.ones(self.num_envs, dtype=bool)
        self._reseed_for_episode(everything)
        obs = self.world.reset(everything)
        self._stack.fill(everything, obs)
        return self._stack.flat.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 2)

    def step_wait(self):
        obs = self.world.step(self._actions)
        self._stack.push(obs)
        status = self.world.status
        dones = status != kernels.RUNNING
        rewards = self.world.reward.astype(np.float32)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            finished = np.flatnonzero(dones)
            for i in finished:
                info = episode_info(self.world, i, self._started)
                info["terminal_observation"] = self._stack.flat[i].copy()
                info["TimeLimit.truncated"] = bool(status[i] == kernels.TIMEOUT)
                info["episode_seed"] = self.world_episode_seed[i]
                infos[i] = info
            self._reseed_for_episode(dones)
            obs = self.world.reset(dones)
            self._stack.fill(dones, obs)
        return self._stack.flat.copy(), rewards, dones, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]
