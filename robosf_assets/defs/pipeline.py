"""The whole pipeline, stage by stage, on a Dagster instance (what ``make demo`` runs).

The graph spans three partitionings (scenario, scenario x seed, none), so one Dagster run
cannot hold it; this driver materialises it as an ordered chain of runs, each recorded on
the instance and visible afterwards in ``dagster dev``:

1. per scenario: ``expert_policy``, ``trajectory_dataset``, ``validated_dataset``
   (a failed promotion bar or dataset check stops that scenario here, honestly);
2. per scenario x seed: ``bc_policy``, ``finetuned_policy``, ``baseline_policy``;
3. per scenario: ``comparison_report``; then ``benchmark_summary``.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

from robosf_assets.logging import get_logger

log = get_logger("pipeline")

STAGE_1 = ["expert_policy", "trajectory_dataset", "validated_dataset"]
STAGE_2 = ["bc_policy", "finetuned_policy", "baseline_policy"]


@dataclass
class PipelineOutcome:
    """What happened per scenario; ``stopped`` says where and why a scenario's chain ended."""

    reports: dict[str, str] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    summary_dir: str | None = None


def _console(level: str) -> dict:
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def _check_failures(result) -> list[str]:
    return [f"{e.asset_key.to_user_string()}: {e.check_name}" for e in result.get_asset_check_evaluations()
            if not e.passed]


def run_pipeline(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    scenarios: Sequence[str],
    seeds: Sequence[int],
    profile: str,
    *,
    resources: dict | None = None,
    log_level: str = "INFO",
    extra_config: dict | None = None,
    summary: bool = True,
) -> PipelineOutcome:
    """Materialise the graph for ``scenarios`` x ``seeds`` with ``profile`` on ``instance``.

    :param extra_config: per-asset config merged over ``{"profile": profile}`` (e.g. tiny budgets in tests).
    :param summary: materialise ``benchmark_summary`` at the end (when some report was made).
    """
    assets = list(defs.assets)
    extra = extra_config or {}
    resources = resources or dict(defs.resources or {})

    def ops(names: Sequence[str]) -> dict:
        ops_cfg = {}
        for name in names:
            cfg = dict(extra.get(name, {}))
            if name in ("expert_policy", "bc_policy", "finetuned_policy", "baseline_policy"):
                cfg.setdefault("profile", profile)
            ops_cfg[name] = {"config": cfg}
        return {"ops": ops_cfg, **_console(log_level)}

    def materialize(selection, partition_key=None):
        return dg.materialize(assets, selection=selection, partition_key=partition_key, instance=instance,
                              resources=resources, run_config=ops(selection), raise_on_error=False)

    outcome = PipelineOutcome()
    for scenario in scenarios:
        log.info("stage 1/3 {}: expert, dataset, validation", scenario)
        first = materialize(STAGE_1, scenario)
        failed = _check_failures(first)
        if not first.success or failed:
            outcome.stopped[scenario] = f"stage 1 stopped ({', '.join(failed) or 'a step failed'})"
            log.warning("{}: {}; later stages skipped for this scenario", scenario, outcome.stopped[scenario])
            continue
        for seed in seeds:
            log.info("stage 2/3 {} seed {}: BC, fine-tuning, baseline", scenario, seed)
            key = dg.MultiPartitionKey({"scenario": scenario, "seed": str(seed)})
            second = materialize(STAGE_2, key)
            if not second.success:
                outcome.stopped[scenario] = f"stage 2 failed for seed {seed}"
                break
        if scenario in outcome.stopped:
            continue
        log.info("stage 3/3 {}: comparison report", scenario)
        third = materialize(["comparison_report"], scenario)
        if third.success:
            outcome.reports[scenario] = third.output_for_node("comparison_report")["report_dir"]
        else:
            outcome.stopped[scenario] = "comparison report failed"
    if summary and outcome.reports:
        outcome.summary_dir = materialize_summary(defs, instance, resources=resources, log_level=log_level)
    return outcome


def materialize_summary(
    defs: dg.Definitions, instance: dg.DagsterInstance, *, resources: dict | None = None, log_level: str = "INFO"
) -> str | None:
    """Materialise ``benchmark_summary`` from the latest reports; its directory, or None if it failed."""
    result = dg.materialize(list(defs.assets), selection=["benchmark_summary"], instance=instance,
                            resources=resources or dict(defs.resources or {}), run_config=_console(log_level),
                            raise_on_error=False)
    return result.output_for_node("benchmark_summary")["summary_dir"] if result.success else None
