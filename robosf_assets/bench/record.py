"""Dataset recording and validation throughput: ``python -m robosf_assets.bench.record``.

Records ``--episodes`` episodes (default 200, the dataset minimum) three ways and
validates the result:

- ``env only``: the simulator stepped with pre-generated random actions, no recording
  (the ceiling recording can approach);
- ``random``: :func:`record_dataset` with a uniform random policy;
- ``ppo``: :func:`record_dataset` with a randomly initialised SB3 PPO ``MlpPolicy``
  acting deterministically (``predict``), the cost an expert policy adds.

Recording rate is transitions (stored steps) per second of ``run_episodes``; end-to-end
adds packing, the NPZ, episodes.jsonl and the manifest. Bars (issue 4): recording
>= 5,000 transitions/s on 2 cores; validating a 200-episode dataset <= 5 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from robosf_assets.artifacts import read_json
from robosf_assets.logs import configure_logging

RECORD_BAR = 5_000.0  # transitions/s
VALIDATE_BAR = 5.0  # seconds for a 200-episode dataset
_SOURCE = {"run_dir": "bench", "model_sha256": "0" * 64}


def _env_only(scenario: str, n_envs: int, steps: int, overrides: dict, parallel: bool) -> float:
    from robosf_assets.envs import make_vec_env

    env = make_vec_env(scenario, n_envs, 0, parallel=parallel, **overrides)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, n_envs, 2)).astype(np.float32)
    env.reset()
    env.step(actions[0])  # compile / warm up
    t0 = time.perf_counter()
    for k in range(steps):
        env.step(actions[k])
    return steps * n_envs / (time.perf_counter() - t0)


def _ppo_policy(scenario: str, overrides: dict):
    import torch
    from stable_baselines3 import PPO

    from robosf_assets.envs import make_vec_env
    from robosf_assets.envs.rollout import sb3_policy

    torch.manual_seed(0)
    model = PPO(
        "MlpPolicy", make_vec_env(scenario, 1, 0, **overrides), seed=0, device="cpu", verbose=0
    )
    return sb3_policy(model, deterministic=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m robosf_assets.bench.record", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--scenario", default="crossing")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument(
        "--parallel", action="store_true", help="threaded simulator kernel (default serial)"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="write datasets here instead of a temp dir"
    )
    args = parser.parse_args(argv)
    configure_logging("WARNING")

    from robosf_assets.datasets.record import record_dataset
    from robosf_assets.training.train_config import DATASET_SEED_BASE
    from robosf_assets.datasets.validate import validate_dataset

    overrides: dict = {}
    rng = np.random.default_rng(0)

    def random_policy(obs: np.ndarray) -> np.ndarray:
        return rng.uniform(-1, 1, (len(obs), 2)).astype(np.float32)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        env_rate = _env_only(args.scenario, args.n_envs, 500, overrides, args.parallel)
        rows.append(("env only (random actions)", env_rate, None, None))
        # warm-up: compile kernels, import torch, so the timed runs measure steady state
        record_dataset(
            random_policy,
            args.scenario,
            root / "warmup",
            n_episodes=args.n_envs,
            seed_base=DATASET_SEED_BASE,
            n_envs=args.n_envs,
            source=_SOURCE,
            parallel=args.parallel,
        )
        datasets = {}
        for name, policy in (
            ("random", random_policy),
            ("ppo", _ppo_policy(args.scenario, overrides)),
        ):
            t0 = time.perf_counter()
            it = record_dataset(
                policy,
                args.scenario,
                root / name,
                n_episodes=args.episodes,
                seed_base=DATASET_SEED_BASE + 1000,
                n_envs=args.n_envs,
                source=_SOURCE,
                parallel=args.parallel,
            )
            total = time.perf_counter() - t0
            m = read_json(it / "manifest.json")
            rows.append(
                (
                    f"record {name} policy",
                    m["recording"]["transitions_per_s"],
                    m["n_transitions"] / total,
                    m,
                )
            )
            datasets[name] = it
        validations = []
        for name, it in datasets.items():
            validate_dataset(it, min_episodes=args.episodes)  # page cache warm, as after recording
            t0 = time.perf_counter()
            report = validate_dataset(it, min_episodes=args.episodes)
            validations.append((name, time.perf_counter() - t0, report))

    print(
        f"scenario {args.scenario}, {args.episodes} episodes, {args.n_envs} envs, "
        f"{'parallel' if args.parallel else 'serial'} kernel"
    )
    print(f"{'':32s} {'transitions/s':>14s} {'end-to-end/s':>13s} {'transitions':>12s} {'MB':>7s}")
    for label, rate, e2e, m in rows:
        extra = f"{e2e:13,.0f} {m['n_transitions']:12,d} {m['bytes_total'] / 1e6:7.1f}" if m else ""
        print(f"{label:32s} {rate:14,.0f} {extra}")
    for name, seconds, report in validations:
        print(
            f"validate {name} dataset ({report.counts['episodes']} episodes, "
            f"{report.counts['transitions']:,} transitions): {seconds:.3f} s, {report.status}"
        )
    worst_record = min(r[1] for r in rows[1:])
    worst_validate = max(v[1] for v in validations)
    ok = worst_record >= RECORD_BAR and worst_validate <= VALIDATE_BAR
    print(
        f"bars: recording >= {RECORD_BAR:,.0f}/s: {'PASS' if worst_record >= RECORD_BAR else 'FAIL'} "
        f"(min {worst_record:,.0f}); validation <= {VALIDATE_BAR} s: "
        f"{'PASS' if worst_validate <= VALIDATE_BAR else 'FAIL'} (max {worst_validate:.3f} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
