"""Expert training budget: ``python -m robosf_assets.bench.expert [--profile full] [--scenarios ...]``.

Trains the expert of each scenario exactly as the ``expert_policy`` asset does
(:func:`robosf_assets.training.expert.train_expert`, same profile, validation on 3 seeds x
100 fresh episodes), then prints per scenario the env steps and wall time it took, the
training throughput, the step at which the promotion bar first held for k evaluations in
a row, the validated success and collision rates with their 95% CIs, and the verdict.
Issue 3's bar: the ``full`` expert passes on every default scenario within 2,000,000 steps
and 20 minutes.
"""

from __future__ import annotations

import argparse
import time

from robosf_assets.artifacts import new_run_dir, output_root
from robosf_assets.logs import configure_logging
from robosf_assets.sim.scenario import DEFAULT_SCENARIOS
from robosf_assets.training.train_config import profile_config
from robosf_assets.training.expert import train_expert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="full", choices=["quick", "full"])
    parser.add_argument("--scenarios", nargs="+", default=list(DEFAULT_SCENARIOS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(output_root() / "bench"), help="where the expert runs are written")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    rows = []
    for scenario in args.scenarios:
        config = profile_config(args.profile, scenario, args.seed)
        run_dir = new_run_dir("experts", scenario, root=args.out)
        started = time.perf_counter()
        outcome = train_expert(config, run_dir)
        wall = time.perf_counter() - started
        pooled = outcome.validation["pooled"]
        t = outcome.train
        rows.append((scenario, t.timesteps_used, t.wall_time_s, wall, t.env_steps_per_s, t.promotion_reached_at,
                     pooled["success"], pooled["collision"], outcome.verdict["passed"], run_dir))
        print(f"{scenario}: {outcome.verdict['message']}", flush=True)
    print(f"\nprofile {args.profile}, seed {args.seed}")
    header = (f"{'scenario':<11}{'steps':>11}{'train s':>9}{'total s':>9}{'steps/s':>9}{'bar held at':>13}"
              f"{'success [95% CI]':>23}{'collision [95% CI]':>23}  verdict")
    print(header)
    print("-" * len(header))
    for sc, steps, train_s, total_s, sps, reached, succ, coll, passed, run_dir in rows:
        print(f"{sc:<11}{steps:>11,}{train_s:>9.0f}{total_s:>9.0f}{sps:>9,.0f}{reached if reached is not None else '-':>13}"
              f"{succ['mean']:>9.3f} [{succ['ci_low']:.3f}, {succ['ci_high']:.3f}]"
              f"{coll['mean']:>9.3f} [{coll['ci_low']:.3f}, {coll['ci_high']:.3f}]  {'PASSED' if passed else 'FAILED'}")
    print("runs: " + ", ".join(str(r[-1]) for r in rows))
    return 0 if all(r[8] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
