"""Command line: ``python -m robosf_assets.cli demo [--profile quick|full]``.

``demo`` materialises the whole graph (every default scenario, seeds 0-4) as one Dagster
asset backfill on the instance in ``DAGSTER_HOME`` (the project's ``.dagster_home/`` when run
through ``make``): it starts ``dagster-daemon`` (or uses the one serving the instance, e.g.
``make ui``'s), submits the backfill, follows it (runs per stage, training progress), and
ends with where the reports are and the backfill's page in the UI. ``Ctrl-C`` cancels the
backfill. ``pipeline`` does the same for chosen scenarios and seeds; ``pool`` sets the
``training`` pool's limit (default: one per core).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

from robosf_assets.logs import configure_logging, logger

REPO = Path(__file__).resolve().parent.parent
POLL_S = 2.0
HEARTBEAT_S = 60.0  # a status line at least this often, even when nothing changed
PROGRESS_S = 30.0  # at most one progress line per run this often
UI_URL = os.environ.get("ROBOSF_UI_URL", "http://127.0.0.1:3000")
CANCELLED = 130  # exit code after Ctrl-C, as a shell reports SIGINT


def _home() -> Path:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(REPO / ".dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    return home


def default_training_slots() -> int:
    """The ``training`` pool's limit: ``$ROBOSF_TRAINING_SLOTS``, else one per core."""
    env = os.environ.get("ROBOSF_TRAINING_SLOTS")
    return max(1, int(env) if env else (os.cpu_count() or 1))


def set_training_pool(instance, slots: int) -> None:
    from robosf_assets.defs.guards import TRAINING_POOL

    instance.event_log_storage.set_concurrency_slots(TRAINING_POOL, slots)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def follow(instance, backfill_id: str, expected: dict[str, int], poll_s: float = POLL_S) -> str:
    """Print run counts per stage when they change and each run's training progress lines,
    until the backfill is done; its final status."""
    from robosf_assets.defs import backfill as bf

    cursors: dict[str, str | None] = {}
    shown: dict[str, float] = {}  # run id -> when its last progress line was printed
    last_line, last_time = "", 0.0
    while True:
        record = instance.get_backfill(backfill_id)
        runs = bf.backfill_runs(instance, backfill_id)
        line = bf.format_counts(bf.add_skipped(bf.stage_counts(runs), record, runs), expected)
        if line != last_line or time.monotonic() - last_time > HEARTBEAT_S:
            _say(f"[{time.strftime('%H:%M:%S')}] {line}")
            last_line, last_time = line, time.monotonic()
        for run in runs:
            if run.run_id in cursors and run.is_finished and cursors[run.run_id] == "done":
                continue
            lines, cursor = bf.progress_lines(instance, run, cursors.get(run.run_id))
            cursors[run.run_id] = "done" if run.is_finished else cursor
            # the newest line of each run, at most every PROGRESS_S (and a run's closing lines)
            now = time.monotonic()
            due = [t for t in lines if " done: " in t]
            if lines and now - shown.get(run.run_id, -PROGRESS_S) >= PROGRESS_S and lines[-1] not in due:
                due.append(lines[-1])
            if due:
                shown[run.run_id] = now
            for text in due:
                _say(f"    {text}")
        if record is not None and record.status in bf.DONE:
            return record.status.value
        time.sleep(poll_s)


def _summary_after(instance, context, extra: dict | None, backfill_id: str) -> str | None:
    """Queue ``summary_job`` over the reports that exist and wait for it; its directory or None."""
    import dagster as dg

    from robosf_assets.defs import backfill as bf

    run_id = bf.launch_summary(context, (extra or {}).get("benchmark_summary"), {"robosf/after_backfill": backfill_id})
    _say(f"a scenario stopped, so the backfill skipped benchmark_summary; queued summary_job run {run_id[:8]} "
         "for the scenarios that have reports")
    while not (run := instance.get_run_by_id(run_id)).is_finished:
        time.sleep(POLL_S)
    if run.status != dg.DagsterRunStatus.SUCCESS:
        _say(f"summary_job run {run_id[:8]} {run.status.value}: {bf.why_failed(instance, run_id)}")
        return None
    return bf.summary_dir_of(instance, run_id)


def expert_plan(profile: str, scenarios: list[str], extra: dict | None) -> str:
    """Where each scenario's expert will come from, said before the backfill starts."""
    from robosf_assets.training.expert import default_expert_source, has_shipped_expert, shipped_experts_dir

    source = ((extra or {}).get("expert_policy") or {}).get("expert_source") or default_expert_source(profile)
    if source != "shipped":
        return f"experts: trained here from scratch (expert_source {source})"
    shipped = [s for s in scenarios if has_shipped_expert(s)]
    trained = [s for s in scenarios if s not in shipped]
    parts = []
    if shipped:
        parts.append(f"shipped for {', '.join(shipped)}: trained by the full profile, not here, and validated "
                     f"again here ({shipped_experts_dir()})")
    if trained:
        parts.append(f"none shipped for {', '.join(trained)}: trained here from scratch")
    return "experts: " + "; ".join(parts)


def expert_sources(instance, backfill_id: str, scenarios: list[str]) -> dict[str, str]:
    """Each scenario's ``expert_source`` metadata (shipped or trained) as this backfill
    materialised its ``expert_policy``."""
    import dagster as dg

    from robosf_assets.defs import backfill as bf

    run_ids = {r.run_id for r in bf.backfill_runs(instance, backfill_id)}
    out = {}
    for scenario in scenarios:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("expert_policy"), asset_partitions=[scenario]),
            limit=1, ascending=False,
        ).records
        if records and records[0].run_id in run_ids:
            value = records[0].asset_materialization.metadata.get("expert_source")
            out[scenario] = str(value.value) if value is not None else "trained"
    return out


def _report(outcome, started: float, backfill_id: str, experts: dict[str, str] | None = None) -> None:
    lines = [f"\nBackfill {backfill_id} {outcome.status} after {time.time() - started:.0f} s ({outcome.runs} runs)."]
    for scenario, source in (experts or {}).items():
        lines.append(f"  {scenario}: expert {source}")
    if any(s.startswith("shipped") for s in (experts or {}).values()):
        lines.append("  (a shipped expert was trained by the full profile and ships with the repository; this run "
                     "only validated it again)")
    for scenario, report_dir in outcome.reports.items():
        lines.append(f"  {scenario}: report {report_dir}/report.md")
    for scenario, why in outcome.stopped.items():
        lines.append(f"  {scenario}: stopped at {why}")
    if outcome.summary_dir:
        lines.append(f"  all scenarios: {outcome.summary_dir}/summary.md")
    lines.append(f"In the UI (`make ui` on the same instance): {UI_URL}/runs/b/{backfill_id}?tab=runs")
    _say("\n".join(lines))


def run(scenarios: list[str], seeds: list[int], profile: str, extra: dict | None = None,
        training_slots: int | None = None) -> int:
    """Submit one backfill of the whole graph and follow it to the end; the exit code."""
    import dagster as dg

    from robosf_assets.defs import backfill as bf
    from robosf_assets.defs.daemon import ensure_daemon

    started = time.time()
    home = _home()
    with dg.DagsterInstance.get() as instance:  # creates the storage before any daemon opens it
        slots = training_slots or default_training_slots()
        set_training_pool(instance, slots)
        _say(f"profile {profile}, scenarios {scenarios}, seeds {seeds}, training pool {slots}, instance {home}")
        _say(expert_plan(profile, scenarios, extra))
        from robosf_assets.sim.scenario import scenario_load_errors

        for err in scenario_load_errors():  # not partitions: say so, the run goes on without them
            _say(f"scenario file skipped: {err.message}")
        daemon = ensure_daemon(instance, home)
        backfill_id: str | None = None
        try:
            with bf.graphql_context(instance) as context:
                title = f"{profile}: {', '.join(scenarios)} x seeds {', '.join(map(str, seeds))}"
                backfill_id = bf.launch(context, scenarios, seeds, bf.run_config(profile, extra), title=title,
                                        tags={"robosf/profile": profile})
                _say(f"backfill {backfill_id} submitted: {UI_URL}/runs/b/{backfill_id}?tab=runs")
                expected = bf.expected_runs(scenarios, seeds)
                try:
                    status = follow(instance, backfill_id, expected)
                except KeyboardInterrupt:
                    _say("\nCtrl-C: cancelling the backfill (its running runs are terminated); Ctrl-C again to leave now")
                    bf.cancel(context, backfill_id)
                    try:
                        status = follow(instance, backfill_id, expected)
                    except KeyboardInterrupt:
                        _say(f"left while cancelling; the daemon finishes it: {UI_URL}/runs/b/{backfill_id}")
                        return CANCELLED
                    _say(f"backfill {backfill_id} {status}")
                    return CANCELLED
                result = bf.outcome(instance, backfill_id, scenarios)
                if result.summary_dir is None and result.reports:
                    result.summary_dir = _summary_after(instance, context, extra, backfill_id)
            _report(result, started, backfill_id, expert_sources(instance, backfill_id, scenarios))
        finally:
            if daemon.proc is not None:
                # the daemon dies with this process: keep it while another command's backfill
                # still needs it (a second `cli pipeline` on the same instance found it running)
                while others := bf.backfills_in_progress(instance, backfill_id):
                    _say(f"keeping dagster-daemon for backfill(s) {', '.join(others)} still in progress; "
                         "Ctrl-C stops it")
                    try:
                        time.sleep(30)
                    except KeyboardInterrupt:
                        break
            daemon.stop(instance)
    return 0 if status in ("COMPLETED_SUCCESS", "COMPLETED_FAILED", "COMPLETED") else 1


def _check_scenarios(parser: argparse.ArgumentParser, scenarios: list[str]) -> None:
    from robosf_assets.envs import list_scenarios

    known = list(list_scenarios())
    unknown = [s for s in scenarios if s not in known]
    if unknown:
        parser.exit(2, f"unknown scenario{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                       f"known scenarios: {', '.join(known)} (add one with a TOML file on ROBOSF_SCENARIO_PATH)\n")


def _check_seeds(parser: argparse.ArgumentParser, seeds: list[int]) -> None:
    from robosf_assets.defs.partitions import DEFAULT_SEEDS

    unknown = [s for s in seeds if str(s) not in DEFAULT_SEEDS]
    if unknown:
        parser.exit(2, f"unknown seed(s) {unknown}; the seed partitions are {', '.join(DEFAULT_SEEDS)}\n")


def _read_config(parser: argparse.ArgumentParser, path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        extra = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        parser.error(f"--config {path}: {err}")
    if not isinstance(extra, dict) or not all(isinstance(v, dict) for v in extra.values()):
        parser.error(f"--config {path}: expected an object of asset name -> config object")
    from robosf_assets.defs import ASSETS

    known = sorted(key.to_user_string() for a in ASSETS for key in a.keys)
    unknown = sorted(set(extra) - set(known))
    if unknown:
        parser.exit(2, f"--config {path} names unknown assets {unknown}; known: {known}\n")
    return extra


def main(argv: list[str] | None = None) -> int:
    from robosf_assets.sim.scenario import DEFAULT_SCENARIOS

    parser = argparse.ArgumentParser(prog="python -m robosf_assets.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the whole graph: every default scenario, seeds 0-4")
    pipe = sub.add_parser("pipeline", help="chosen scenarios and seeds")
    pipe.add_argument("--scenario", nargs="+", default=list(DEFAULT_SCENARIOS))
    pipe.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    for p in (demo, pipe):
        p.add_argument("--profile", default=os.environ.get("ROBOSF_PROFILE", "quick"), choices=["quick", "full"])
        p.add_argument("--training-slots", type=int, default=None,
                       help="training runs at once (the `training` pool; default $ROBOSF_TRAINING_SLOTS, else one per core)")
        p.add_argument("--config", type=Path, default=None,
                       help='JSON file of per-asset config, e.g. {"baseline_policy": {"total_timesteps": 100000}}')
    pool = sub.add_parser("pool", help="set the training pool's limit on the instance")
    pool.add_argument("--slots", type=int, default=None, help="default $ROBOSF_TRAINING_SLOTS, else one per core")
    args = parser.parse_args(argv)
    configure_logging("INFO")
    # Dagster's notes on its own beta APIs (partition mappings) say nothing to a user of the CLI
    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
    if args.command == "pool":
        import dagster as dg

        _home()
        slots = args.slots or default_training_slots()
        with dg.DagsterInstance.get() as instance:
            set_training_pool(instance, slots)
        _say(f"training pool: {slots} run(s) at once on {os.environ['DAGSTER_HOME']}")
        return 0
    scenarios = list(DEFAULT_SCENARIOS) if args.command == "demo" else args.scenario
    seeds = [0, 1, 2, 3, 4] if args.command == "demo" else args.seeds
    _check_scenarios(parser, scenarios)
    _check_seeds(parser, seeds)
    extra = _read_config(parser, args.config)
    if args.training_slots is not None and args.training_slots < 1:
        parser.error("--training-slots must be at least 1")
    try:
        return run(scenarios, seeds, args.profile, extra, args.training_slots)
    except RuntimeError as err:  # the daemon would not start, GraphQL refused the backfill
        logger.error("{}", err)
        return 1
    except KeyboardInterrupt:  # before the backfill was submitted: nothing to cancel
        _say("interrupted before a backfill was submitted")
        return CANCELLED


if __name__ == "__main__":
    sys.exit(main())
