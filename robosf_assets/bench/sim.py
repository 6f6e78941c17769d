"""Simulator throughput: ``python -m robosf_assets.bench.sim [--seconds S] [--rays R]``.

For every default scenario and n_envs in (1, 16, 64) it prints, side by side:

- raw simulator env-steps/s (``BatchedWorld.step`` plus resets, random actions
  pre-generated, so only the kernel and its call are timed), with the serial kernel
  (the default) and the threaded one;
- VecEnv env-steps/s (``make_vec_env(...).step``: kernel, frame stack, SB3 infos);
- the share of kernel time spent moving pedestrians, casting LiDAR and the rest,
  from timing the phase kernels alone on the same state;
- the time to create an env with a warm JIT cache.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from robosf_assets.envs import make_vec_env
from robosf_assets.sim import kernels
from robosf_assets.sim.scenario import DEFAULT_SCENARIOS, get_scenario
from robosf_assets.sim.world import BatchedWorld

N_ACTIONS = 512


def _timed_steps(step, actions: np.ndarray, seconds: float) -> float:
    """Run ``step`` over the pre-generated actions until ``seconds`` pass; steps/s per world."""
    step(actions[0])  # JIT warm-up or first call
    n = 0
    t0 = time.perf_counter()
    while True:
        for a in actions:
            step(a)
        n += len(actions)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n / elapsed


def raw_rate(scenario: str, n_envs: int, n_rays: int, seconds: float, parallel: bool = False) -> float:
    world = BatchedWorld(get_scenario(scenario), n_envs, list(range(n_envs)), n_rays=n_rays, parallel=parallel)
    world.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (N_ACTIONS, n_envs, 2))

    def step(a):
        world.step(a)
        done = world.status != kernels.RUNNING
        if done.any():
            world.reset(done)

    return _timed_steps(step, actions, seconds) * n_envs


def vec_rate(scenario: str, n_envs: int, n_rays: int, seconds: float) -> float:
    env = make_vec_env(scenario, n_envs, 0, n_rays=n_rays)
    env.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (N_ACTIONS, n_envs, 2)).astype(np.float32)
    return _timed_steps(env.step, actions, seconds) * n_envs


def phase_shares(scenario: str, n_envs: int, n_rays: int, repeats: int = 300) -> dict[str, float]:
    """Share of a full (serial) step spent in the pedestrian and LiDAR phases."""
    w = BatchedWorld(get_scenario(scenario), n_envs, list(range(n_envs)), n_rays=n_rays)
    w.reset()
    actions = np.zeros((n_envs, 2))
    actions[:, 0] = 0.0

    def full():
        w.step(actions)

    def peds():
        kernels.peds_only(w.robot, w.ped_pos, w.ped_vel, w.ped_goal, w.ped_target, w.ped_vmax, w.ped_flow, w.ped_via,
                          w.rng, w.metrics, w._f_total, w._f_part, w.walls, w._flow_src, w._flow_tgt, w._flow_via,
                          w._flow_nvia, w._p)

    def lidar():
        kernels.lidar_only(w.robot, w.ped_pos, w.walls, w._ray_cos, w._ray_sin, w.lidar, w._p)

    times = {}
    for name, fn in (("step", full), ("pedestrians", peds), ("lidar", lidar)):
        fn()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        times[name] = time.perf_counter() - t0
    ped = min(times["pedestrians"] / times["step"], 1.0)
    lid = min(times["lidar"] / times["step"], 1.0)
    return {"pedestrians": ped, "lidar": lid, "rest": max(0.0, 1.0 - ped - lid)}


def creation_time(scenario: str) -> float:
    t0 = time.perf_counter()
    env = make_vec_env(scenario, 16, 0)
    env.reset()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing window per measurement")
    parser.add_argument("--rays", type=int, default=144, help="LiDAR rays (default 144)")
    parser.add_argument("--scenarios", nargs="*", default=list(DEFAULT_SCENARIOS))
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    make_vec_env(args.scenarios[0], 1, 0).reset()
    first = time.perf_counter() - t0
    out = [f"first env of the process (imports + JIT cache load): {first:.2f} s"]
    header = (f"{'scenario':<12}{'n_envs':>7}{'raw serial':>12}{'raw threaded':>14}{'VecEnv':>10}"
              f"{'peds':>7}{'lidar':>7}{'rest':>7}")
    out += ["env-steps/s; peds/lidar/rest: share of a serial step's time", header, "-" * len(header)]
    print("\n".join(out), flush=True)
    for scenario in args.scenarios:
        for n_envs in (1, 16, 64):
            raw = raw_rate(scenario, n_envs, args.rays, args.seconds)
            threaded = raw_rate(scenario, n_envs, args.rays, args.seconds, parallel=True)
            vec = vec_rate(scenario, n_envs, args.rays, args.seconds)
            shares = phase_shares(scenario, n_envs, args.rays)
            print(
                f"{scenario:<12}{n_envs:>7}{raw:>12,.0f}{threaded:>14,.0f}{vec:>10,.0f}"
                f"{shares['pedestrians']:>7.0%}{shares['lidar']:>7.0%}{shares['rest']:>7.0%}",
                flush=True,
            )
    for scenario in args.scenarios:
        print(f"create + reset a 16-world env, warm: {scenario} {creation_time(scenario) * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
