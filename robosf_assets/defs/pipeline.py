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

    def record_report(self, scenario: str, report_dir: str | None) -> None:
        """Stage 3's outcome: the report's directory, or None when it failed."""
        if report_dir is None:
            self.stopped[scenario] = "comparison report failed"
        else:
            self.reports[scenario] = report_dir


def _console(level: str) -> dict:
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def _check_failures(result) -> list[str]:
    return [f"{e.asset_key.to_user_string()}: {e.check_name}" for e in result.get_asset_check_evaluations()
            if not e.passed]


@dataclass
class Stages:
    """The three stages on one instance: each call is one recorded Dagster run.

    :param extra_config: per-asset config merged over ``{"profile": profile}`` (e.g. tiny budgets in tests).
    """

    defs: dg.Definitions
    instance: dg.DagsterInstance
    profile: str
    resources: dict | None = None
    log_level: str = "INFO"
    extra_config: dict | None = None

    def _ops(self, names: Sequence[str]) -> dict:
        ops_cfg = {}
        for name in names:
            cfg = dict((self.extra_config or {}).get(name, {}))
            if name in ("expert_policy", "bc_policy", "finetuned_policy", "baseline_policy"):
                cfg.setdefault("profile", self.profile)
            ops_cfg[name] = {"config": cfg}
        return {"ops": ops_cfg, **_console(self.log_level)}

    def _materialize(self, selection: Sequence[str], partition_key=None):
        return dg.materialize(list(self.defs.assets), selection=selection, partition_key=partition_key,
                              instance=self.instance, resources=self.resources or dict(self.defs.resources or {}),
                              run_config=self._ops(selection), raise_on_error=False)

    def expert_and_dataset(self, scenario: str) -> str | None:
        """Stage 1; None when it went through, else why the scenario stops here."""
        log.info("stage 1/3 {}: expert, dataset, validation", scenario)
        first = self._materialize(STAGE_1, scenario)
        failed = _check_failures(first)
        if not first.success or failed:
            why = f"stage 1 stopped ({', '.join(failed) or 'a step failed'})"
            log.warning("{}: {}; later stages skipped for this scenario", scenario, why)
            return why
        return None

    def arms(self, scenario: str, seed: int) -> bool:
        """Stage 2 for one seed; whether it succeeded."""
        log.info("stage 2/3 {} seed {}: BC, fine-tuning, baseline", scenario, seed)
        key = dg.MultiPartitionKey({"scenario": scenario, "seed": str(seed)})
        return self._materialize(STAGE_2, key).success

    def report(self, scenario: str) -> str | None:
        """Stage 3; the report directory, or None if it failed."""
        log.info("stage 3/3 {}: comparison report", scenario)
        third = self._materialize(["comparison_report"], scenario)
        return third.output_for_node("comparison_report")["report_dir"] if third.success else None


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
    """Materialise the graph for ``scenarios`` x ``seeds`` with ``profile`` on ``instance``, one run at a time.

    :param extra_config: per-asset config merged over ``{"profile": profile}`` (e.g. tiny budgets in tests).
    :param summary: materialise ``benchmark_summary`` at the end (when some report was made).
    """
    stages = Stages(defs, instance, profile, resources, log_level, extra_config)
    outcome = PipelineOutcome()
    for scenario in scenarios:
        why = stages.expert_and_dataset(scenario)
        if why is not None:
            outcome.stopped[scenario] = why
            continue
        failed = next((seed for seed in seeds if not stages.arms(scenario, seed)), None)
        if failed is not None:
            outcome.stopped[scenario] = f"stage 2 failed for seed {failed}"
            continue
        outcome.record_report(scenario, stages.report(scenario))
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
