"""Command line: ``python -m robosf_assets.cli demo [--profile quick|full]``.

``demo`` materialises the whole graph (every default scenario, seeds 0-4) on the Dagster
instance in ``DAGSTER_HOME`` (the project's ``.dagster_home/`` when run through ``make``),
then prints where the reports are and how to open the UI. ``pipeline`` does the same for
chosen scenarios and seeds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
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


_STAGES: dict = {}


def _stages(profile: str, extra: dict | None):
    """This process's :class:`~robosf_assets.defs.pipeline.Stages` (built once per worker)."""
    key = (profile, json.dumps(extra, sort_keys=True))
    if key not in _STAGES:
        from robosf_assets.defs import build_definitions
        from robosf_assets.defs.pipeline import Stages

        configure_logging("INFO")
        # progress comes through loguru on stderr; Dagster's own console logger only shows warnings
        _STAGES[key] = Stages(build_definitions(), _instance(), profile, log_level="WARNING", extra_config=extra)
    return _STAGES[key]


def _expert_and_dataset(scenario: str, profile: str, extra: dict | None) -> str | None:
    return _stages(profile, extra).expert_and_dataset(scenario)


def _arms(scenario: str, seed: int, profile: str, extra: dict | None) -> bool:
    return _stages(profile, extra).arms(scenario, seed)


def default_workers() -> int:
    """Worker processes: ``$ROBOSF_WORKERS``, else one per core up to 2 (each trains on one thread)."""
    env = os.environ.get("ROBOSF_WORKERS")
    workers = int(env) if env else min(2, os.cpu_count() or 1)
    return max(1, workers)


def _run_parallel(scenarios: list[str], seeds: list[int], profile: str, workers: int, extra: dict | None):
    """Stage 1 of every scenario, then stage 2 of each (scenario, seed) as soon as its stage 1
    went through, spread over ``workers`` processes; stage 3 and the summary here."""
    from robosf_assets.defs.pipeline import PipelineOutcome, materialize_summary

    outcome = PipelineOutcome()
    failed: dict[str, list[int]] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        first = {pool.submit(_expert_and_dataset, sc, profile, extra): sc for sc in scenarios}
        second = {}
        for done in as_completed(first):
            scenario = first[done]
            why = done.result()
            if why is not None:
                outcome.stopped[scenario] = why
                continue
            for seed in seeds:
                second[pool.submit(_arms, scenario, seed, profile, extra)] = (scenario, seed)
        for done in as_completed(second):
            scenario, seed = second[done]
            if not done.result():
                failed.setdefault(scenario, []).append(seed)
    stages = _stages(profile, extra)
    for scenario in scenarios:
        if scenario in outcome.stopped:
            continue
        if scenario in failed:
            outcome.stopped[scenario] = f"stage 2 failed for seed(s) {sorted(failed[scenario])}"
            continue
        outcome.record_report(scenario, stages.report(scenario))
    if outcome.reports:
        outcome.summary_dir = materialize_summary(stages.defs, stages.instance, log_level="WARNING")
    return outcome


def run(scenarios: list[str], seeds: list[int], profile: str, workers: int | None = None,
        extra: dict | None = None) -> int:
    from robosf_assets.defs import build_definitions
    from robosf_assets.defs.pipeline import run_pipeline

    started = time.time()
    defs = build_definitions()
    if extra:
        known = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
        unknown = sorted(set(extra) - known)
        if unknown:
            logger.error("--config names unknown assets {}; known: {}", unknown, sorted(known))
            return 2
    instance = _instance()
    workers = default_workers() if workers is None else max(1, workers)
    logger.info("profile {}, scenarios {}, seeds {}, {} worker process(es), Dagster instance {}", profile,
                scenarios, seeds, workers, os.environ["DAGSTER_HOME"])
    if workers == 1:
        outcome = run_pipeline(defs, instance, scenarios, seeds, profile, log_level="WARNING", extra_config=extra)
    else:
        # stage runs are independent within a stage, so they spread over worker processes;
        # every run lands on the same instance
        outcome = _run_parallel(scenarios, seeds, profile, workers, extra)
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
                       help="worker processes for the stage runs (default $ROBOSF_WORKERS, else min(2, cores))")
        p.add_argument("--config", type=Path, default=None,
                       help='JSON file of per-asset config, e.g. {"baseline_policy": {"total_timesteps": 100000}}')
    args = parser.parse_args(argv)
    configure_logging("INFO")
    extra = None
    if args.config is not None:
        try:
            extra = json.loads(args.config.read_text())
        except (OSError, ValueError) as err:
            parser.error(f"--config {args.config}: {err}")
        if not isinstance(extra, dict) or not all(isinstance(v, dict) for v in extra.values()):
            parser.error(f"--config {args.config}: expected an object of asset name -> config object")
    if args.command == "demo":
        return run(list(DEFAULT_SCENARIOS), [0, 1, 2, 3, 4], args.profile, args.workers, extra)
    return run(args.scenario, args.seeds, args.profile, args.workers, extra)


if __name__ == "__main__":
    sys.exit(main())
