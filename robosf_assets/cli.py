"""Command line: ``python -m robosf_assets.cli demo [--profile quick|full]``.

``demo`` materialises the whole graph (every default scenario, seeds 0-4) on the Dagster
instance in ``DAGSTER_HOME`` (the project's ``.dagster_home/`` when run through ``make``),
then prints where the reports are and how to open the UI. ``pipeline`` does the same for
chosen scenarios and seeds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from robosf_assets.logging import configure_logging, logger

REPO = Path(__file__).resolve().parent.parent


def _instance():
    import dagster as dg

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(REPO / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    return dg.DagsterInstance.get()


def _scenario_chain(scenario: str, seeds: list[int], profile: str):
    """One scenario's chain (stages 1-3) in a worker process, on the same instance."""
    from robosf_assets.defs import build_definitions
    from robosf_assets.defs.pipeline import run_pipeline

    configure_logging("INFO")
    # progress comes through loguru on stderr; Dagster's own console logger only shows warnings
    return run_pipeline(build_definitions(), _instance(), [scenario], seeds, profile, log_level="WARNING",
                        summary=False)


def default_workers(n_scenarios: int) -> int:
    """Scenario chains run side by side: ``$ROBOSF_WORKERS``, else one per core up to 2."""
    env = os.environ.get("ROBOSF_WORKERS")
    workers = int(env) if env else min(2, os.cpu_count() or 1)
    return max(1, min(workers, n_scenarios))


def run(scenarios: list[str], seeds: list[int], profile: str, workers: int | None = None) -> int:
    from robosf_assets.defs import build_definitions
    from robosf_assets.defs.pipeline import PipelineOutcome, materialize_summary

    started = time.time()
    instance = _instance()
    workers = default_workers(len(scenarios)) if workers is None else max(1, min(workers, len(scenarios)))
    logger.info("profile {}, scenarios {}, seeds {}, {} scenario(s) at a time, Dagster instance {}", profile,
                scenarios, seeds, workers, os.environ["DAGSTER_HOME"])
    # each scenario's chain is independent until the summary, so they run in worker processes
    # (training is single-threaded: one chain per core); every run lands on the same instance
    if workers == 1:
        chains = [_scenario_chain(s, seeds, profile) for s in scenarios]
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            chains = list(pool.map(_scenario_chain, scenarios, [seeds] * len(scenarios), [profile] * len(scenarios)))
    outcome = PipelineOutcome()
    for chain in chains:
        outcome.reports.update(chain.reports)
        outcome.stopped.update(chain.stopped)
    if outcome.reports:
        outcome.summary_dir = materialize_summary(build_definitions(), instance, log_level="WARNING")
    lines = [f"\nDone in {time.time() - started:.0f} s (profile {profile})."]
    for scenario, report_dir in outcome.reports.items():
        lines.append(f"  {scenario}: report {report_dir}/report.md")
    for scenario, why in outcome.stopped.items():
        lines.append(f"  {scenario}: {why} (see the run in the UI; the full profile trains real experts)")
    if outcome.summary_dir:
        lines.append(f"  all scenarios: {outcome.summary_dir}/summary.md")
    lines.append("Open the UI on the same instance with `make ui` (dagster dev), then http://127.0.0.1:3000")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    from robosf_assets.sim.scenario import DEFAULT_SCENARIOS

    parser = argparse.ArgumentParser(prog="python -m robosf_assets.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the whole graph: every default scenario, seeds 0-4")
    demo.add_argument("--profile", default=os.environ.get("ROBOSF_PROFILE", "quick"), choices=["quick", "full"])
    pipe = sub.add_parser("pipeline", help="chosen scenarios and seeds")
    pipe.add_argument("--profile", default=os.environ.get("ROBOSF_PROFILE", "quick"), choices=["quick", "full"])
    pipe.add_argument("--scenario", nargs="+", default=list(DEFAULT_SCENARIOS))
    pipe.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    for p in (demo, pipe):
        p.add_argument("--workers", type=int, default=None,
                       help="scenario chains run side by side (default $ROBOSF_WORKERS, else min(2, cores))")
    args = parser.parse_args(argv)
    configure_logging("INFO")
    if args.command == "demo":
        return run(list(DEFAULT_SCENARIOS), [0, 1, 2, 3, 4], args.profile, args.workers)
    return run(args.scenario, args.seeds, args.profile, args.workers)


if __name__ == "__main__":
    sys.exit(main())
