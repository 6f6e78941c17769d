"""PPO training throughput on our simulator against a zero-cost environment (the ceiling).

Issue 3's bar: PPO training env-steps/s (rollouts *and* updates) on ``make_vec_env`` within
30% of what the same PPO reaches on an environment that costs nothing (REFERENCE §8 quotes
~5,500 env-steps/s with 8 envs and ~7,100 with 16 on 2 cores). Both are measured side by
side in one process, with the same hyperparameters (n_steps 256, 10 epochs, SB3's
default batch size 64 and ``[64, 64]`` networks unless given), so machine load affects both.
torch runs on the CPU with one thread by default, as ``TrainConfig.torch_threads`` does
(``--torch-threads 0`` keeps torch's default; on 2 cores shared with the simulator's numba
threads that oversubscribes the CPU and slows both arms).

Run::

    python -m robosf_assets.bench.ppo_throughput            # 30k steps per cell
    python -m robosf_assets.bench.ppo_throughput --steps 100000 --n-envs 8 16

Columns: ``env only`` is the simulator stepped with random actions and no learning;
``ppo`` is env-steps/s of ``PPO.learn``; ``ratio`` is ours over the ceiling of the same
``n_envs``; ``pass`` says whether the ratio is at least ``1 - 0.30``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from robosf_assets.envs import list_scenarios, make_vec_env
from robosf_assets.envs.robot_env import ACTION_SPACE, observation_space
from robosf_assets.logging import configure_logging, get_logger

log = get_logger("bench.ppo_throughput")

BAR = 0.30
"""Ours may be at most this fraction slower than the ceiling."""


class ZeroCostVecEnv(VecEnv):
    """A VecEnv that costs nothing: zero observations and rewards.

    Every world ends an episode every ``episode_length`` steps (staggered across worlds),
    reported as a termination with a ``terminal_observation``, as our env does.
    """

    def __init__(
        self, n_envs: int, n_rays: int = 144, frame_stack: int = 1, episode_length: int = 200
    ):
        self.render_mode = None
        super().__init__(n_envs, observation_space(n_rays, frame_stack), ACTION_SPACE)
        self._obs = np.zeros((n_envs, *self.observation_space.shape), dtype=np.float32)
        self._rewards = np.zeros(n_envs, dtype=np.float32)
        self._t = np.arange(n_envs) * (episode_length // max(n_envs, 1))
        self._length = episode_length

    def reset(self) -> np.ndarray:
        return self._obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        pass

    def step_wait(self):
        self._t += 1
        dones = self._t % self._length == 0
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i] = {"terminal_observation": self._obs[i].copy(), "TimeLimit.truncated": False}
        return self._obs.copy(), self._rewards.copy(), dones, infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        return [
            getattr(self, method_name)(*method_args, **method_kwargs)
            for _ in self._get_indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False for _ in self._get_indices(indices)]


def make_ppo(
    env: VecEnv, *, n_steps: int, batch_size: int, n_epochs: int, net_arch: list[int], seed: int = 0
) -> PPO:
    """The benchmarked PPO on ``env`` (CPU), warmed up by one rollout and update."""
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=n_steps,
        batch_size=batch_size,
        n_epochs=n_epochs,
        policy_kwargs={"net_arch": net_arch},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    # without a logger of its own, every learn() makes an empty /tmp/SB3-<date> folder
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(total_timesteps=n_steps * env.num_envs)  # first torch calls; numba compiled
    return model


def ppo_steps_per_s(model: PPO, steps: int) -> float:
    """Env-steps/s of ``model.learn`` over at least ``steps`` steps (whole rollouts)."""
    rollout = model.n_steps * model.env.num_envs
    iterations = max(1, -(-steps // rollout))
    start = time.perf_counter()
    model.learn(total_timesteps=iterations * rollout, reset_num_timesteps=False)
    return iterations * rollout / (time.perf_counter() - start)


def env_only_steps_per_s(env: VecEnv, steps: int, seed: int = 0) -> float:
    """Env-steps/s with uniformly random actions and no learning."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(64, env.num_envs, 2)).astype(np.float32)
    env.reset()
    env.step(actions[0])  # warm-up
    iterations = max(1, steps // env.num_envs)
    start = time.perf_counter()
    for k in range(iterations):
        env.step(actions[k % 64])
    return iterations * env.num_envs / (time.perf_counter() - start)


CEILING = "zero-cost (ceiling)"


def run(
    steps: int,
    n_envs_list: list[int],
    scenarios: list[str],
    *,
    rounds: int = 3,
    n_steps: int,
    batch_size: int,
    n_epochs: int,
    net_arch: list[int],
    torch_threads: int,
) -> list[dict[str, Any]]:
    """Measure the ceiling and every scenario for every ``n_envs``; one row per cell.

    The arms of one ``n_envs`` are timed in ``rounds`` interleaved chunks of
    ``steps / rounds`` steps (ceiling, scenario 1, scenario 2, ..., ceiling, ...), and each
    arm reports its median chunk: a load spike from other work on the machine hits one
    chunk of every arm rather than a whole arm.
    """
    if torch_threads > 0:
        torch.set_num_threads(torch_threads)
    kwargs = {"n_steps": n_steps, "batch_size": batch_size, "n_epochs": n_epochs}
    rows: list[dict[str, Any]] = []
    for n_envs in n_envs_list:
        envs: dict[str, VecEnv] = {CEILING: ZeroCostVecEnv(n_envs)}
        envs.update({s: make_vec_env(s, n_envs, seed=0) for s in scenarios})
        env_only = {s: env_only_steps_per_s(envs[s], min(steps, 20_000)) for s in scenarios}
        models = {name: make_ppo(env, net_arch=net_arch, **kwargs) for name, env in envs.items()}
        chunks: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(max(1, rounds)):
            for name, model in models.items():
                chunks[name].append(ppo_steps_per_s(model, max(1, steps // max(1, rounds))))
        ceiling = float(np.median(chunks[CEILING]))
        for name in models:
            rate = float(np.median(chunks[name]))
            rows.append(
                {
                    "env": name,
                    "n_envs": n_envs,
                    "env_only": env_only.get(name, float("nan")),
                    "ppo": rate,
                    "ratio": rate / ceiling,
                    "chunks": [round(c) for c in chunks[name]],
                }
            )
            log.info(
                "{} n_envs={}: {:,.0f} env-steps/s (ratio {:.2f}; chunks {})",
                name,
                n_envs,
                rate,
                rate / ceiling,
                rows[-1]["chunks"],
            )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The result table as fixed-width text."""
    lines = [f"{'env':<20} {'n_envs':>6} {'env only':>10} {'ppo':>8} {'ratio':>6} {'pass':>5}"]
    for r in rows:
        env_only = "-" if np.isnan(r["env_only"]) else f"{r['env_only']:,.0f}"
        ok = "-" if r["env"] == CEILING else ("yes" if r["ratio"] >= 1 - BAR else "NO")
        lines.append(
            f"{r['env']:<20} {r['n_envs']:>6} {env_only:>10} {r['ppo']:>8,.0f} "
            f"{r['ratio']:>6.2f} {ok:>5}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000, help="timed env steps per cell")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved chunks per cell")
    parser.add_argument("--n-envs", type=int, nargs="+", default=[8, 16], help="numbers of worlds")
    parser.add_argument(
        "--scenarios", nargs="+", default=None, help="default: every registered scenario"
    )
    parser.add_argument("--n-steps", type=int, default=256, help="PPO steps per env per rollout")
    parser.add_argument("--batch-size", type=int, default=64, help="PPO minibatch (SB3 default 64)")
    parser.add_argument("--n-epochs", type=int, default=10, help="PPO epochs per rollout")
    parser.add_argument("--net-arch", type=int, nargs="+", default=[64, 64], help="hidden layers")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="as TrainConfig.torch_threads; 0: torch's default",
    )
    args = parser.parse_args(argv)
    configure_logging()
    scenarios = args.scenarios or list_scenarios()
    log.info(
        "PPO throughput: {} steps per cell, n_envs {}, scenarios {}, torch threads {}",
        args.steps,
        args.n_envs,
        scenarios,
        args.torch_threads or torch.get_num_threads(),
    )
    rows = run(
        args.steps,
        args.n_envs,
        scenarios,
        rounds=args.rounds,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        net_arch=args.net_arch,
        torch_threads=args.torch_threads,
    )
    table = format_table(rows)
    log.info(
        "env-steps/s, PPO (n_steps {}, batch {}, {} epochs, net {}) incl. updates; "
        "bar: ratio >= {:.2f}\n{}",
        args.n_steps,
        args.batch_size,
        args.n_epochs,
        args.net_arch,
        1 - BAR,
        table,
    )
    return rows


if __name__ == "__main__":
    main()
