"""The whole graph as one Dagster asset backfill: submit it, follow it, cancel it, read its outcome.

A backfill of every asset for chosen scenarios and seeds is submitted with GraphQL's
``launchPartitionBackfill`` (what the UI's "Materialize all" sends) through an in-process
GraphQL context on the instance; the daemon then launches each stage's runs once their
parents have materialised:

1. ``expert_policy``, ``trajectory_dataset``, ``validated_dataset``: one run per scenario;
2. ``bc_policy``, ``finetuned_policy``, ``baseline_policy``: one run per scenario x seed;
3. ``comparison_report``: one run per scenario; then ``benchmark_summary``: one run.

A failed run (a failed blocking check, an input a stage refuses) marks its scenario's
downstream partitions failed and they are never launched; other scenarios go on.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus

REPO = Path(__file__).resolve().parents[2]
BACKFILL_TAG = "dagster/backfill"
PARTITION_TAG = "dagster/partition"

# stage -> its assets, in the order the backfill runs them
STAGES: dict[str, tuple[str, ...]] = {
    "expert+dataset": ("expert_policy", "trajectory_dataset", "validated_dataset"),
    "arms": ("bc_policy", "finetuned_policy", "baseline_policy"),
    "report": ("comparison_report",),
    "summary": ("benchmark_summary",),
}
TRAINING_ASSETS = ("expert_policy", "bc_policy", "finetuned_policy", "baseline_policy")
SCENARIO_ASSETS = STAGES["expert+dataset"] + STAGES["report"]
DONE = {BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS, BulkActionStatus.COMPLETED_FAILED,
        BulkActionStatus.FAILED, BulkActionStatus.CANCELED}
QUEUED = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING}

_LAUNCH = """
mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
  ... on Error { message } } }
"""
_CANCEL = """
mutation ($id: String!) { cancelPartitionBackfill(backfillId: $id) {
  __typename ... on CancelBackfillSuccess { backfillId } ... on PythonError { message } ... on Error { message } } }
"""


class BackfillError(RuntimeError):
    """The GraphQL answer was an error (its message says why)."""


def stage_of(run: dg.DagsterRun) -> str:
    """The stage a backfill run belongs to, from its asset selection."""
    names = {key.to_user_string() for key in (run.asset_selection or ())}
    return next((stage for stage, assets in STAGES.items() if names & set(assets)), "other")


def run_config(profile: str, extra: dict[str, dict] | None = None) -> dict:
    """Run config of every run of the backfill: the profile on the training assets, ``extra`` merged over it."""
    ops: dict[str, dict] = {name: {"config": {"profile": profile}} for name in TRAINING_ASSETS}
    for name, cfg in (extra or {}).items():
        ops.setdefault(name, {"config": {}})["config"].update(cfg)
    return {"ops": ops}


def partitions_by_assets(scenarios: Sequence[str], seeds: Sequence[int]) -> list[dict]:
    """GraphQL ``PartitionsByAssetSelector`` list: every asset, for these scenarios and seeds."""
    def ranges(keys):
        return {"ranges": [{"start": k, "end": k} for k in keys]}

    per_seed = [f"{s}|{seed}" for s in scenarios for seed in seeds]
    out = [{"assetKey": {"path": [name]}, "partitions": ranges(scenarios)} for name in SCENARIO_ASSETS]
    out += [{"assetKey": {"path": [name]}, "partitions": ranges(per_seed)} for name in STAGES["arms"]]
    out.append({"assetKey": {"path": ["benchmark_summary"]}, "partitions": None})
    return out


def expected_runs(scenarios: Sequence[str], seeds: Sequence[int]) -> dict[str, int]:
    """Runs each stage takes when nothing fails."""
    n = len(scenarios)
    return {"expert+dataset": n, "arms": n * len(seeds), "report": n, "summary": 1}


@contextmanager
def graphql_context(instance: dg.DagsterInstance, workspace: Path = REPO / "workspace.yaml") -> Iterator[Any]:
    """An in-process GraphQL context on ``instance`` with the project's code location loaded."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace)]),
                                 code_server_log_level="WARNING") as context:
        yield context


def _execute(context: Any, query: str, variables: dict) -> dict:
    from dagster_graphql.cli import execute_query

    answer = execute_query(context, query, variables)
    if answer.get("errors"):
        raise BackfillError(json.dumps(answer["errors"])[:3000])
    (payload,) = answer["data"].values()
    if payload["__typename"] not in ("LaunchBackfillSuccess", "CancelBackfillSuccess"):
        raise BackfillError(f"{payload['__typename']}: {payload.get('message')}")
    return payload


def launch(context: Any, scenarios: Sequence[str], seeds: Sequence[int], config: dict, *,
           title: str, tags: dict[str, str] | None = None) -> str:
    """Submit the backfill; its id."""
    params = {
        "partitionsByAssets": partitions_by_assets(scenarios, seeds),
        "runConfigData": config,
        "title": title,
        "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()],
    }
    return _execute(context, _LAUNCH, {"params": params})["backfillId"]


_LAUNCH_RUN = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on Error { message } } }
"""


def launch_summary(context: Any, config: dict | None, tags: dict[str, str]) -> str:
    """Queue one run of ``summary_job`` (the scenarios whose reports exist); its run id.

    A backfill never launches ``benchmark_summary`` once a scenario failed (the summary is
    downstream of every scenario's report), so the command line asks for it afterwards.
    """
    from dagster_graphql.cli import execute_query

    location = context.create_request_context().code_location_names[0]
    params = {
        "selector": {"repositoryLocationName": location, "repositoryName": "__repository__", "jobName": "summary_job"},
        "runConfigData": {"ops": {"benchmark_summary": {"config": config}}} if config else {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    answer = execute_query(context, _LAUNCH_RUN, {"params": params})
    if answer.get("errors"):
        raise BackfillError(json.dumps(answer["errors"])[:3000])
    payload = answer["data"]["launchRun"]
    if payload["__typename"] != "LaunchRunSuccess":
        raise BackfillError(f"{payload['__typename']}: {payload.get('message')}")
    return payload["run"]["runId"]


def summary_dir_of(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """Where the summary of a finished ``summary_job`` run went, if it materialised."""
    md = _materialised_in(instance, "benchmark_summary", None, {run_id})
    return str(md["summary_dir"]) if md else None


def cancel(context: Any, backfill_id: str) -> None:
    """Ask the daemon to cancel the backfill: no new runs, in-progress runs terminated."""
    _execute(context, _CANCEL, {"id": backfill_id})


def backfill_runs(instance: dg.DagsterInstance, backfill_id: str) -> list[dg.DagsterRun]:
    """Every run of the backfill, retries included, oldest first."""
    records = instance.get_run_records(filters=dg.RunsFilter(tags={BACKFILL_TAG: backfill_id}))
    return [r.dagster_run for r in sorted(records, key=lambda r: (r.create_timestamp, r.dagster_run.run_id))]


def latest_attempts(runs: Sequence[dg.DagsterRun]) -> dict[tuple[str, str], dg.DagsterRun]:
    """(stage, partition) -> the newest run for it (a retry replaces the run it retried)."""
    out = {}
    for run in runs:  # oldest first
        out[(stage_of(run), run.tags.get(PARTITION_TAG, ""))] = run
    return out


def stage_counts(runs: Sequence[dg.DagsterRun]) -> dict[str, Counter]:
    """Stage -> Counter of queued / running / done / failed / canceled over the newest attempts."""
    counts: dict[str, Counter] = {stage: Counter() for stage in STAGES}
    for (stage, _), run in latest_attempts(runs).items():
        if run.status in QUEUED:
            state = "queued"
        elif run.status == dg.DagsterRunStatus.STARTED:
            state = "running"
        elif run.status == dg.DagsterRunStatus.SUCCESS:
            state = "done"
        elif run.status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.CANCELING):
            state = "canceled"
        else:
            state = "failed"
        counts.setdefault(stage, Counter())[state] += 1
    return counts


def backfills_in_progress(instance: dg.DagsterInstance, except_id: str | None = None) -> list[str]:
    """Ids of the instance's backfills that are not done (the daemon still has work for them)."""
    return [b.backfill_id for b in instance.get_backfills(limit=100)
            if b.status not in DONE and b.backfill_id != except_id]


def add_skipped(counts: dict[str, Counter], backfill, runs: Sequence[dg.DagsterRun]) -> dict[str, Counter]:
    """Count as ``skipped`` the partitions the backfill marked failed without launching them
    (downstream of a failed run)."""
    data = getattr(backfill, "asset_backfill_data", None)
    if data is None:
        return counts
    stage_by_asset = {name: stage for stage, assets in STAGES.items() for name in assets}
    launched = {(stage_of(r), r.tags.get(PARTITION_TAG, "")) for r in runs}
    skipped = set()
    for item in data.failed_and_downstream_subset.iterate_asset_partitions():
        key = (stage_by_asset.get(item.asset_key.to_user_string(), "other"), str(item.partition_key or ""))
        if key not in launched:
            skipped.add(key)
    for stage, _ in skipped:
        counts.setdefault(stage, Counter())["skipped"] += 1
    return counts


def format_counts(counts: dict[str, Counter], expected: dict[str, int]) -> str:
    """``expert+dataset 1/2 done, 1 running | arms 0/10 | ...``."""
    parts = []
    for stage, total in expected.items():
        c = counts.get(stage, Counter())
        extra = ", ".join(f"{c[k]} {k}" for k in ("running", "queued", "failed", "canceled", "skipped") if c[k])
        parts.append(f"{stage} {c['done']}/{total} done" + (f", {extra}" if extra else ""))
    return " | ".join(parts)


def why_failed(instance: dg.DagsterInstance, run_id: str) -> str:
    """What stopped a run: failed checks, the step's error, or the run failure message."""
    reasons = []
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if not evaluation.passed:
            reasons.append(f"check {evaluation.check_name} failed: {evaluation.description or ''}".rstrip(": "))
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records:
        event = record.event_log_entry.dagster_event
        data = event.step_failure_data
        if data.error and data.error.cls_name == "DagsterAssetCheckFailedError":
            continue  # the failed check itself is reported above, with its description
        user = data.user_failure_data.description if data.user_failure_data else None
        message = user or (data.error.message.strip().splitlines()[-1] if data.error else "step failed")
        reasons.append(f"{event.step_key}: {message}")
    if not reasons:  # the run itself failed: a process that died, code that would not load
        for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
            error = record.event_log_entry.dagster_event.engine_event_data.error
            if error is not None:
                reasons.append(f"{record.event_log_entry.dagster_event.message}: {error.message.strip().splitlines()[-1]}")
    if not reasons:
        for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records:
            reasons.append(record.event_log_entry.dagster_event.message or "run failed")
    return "; ".join(reasons) or "run failed"


@dataclass
class Outcome:
    """What the backfill left: per scenario a report or why it stopped; the summary."""

    backfill_id: str
    status: str
    reports: dict[str, str] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    summary_dir: str | None = None
    runs: int = 0


def _materialised_in(instance: dg.DagsterInstance, asset: str, partition: str | None, run_ids: set[str]):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1, ascending=False,
    ).records
    if records and records[0].run_id in run_ids:
        return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
    return None


def outcome(instance: dg.DagsterInstance, backfill_id: str, scenarios: Sequence[str]) -> Outcome:
    """Read the finished backfill: each scenario's report directory or the first stage that failed and why."""
    backfill = instance.get_backfill(backfill_id)
    runs = backfill_runs(instance, backfill_id)
    result = Outcome(backfill_id, backfill.status.value if backfill else "UNKNOWN", runs=len(runs))
    run_ids = {r.run_id for r in runs}
    attempts = latest_attempts(runs)
    for scenario in scenarios:
        md = _materialised_in(instance, "comparison_report", scenario, run_ids)
        if md is not None:
            result.reports[scenario] = str(md["report_dir"])
            continue
        failed = [(stage, part, run) for (stage, part), run in attempts.items()
                  if part.split("|")[0] == scenario and run.status not in QUEUED | {dg.DagsterRunStatus.SUCCESS}]
        if failed:
            stage, part, run = min(failed, key=lambda f: list(STAGES).index(f[0]))
            later = [s for s in STAGES if list(STAGES).index(s) > list(STAGES).index(stage) and s != "summary"]
            result.stopped[scenario] = (f"stage {stage} ({part}, run {run.run_id[:8]} {run.status.value.lower()}): "
                                        f"{why_failed(instance, run.run_id)}"
                                        + (f"; not run: {', '.join(later)}" if later else ""))
        else:
            result.stopped[scenario] = "no report (the backfill did not get there)"
    md = _materialised_in(instance, "benchmark_summary", None, run_ids)
    if md is not None:
        result.summary_dir = str(md["summary_dir"])
    return result


# the core's progress lines (robosf_assets.logs.format_progress and training.ppo):
# "ppo crossing seed 0: 12,288/999,424 steps (1.2%) 1,965 steps/s ETA 6m18s | ..." and "... done: ..."
PROGRESS = re.compile(r"[\d,]+/[\d,]+ [a-z]+ \([\d.]+%\)| done: ")


def progress_lines(instance: dg.DagsterInstance, run: dg.DagsterRun, cursor: str | None) -> tuple[list[str], str | None]:
    """New training progress lines of a run since ``cursor`` (without the ``[component]`` prefix)."""
    result = instance.get_records_for_run(run.run_id, cursor=cursor, limit=1000)
    lines = []
    for record in result.records:
        text = record.event_log_entry.user_message or ""
        if record.event_log_entry.dagster_event is None and PROGRESS.search(text):
            lines.append(re.sub(r"^\[[\w.]+\] ", "", text))
    return lines, result.cursor
