"""``comparison_report`` per scenario (all seeds) with ``sample_efficiency_target``, and ``benchmark_summary``.

Both compute from their inputs only: the policy references of every seed that has been
materialised (a missing seed partition is skipped), and the scenarios' report references.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import Field

from robosf_assets.comparison import ComparisonSettings, run_comparison, run_summary
from robosf_assets.defs.metadata import png_markdown
from robosf_assets.defs.partitions import by_scenario, scenario_partitions
from robosf_assets.defs.resources import OutputTree
from robosf_assets.logs import dagster_log_bridge
from robosf_assets.refs import ExpertRef, PolicyRef, ReportRef, StageRefused, SummaryRef

EFFICIENCY_CHECK = "sample_efficiency_target"


class ReportConfig(dg.Config):
    """How time to threshold and the efficiency ratio are judged."""

    target_success: float = Field(0.90, description="Success rate an evaluation must reach.")
    max_collision: float = Field(0.05, description="Collision rate an evaluation may not exceed.")
    consecutive_evals: int = Field(3, description="k: evaluations in a row that must meet both.")
    ratio_target: float = Field(0.70, description="sample_efficiency_target: fine-tuned / baseline steps, CI upper bound included.")
    statistic: str = Field("iqm", description="iqm or median of time to threshold across seeds.")
    n_resamples: int = Field(5000, description="Stratified bootstrap resamples.")
    min_seeds: int = Field(3, description="Matched seeds needed before a verdict can be 'met'.")

    def settings(self) -> ComparisonSettings:
        return ComparisonSettings(**self.model_dump())


def present(loaded: Mapping[str, Any] | None) -> list[Any]:
    """The values of a many-partition input whose missing partitions were skipped
    (``allow_missing_partitions``): ``{partition: value}``, in partition order."""
    return [v for v in (loaded or {}).values() if v is not None]


def _every_materialised(mapping: dg.PartitionMapping) -> dg.AssetIn:
    """An input of every upstream partition ``mapping`` gives that has been materialised."""
    return dg.AssetIn(partition_mapping=mapping, metadata={"allow_missing_partitions": True})


@dg.asset(
    partitions_def=scenario_partitions,
    ins={"finetuned_policy": _every_materialised(by_scenario), "baseline_policy": _every_materialised(by_scenario)},
    group_name="comparison",
    description="Fine-tuned vs baseline over all seeds: time to threshold (censoring shown), ratio with bootstrap CIs.",
    check_specs=[dg.AssetCheckSpec(
        EFFICIENCY_CHECK, asset="comparison_report",
        description="Fine-tuned arm reaches the threshold in <= 0.70 of the baseline's steps, CI upper bound included.",
    )],
)
def comparison_report(context: dg.AssetExecutionContext, config: ReportConfig, output: OutputTree,
                      expert_policy: ExpertRef, finetuned_policy: dict[str, PolicyRef],
                      baseline_policy: dict[str, PolicyRef]):
    """Compares every seed whose fine-tuned and baseline runs have both been materialised (matched seeds)."""
    with dagster_log_bridge(context.log, level="INFO"):
        try:
            outcome = run_comparison(config.settings(), expert_policy, present(finetuned_policy),
                                     present(baseline_policy), output.path())
        except StageRefused as e:
            raise dg.Failure(str(e)) from e
    verdict = outcome.verdict
    yield dg.Output(
        outcome.ref,
        metadata={
            "report_dir": dg.MetadataValue.path(str(outcome.ref.report_dir)),
            "summary": dg.MetadataValue.md(outcome.summary_md),
            "success_curves": png_markdown(outcome.success_curves_png, "success curves"),
            "time_to_threshold": png_markdown(outcome.time_to_threshold_png, "time to threshold"),
            "target_met": bool(verdict["target_met"]),
        },
    )
    yield dg.AssetCheckResult(
        check_name=EFFICIENCY_CHECK,
        passed=bool(verdict["target_met"]),
        severity=dg.AssetCheckSeverity.ERROR,  # not blocking: the summary still shows the failure
        description=verdict["sentence"],
        metadata={
            "ratio": verdict["point"] if verdict["point"] is not None else float("nan"),
            "ci_low": verdict["ci_low"] if verdict["ci_low"] is not None else float("nan"),
            "ci_upper_bound": verdict["ci_high"] if verdict["ci_high"] is not None else float("nan"),
            "target": config.ratio_target,
            "bound": str(verdict["bound"]),
            "reasons": "; ".join(verdict["reasons"]) or "none",
        },
    )


@dg.asset(
    ins={"comparison_report": _every_materialised(dg.AllPartitionMapping())},
    group_name="comparison",
    description="All scenarios in one table and one figure (each scenario's latest comparison report).",
)
def benchmark_summary(context: dg.AssetExecutionContext, config: ReportConfig, output: OutputTree,
                      comparison_report: dict[str, ReportRef]) -> dg.Output[SummaryRef]:
    with dagster_log_bridge(context.log, level="INFO"):
        try:
            outcome = run_summary(config.settings(), present(comparison_report), output.path())
        except StageRefused as e:
            raise dg.Failure(str(e)) from e
    return dg.Output(outcome.ref, metadata={
        "table": dg.MetadataValue.md(outcome.table_md), "figure": png_markdown(outcome.png, "efficiency ratio"),
        "summary_dir": dg.MetadataValue.path(str(outcome.ref.summary_dir)),
    })
