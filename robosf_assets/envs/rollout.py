"""Play a fixed set of episodes (one seed each) with a policy on a batched env.

Used by evaluation (training) and by dataset recording: the same seeds give the same
episodes whatever policy ran before, because every episode reseeds its world.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robosf_assets.envs.vec_env import RobotNavVecEnv

Policy = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations ``(n, obs_dim)`` to actions ``(n, 2)``."""


@dataclass
class Episode:
    """One finished episode. Arrays are present only when recorded.

    ``observations`` has ``steps + 1`` rows (the last is the terminal observation), as
    ``imitation.data.types.Trajectory`` expects.
    """

    seed: int
    metrics: dict[str, Any]
    observations: np.ndarray | None = None
    actions: np.ndarray | None = None
    rewards: np.ndarray | None = None
    terminated: bool = False
    truncated: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def sb3_policy(model, deterministic: bool = True) -> Policy:
    """Wrap an SB3 model (anything with ``predict``) as a :data:`Policy`."""

    def act(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=deterministic)[0]

    return act


def run_episodes(env: RobotNavVecEnv, policy: Policy, seeds: Sequence[int], record: bool = False) -> list[Episode]:
    """Play one episode per seed, ``env.num_envs`` at a time; results in ``seeds`` order.

    :param env: a vec env from :func:`~robosf_assets.envs.make_vec_env`; it is reset here.
    :param policy: batch policy; it sees every world, finished ones included.
    :param seeds: episode seeds (duplicates allowed: the same episode is played again).
    :param record: keep observations, actions and rewards of every episode.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        return []
    env.set_episode_seeds(seeds)
    obs = env.reset()
    n = env.num_envs
    # index into ``seeds`` of the episode each world plays; worlds beyond the list idle
    slot = list(range(n))
    next_slot = n
    buffers: list[dict[str, list]] = [{"obs": [o], "act": [], "rew": []} for o in obs]
    results: dict[int, Episode] = {}
    while len(results) < len(seeds):
        actions = np.asarray(policy(obs), dtype=np.float32).reshape(n, 2)
        clipped = np.clip(actions, -1.0, 1.0)
        new_obs, rewards, dones, infos = env.step(clipped)
        for i in range(n):
            if slot[i] >= len(seeds):
                continue
            if record:
                buf = buffers[i]
                buf["act"].append(clipped[i].copy())
                buf["rew"].append(float(rewards[i]))
            if dones[i]:
                info = infos[i]
                truncated = bool(info["TimeLimit.truncated"])
                ep = Episode(seed=seeds[slot[i]], metrics=info["episode_metrics"], terminated=not truncated,
                             truncated=truncated)
                if record:
                    buf = buffers[i]
                    buf["obs"].append(info["terminal_observation"])
                    ep.observations = np.asarray(buf["obs"], dtype=np.float32)
                    ep.actions = np.asarray(buf["act"], dtype=np.float32)
                    ep.rewards = np.asarray(buf["rew"], dtype=np.float32)
                results[slot[i]] = ep
                slot[i] = next_slot
                next_slot += 1
                buffers[i] = {"obs": [new_obs[i]], "act": [], "rew": []}
            elif record:
                buffers[i]["obs"].append(new_obs[i])
        obs = new_obs
    return [results[k] for k in range(len(seeds))]
