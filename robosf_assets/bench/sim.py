"""Simulator throughput: ``python -m robosf_assets.bench.sim [--seconds S] [--repeats N] [--clock cpu|wall]``.

Prints, in one run:

1. for every default scenario and n_envs in (1, 16, 64): raw env-steps/s of
   ``BatchedWorld.step`` (plus resets; random actions pre-generated, so only the kernel and
   its call are timed) with the fast serial kernel (the default), the first-written one
   (``reference=True``, "old") and their ratio, the threaded kernel, and ``make_vec_env``'s
   ``step`` (kernel, frame stack, SB3 infos); then the time per env-step of the pedestrian
   update and of the LiDAR, new and old, from the phase kernels alone on the same state;
2. the pedestrian scaling table: the crossing geometry with 0, 10, 20, 40 and 80 pedestrians
   per world at 64 envs, new and old;
3. the VecEnv loop: an independent stepping loop through ``make_vec_env`` (64 envs,
   20 pedestrians, random actions) on every default scenario;
4. the time to create an env with a warm JIT cache.

Every figure is the median of ``--repeats`` windows of ``--seconds``, with new and old
interleaved so that both see the same machine load. ``--clock cpu`` (the default) divides by
the CPU time of the stepping thread, which is what wall-clock gives on an idle core and stays
meaningful on a shared machine; ``--clock wall`` uses elapsed time. The threaded kernel is
always timed on the wall clock (its work is on other threads).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from robosf_assets.envs import make_vec_env
from robosf_assets.sim import kernels
from robosf_assets.sim.scenario import DEFAULT_SCENARIOS, get_scenario
from robosf_assets.sim.world import BatchedWorld

N_ACTIONS = 256
SCALING_PEDS = (0, 10, 20, 40, 80)
CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


def _window(step: Callable[[np.ndarray], object], actions: np.ndarray, seconds: float, clock) -> float:
    """Calls of ``step`` per second of ``clock`` over one window of about ``seconds``."""
    n = 0
    t0 = clock()
    w0 = time.perf_counter()
    while True:
        for a in actions[n % len(actions):][:16]:
            step(a)
            n += 1
        if time.perf_counter() - w0 >= seconds:
            return n / (clock() - t0)


def _stepper(world: BatchedWorld) -> Callable[[np.ndarray], None]:
    def step(a: np.ndarray) -> None:
        world.step(a)
        done = world.status != kernels.RUNNING
        if done.any():
            world.reset(done)

    return step


def _world(scenario: str, n_envs: int, n_rays: int, n_peds: int | None = None, **kw) -> BatchedWorld:
    world = BatchedWorld(get_scenario(scenario), n_envs, list(range(n_envs)), n_rays=n_rays, n_peds=n_peds, **kw)
    world.reset()
    return world


def compare(makers: dict[str, Callable[[], tuple[Callable, np.ndarray, int]]], seconds: float, repeats: int,
            clocks: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Median env-steps/s of each candidate, windows interleaved across candidates."""
    built = {name: make() for name, make in makers.items()}
    for step, actions, _ in built.values():
        for a in actions[:8]:  # JIT warm-up, first calls
            step(a)
    rates: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(repeats):
        for name, (step, actions, n_envs) in built.items():
            rates[name].append(_window(step, actions, seconds, clocks[name]) * n_envs)
    return {name: statistics.median(r) for name, r in rates.items()}


def _raw(scenario: str, n_envs: int, n_rays: int, n_peds: int | None = None, **kw):
    def make():
        actions = np.random.default_rng(0).uniform(-1, 1, (N_ACTIONS, n_envs, 2))
        return _stepper(_world(scenario, n_envs, n_rays, n_peds, **kw)), actions, n_envs

    return make


def _vec(scenario: str, n_envs: int, n_rays: int, n_peds: int | None = None):
    def make():
        overrides = {} if n_peds is None else {"n_peds": n_peds}
        env = make_vec_env(scenario, n_envs, 0, n_rays=n_rays, **overrides)
        env.reset()
        actions = np.random.default_rng(0).uniform(-1, 1, (N_ACTIONS, n_envs, 2)).astype(np.float32)
        return env.step, actions, n_envs

    return make


def phase_times(scenario: str, n_envs: int, n_rays: int, n_peds: int | None = None, repeats: int = 5,
                calls: int = 40) -> dict[str, float]:
    """Microseconds per env-step of the pedestrian update and the LiDAR, new and old (median)."""
    w = _world(scenario, n_envs, n_rays, n_peds)
    step = _stepper(w)
    for a in np.random.default_rng(1).uniform(-1, 1, (50, n_envs, 2)):  # a state with moving crowds
        step(a)
    state, crowd, scratch, out, layout, flows = w.groups
    p = w.params.to_array()
    fns = {
        f"{phase}_{version}": fn
        for version, ref in (("new", False), ("old", True))
        for phase, fn in (
            ("peds", lambda ref=ref: kernels.peds_only(
                state.robot, *crowd, state.rng, state.metrics, scratch.f_total, scratch.f_part, layout.walls,
                flows.flow_src, flows.flow_tgt, flows.flow_via, flows.flow_nvia, p, ref)),
            ("lidar", lambda ref=ref: kernels.lidar_only(
                state.robot, crowd.ped_pos, layout.walls, layout.ray_cos, layout.ray_sin, out.lidar, p, ref)),
        )
    }
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.thread_time()
            for _ in range(calls):
                fn()
            times[name].append((time.thread_time() - t0) / calls / n_envs * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}


def creation_time(scenario: str) -> float:
    t0 = time.perf_counter()
    env = make_vec_env(scenario, 16, 0)
    env.reset()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing window per measurement (s)")
    parser.add_argument("--repeats", type=int, default=3, help="windows per figure; the median is printed")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: per CPU-second of the stepping thread (default); wall: per elapsed second")
    parser.add_argument("--rays", type=int, default=144, help="LiDAR rays (default 144)")
    parser.add_argument("--scenarios", nargs="*", default=list(DEFAULT_SCENARIOS))
    parser.add_argument("--n-envs", type=int, nargs="*", default=[1, 16, 64])
    parser.add_argument("--skip", nargs="*", default=[], choices=["main", "scaling", "vecenv"],
                        help="sections to leave out")
    args = parser.parse_args(argv)
    clock = CLOCKS[args.clock]
    clocks = {"new": clock, "old": clock, "threaded": time.perf_counter, "vecenv": clock}

    t0 = time.perf_counter()
    make_vec_env(args.scenarios[0], 1, 0).reset()
    first = time.perf_counter() - t0
    print(f"first env of the process (imports + JIT cache load): {first:.2f} s")
    print(f"env-steps/s per {args.clock} second, median of {args.repeats} x {args.seconds:g} s; "
          "old = first-written kernels (reference=True); peds/lidar: us per env-step of that phase")

    if "main" not in args.skip:
        header = (f"{'scenario':<11}{'n_envs':>7}{'new':>10}{'old':>10}{'new/old':>8}{'threaded':>10}{'VecEnv':>10}"
                  f"{'peds new':>10}{'old':>7}{'lidar new':>10}{'old':>7}{'p+l x':>7}")
        print("\n" + header + "\n" + "-" * len(header), flush=True)
        for scenario in args.scenarios:
            for n_envs in args.n_envs:
                r = compare({"new": _raw(scenario, n_envs, args.rays),
                             "old": _raw(scenario, n_envs, args.rays, reference=True),
                             "threaded": _raw(scenario, n_envs, args.rays, parallel=True),
                             "vecenv": _vec(scenario, n_envs, args.rays)}, args.seconds, args.repeats, clocks)
                ph = phase_times(scenario, n_envs, args.rays, repeats=args.repeats)
                both = (ph["peds_old"] + ph["lidar_old"]) / (ph["peds_new"] + ph["lidar_new"])
                print(f"{scenario:<11}{n_envs:>7}{r['new']:>10,.0f}{r['old']:>10,.0f}{r['new'] / r['old']:>8.2f}"
                      f"{r['threaded']:>10,.0f}{r['vecenv']:>10,.0f}{ph['peds_new']:>10.2f}{ph['peds_old']:>7.2f}"
                      f"{ph['lidar_new']:>10.2f}{ph['lidar_old']:>7.2f}{both:>7.2f}", flush=True)

    if "scaling" not in args.skip:
        header = (f"{'peds/world':>10}{'new':>10}{'old':>10}{'new/old':>8}"
                  f"{'peds new':>10}{'old':>8}{'lidar new':>10}{'old':>7}{'p+l x':>7}")
        print("\npedestrian scaling: crossing geometry, 64 envs, n_peds overridden\n" + header + "\n"
              + "-" * len(header), flush=True)
        for n_peds in SCALING_PEDS:
            r = compare({"new": _raw("crossing", 64, args.rays, n_peds),
                         "old": _raw("crossing", 64, args.rays, n_peds, reference=True)},
                        args.seconds, args.repeats, clocks)
            ph = phase_times("crossing", 64, args.rays, n_peds, repeats=args.repeats)
            both = (ph["peds_old"] + ph["lidar_old"]) / max(ph["peds_new"] + ph["lidar_new"], 1e-9)
            print(f"{n_peds:>10}{r['new']:>10,.0f}{r['old']:>10,.0f}{r['new'] / r['old']:>8.2f}"
                  f"{ph['peds_new']:>10.2f}{ph['peds_old']:>8.2f}{ph['lidar_new']:>10.2f}{ph['lidar_old']:>7.2f}"
                  f"{both:>7.2f}", flush=True)

    if "vecenv" not in args.skip:
        print("\nVecEnv loop: make_vec_env(scenario, 64, 0, n_peds=20), random actions, env-steps/s", flush=True)
        for scenario in args.scenarios:
            r = compare({"vecenv": _vec(scenario, 64, args.rays, n_peds=20)}, args.seconds, args.repeats, clocks)
            print(f"{scenario:<11}{r['vecenv']:>10,.0f}", flush=True)

    for scenario in args.scenarios:
        print(f"create + reset a 16-world env, warm: {scenario} {creation_time(scenario) * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
