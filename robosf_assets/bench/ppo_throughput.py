"""PPO training throughput: old settings vs new, each against SB3's zero-cost ceiling.

Issue 11's bar: PPO training on crossing at >= 12,000 env-steps/s per training process
(one torch thread), and at least 0.75 of what SB3's PPO reaches, with the same settings,
on an environment that costs nothing (the ceiling). For every settings arm -- ``old``
(16 envs x 256 steps, batch 1024, 10 epochs, net 128x128: both profiles before issue 11)
and ``new`` (the ``full`` profile's settings now, read from ``PROFILES``) -- and every
scenario it measures side by side, in one process:

- ``env only``: ``make_vec_env`` with the profile's env overrides (2 stacked frames) and
  the arm's ``n_envs``, stepped with pre-generated random actions, no learning;
- ``ppo``: env-steps/s of ``PPO.learn`` (rollouts *and* updates) on that env, with the
  model built by :func:`robosf_assets.training.ppo.build_ppo` (the training code path);
- ``ceiling``: plain SB3 ``PPO`` with the same settings on :class:`ZeroCostVecEnv`;
- ``ratio``: ppo / ceiling; ``eval s``: one curve evaluation (the profile's episodes and
  worlds, untrained policy) and ``eval %``: its share of wall time at the profile's
  evaluation spacing and this ppo rate.

Timing is interleaved: every model learns ``--steps / --rounds`` steps in turn, ``rounds``
times, and each reports its median chunk, so a load spike from other work on the machine
hits one chunk of every arm. With CUDA present each arm is also measured on the GPU
(``--devices``). Nothing is cached: rerun it after a simulator or settings change.

Run::

    python -m robosf_assets.bench.ppo_throughput                       # crossing, old vs new
    python -m robosf_assets.bench.ppo_throughput --clock cpu           # on a shared machine
    python -m robosf_assets.bench.ppo_throughput --scenarios crossing corridor --steps 60000
    python -m robosf_assets.bench.ppo_throughput --settings old new '{"name": "e3", "n_epochs": 3}'
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from robosf_assets.bench.settings import PPOSettings, parse_settings
from robosf_assets.envs import make_vec_env
from robosf_assets.envs.robot_env import ACTION_SPACE, observation_space
from robosf_assets.logs import configure_logging, get_logger
from robosf_assets.threads import torch_threads as limited_threads
from robosf_assets.training.train_config import TrainConfig, eval_episode_seeds, profile_config
from robosf_assets.training.evaluation import evaluate_policy_episodes

log = get_logger("bench.ppo_throughput")

MIN_RATIO = 0.75
"""Issue 11: PPO on our env reaches at least this share of the zero-cost ceiling."""
MIN_RATE = 12_000
"""Issue 11: PPO env-steps/s per training process on crossing at the new settings."""


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


def _silence(model: PPO) -> PPO:
    # without a logger of its own, every learn() makes an empty /tmp/SB3-<date> folder
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(total_timesteps=model.n_steps * model.env.num_envs)  # first torch calls, JIT
    return model


def make_ppo(
    env: VecEnv,
    *,
    n_steps: int,
    batch_size: int,
    n_epochs: int,
    net_arch: list[int],
    seed: int = 0,
    device: str = "cpu",
) -> PPO:
    """Plain SB3 PPO (``MlpPolicy``, separate actor and critic nets) on ``env``, warmed up
    by one rollout and update: the ceiling's model."""
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=n_steps,
        batch_size=batch_size,
        n_epochs=n_epochs,
        policy_kwargs={"net_arch": {"pi": list(net_arch), "vf": list(net_arch)}},
        seed=seed,
        device=device,
        verbose=0,
    )
    return _silence(model)


def make_training_ppo(config: TrainConfig, env: VecEnv) -> PPO:
    """The model training builds (:func:`~robosf_assets.training.ppo.build_ppo`), warmed up."""
    from robosf_assets.training.ppo import build_ppo

    return _silence(build_ppo(config, env))


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
"""``wall``: elapsed time; ``cpu``: this process's CPU time (every measured loop runs on one
thread), i.e. what one dedicated core would give, less sensitive to other work on a shared
machine (though not to cache and memory-bandwidth contention)."""


def ppo_steps_per_s(model: PPO, steps: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """Env-steps/s of ``model.learn`` over at least ``steps`` steps (whole rollouts)."""
    rollout = model.n_steps * model.env.num_envs
    iterations = max(1, -(-steps // rollout))
    start = clock()
    model.learn(total_timesteps=iterations * rollout, reset_num_timesteps=False)
    return iterations * rollout / (clock() - start)


def env_only_steps_per_s(
    env: VecEnv, steps: int, seed: int = 0, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Env-steps/s with uniformly random actions and no learning."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(64, env.num_envs, 2)).astype(np.float32)
    env.reset()
    env.step(actions[0])  # warm-up
    iterations = max(1, steps // env.num_envs)
    start = clock()
    for k in range(iterations):
        env.step(actions[k % 64])
    return iterations * env.num_envs / (clock() - start)


CEILING = "zero-cost (ceiling)"


@dataclass(frozen=True)
class Arm:
    """One measured combination: settings, device and the training config they give."""

    settings: PPOSettings
    device: str
    config: TrainConfig


def arm_train_config(
    settings: PPOSettings, device: str, profile: str = "full", eval_episodes: int | None = None
) -> TrainConfig:
    """The profile's training config with ``settings`` (scenario set per measurement)."""
    ppo: dict[str, Any] = {
        "n_steps": settings.n_steps,
        "batch_size": settings.batch_size,
        "n_epochs": settings.n_epochs,
        "net_arch": list(settings.net_arch),
    }
    if settings.learning_rate is not None:
        ppo["learning_rate"] = settings.learning_rate
    evaluation = {} if eval_episodes is None else {"n_eval_episodes": eval_episodes}
    return profile_config(
        profile, "crossing", 0, n_envs=settings.n_envs, ppo=ppo, device=device, eval=evaluation
    )


def eval_seconds(model: PPO, config: TrainConfig, clock: Callable[[], float] = time.perf_counter) -> float:
    """Wall time of one curve evaluation as training runs it (profile's episodes and worlds)."""
    seeds = eval_episode_seeds(config.eval)
    env = make_vec_env(
        config.scenario,
        min(config.eval.n_eval_envs, len(seeds)),
        config.eval.eval_seed_base,
        **dict(config.env_overrides),
    )
    start = clock()
    evaluate_policy_episodes(model, config.scenario, seeds, deterministic=config.eval.deterministic, env=env)
    return clock() - start


def run(
    steps: int,
    arms: list[Arm],
    scenarios: list[str],
    *,
    rounds: int = 3,
    torch_threads: int = 1,
    with_eval: bool = True,
    clock: str = "wall",
) -> list[dict[str, Any]]:
    """Measure every arm: its ceiling and every scenario; one row per (arm, env).

    All models of all arms are built first, then timed in ``rounds`` interleaved chunks of
    ``steps / rounds`` steps each (ceiling and scenarios of arm 1, of arm 2, ..., again);
    each reports its median chunk. ``clock``: a key of :data:`CLOCKS`.
    """
    tick = CLOCKS[clock]
    with limited_threads(torch_threads):
        models: dict[tuple[int, str], PPO] = {}
        env_only: dict[tuple[int, str], float] = {}
        evals: dict[tuple[int, str], float] = {}
        measured: dict[tuple[int, str], float] = {}
        for a, arm in enumerate(arms):
            s = arm.settings
            overrides = dict(arm.config.env_overrides)
            zero = ZeroCostVecEnv(
                s.n_envs, n_rays=int(overrides.get("n_rays", 144)),
                frame_stack=int(overrides.get("frame_stack", 1)),
            )
            models[a, CEILING] = make_ppo(
                zero, n_steps=s.n_steps, batch_size=s.batch_size, n_epochs=s.n_epochs,
                net_arch=list(s.net_arch), device=arm.device,
            )
            for scenario in scenarios:
                config = arm.config.model_copy(update={"scenario": scenario})
                env = make_vec_env(scenario, s.n_envs, config.train_seed_base, **overrides)
                if (s.n_envs, scenario) not in measured:  # the same env for every arm
                    measured[s.n_envs, scenario] = env_only_steps_per_s(env, min(steps, 20_000), clock=tick)
                env_only[a, scenario] = measured[s.n_envs, scenario]
                models[a, scenario] = make_training_ppo(config, env)
                if with_eval:
                    evals[a, scenario] = eval_seconds(models[a, scenario], config, tick)
        chunks: dict[tuple[int, str], list[float]] = {key: [] for key in models}
        for _ in range(max(1, rounds)):
            for key, model in models.items():
                chunks[key].append(ppo_steps_per_s(model, max(1, steps // max(1, rounds)), tick))
    rows: list[dict[str, Any]] = []
    for a, arm in enumerate(arms):
        ceiling = float(np.median(chunks[a, CEILING]))
        for name in [CEILING, *scenarios]:
            rate = float(np.median(chunks[a, name]))
            eval_s = evals.get((a, name))
            every = arm.config.eval.eval_every_steps
            rows.append(
                {
                    "arm": arm.settings.name,
                    "settings": arm.settings.to_dict(),
                    "device": arm.device,
                    "clock": clock,
                    "env": name,
                    "n_envs": arm.settings.n_envs,
                    "env_only": env_only.get((a, name), float("nan")),
                    "ppo": rate,
                    "ceiling": ceiling,
                    "ratio": rate / ceiling,
                    "chunks": [round(c) for c in chunks[a, name]],
                    "eval_s": float("nan") if eval_s is None else eval_s,
                    "eval_share": (
                        float("nan") if eval_s is None else eval_s / (eval_s + every / rate)
                    ),
                }
            )
            log.info(
                "{} {} {}: {:,.0f} env-steps/s (ratio {:.2f}; chunks {})",
                arm.settings.name, arm.device, name, rate, rate / ceiling, rows[-1]["chunks"],
            )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The result table as fixed-width text: one line per (arm, device, scenario)."""
    lines = [
        f"{'settings':<9} {'device':<6} {'env':<12} {'n_envs':>6} {'env only':>9} {'ppo':>8} "
        f"{'ceiling':>8} {'ratio':>6} {'eval s':>6} {'eval %':>6} {'>=' + format(MIN_RATE, ',') + '/s':>9} "
        f"{'>=' + format(MIN_RATIO, '.2f'):>6}"
    ]
    for r in rows:
        if r["env"] == CEILING:
            continue
        env_only = "-" if np.isnan(r["env_only"]) else f"{r['env_only']:,.0f}"
        eval_s = "-" if np.isnan(r["eval_s"]) else f"{r['eval_s']:.1f}"
        share = "-" if np.isnan(r["eval_share"]) else f"{100 * r['eval_share']:.0f}%"
        lines.append(
            f"{r['arm']:<9} {r['device']:<6} {r['env']:<12} {r['n_envs']:>6} {env_only:>9} "
            f"{r['ppo']:>8,.0f} {r['ceiling']:>8,.0f} {r['ratio']:>6.2f} {eval_s:>6} {share:>6} "
            f"{'yes' if r['ppo'] >= MIN_RATE else 'NO':>9} {'yes' if r['ratio'] >= MIN_RATIO else 'NO':>6}"
        )
    return "\n".join(lines)


def default_devices() -> list[str]:
    """``cpu``, plus ``cuda`` when torch sees a GPU."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 1)[1],
    )
    parser.add_argument("--steps", type=int, default=48_000, help="timed env steps per model")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved chunks per model")
    parser.add_argument("--scenarios", nargs="+", default=["crossing"], help="scenarios")
    parser.add_argument(
        "--settings", nargs="+", default=["old", "new"],
        help="arms: old, new, a JSON object of settings or @file.json (see bench.settings)",
    )
    parser.add_argument("--profile", default="full", help="profile giving env overrides and evaluation")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda if present")
    parser.add_argument("--no-eval", action="store_true", help="skip timing one curve evaluation")
    parser.add_argument("--eval-episodes", type=int, help="episodes of that evaluation (default: profile's)")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall",
        help="wall: elapsed time; cpu: this process's CPU time (a shared machine)",
    )
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="as TrainConfig.torch_threads; 0: torch's default"
    )
    args = parser.parse_args(argv)
    configure_logging()
    devices = args.devices or default_devices()
    arms = [
        Arm(s, d, arm_train_config(s, d, args.profile, args.eval_episodes))
        for s in parse_settings(args.settings, args.profile)
        for d in devices
    ]
    log.info(
        "PPO throughput: {} steps per model in {} rounds, scenarios {}, torch threads {}, devices {}",
        args.steps, args.rounds, args.scenarios, args.torch_threads or torch.get_num_threads(), devices,
    )
    rows = run(
        args.steps, arms, args.scenarios, rounds=args.rounds, torch_threads=args.torch_threads,
        with_eval=not args.no_eval, clock=args.clock,
    )
    described = "\n".join(f"  {a.settings.name}: {a.settings.label()}" for a in arms[:: len(devices)])
    print(
        f"PPO env-steps/s incl. updates ({args.clock} clock), torch threads "
        f"{args.torch_threads or 'default'}; bars: "
        f"ppo >= {MIN_RATE:,}/s and ppo/ceiling >= {MIN_RATIO:.2f} (issue 11, for 'new' on "
        f"crossing); eval: one curve evaluation, untrained policy\n{described}\n{format_table(rows)}",
        flush=True,
    )
    return rows


if __name__ == "__main__":
    main()
