"""``comparison_report`` per scenario (all seeds) with ``sample_efficiency_target``, and ``benchmark_summary``."""

import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from robosf_assets.artifacts import (
    atomic_save,
    atomic_write_json,
    atomic_write_text,
    build_manifest,
    new_run_dir,
    read_json,
    write_manifest,
)
from robosf_assets.benchmark.report import (
    compare,
    load_inputs_from_dirs,
    summary_markdown,
    write_report,
)
from robosf_assets.benchmark.summary import summary_markdown as summary_table
from robosf_assets.benchmark.summary import summary_png, summary_rows
from robosf_assets.defs.lookup import latest_metadata, seed_partitions_of
from robosf_assets.defs.metadata import png_markdown
from robosf_assets.defs.partitions import by_scenario, scenario_partitions, scenario_seed_partitions
from robosf_assets.defs.resources import OutputTree

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


def _latest_run_dirs(instance: dg.DagsterInstance, asset: str, scenario: str) -> dict[int, Path]:
    """Seed -> run directory of the latest materialisation of ``asset`` for each seed of ``scenario``."""
    latest = latest_metadata(instance, asset, seed_partitions_of(scenario_seed_partitions, scenario))
    return {int(partition.split("|")[1]): Path(md["run_dir"]) for partition, md in latest.items()}


@dg.asset(
    partitions_def=scenario_partitions,
    deps=[
        dg.AssetDep("finetuned_policy", partition_mapping=by_scenario),
        dg.AssetDep("baseline_policy", partition_mapping=by_scenario),
    ],
    group_name="comparison",
    description="Fine-tuned vs baseline over all seeds: time to threshold (censoring shown), ratio with bootstrap CIs.",
    check_specs=[dg.AssetCheckSpec(
        EFFICIENCY_CHECK, asset="comparison_report",
        description="Fine-tuned arm reaches the threshold in <= 0.70 of the baseline's steps, CI upper bound included.",
    )],
)
def comparison_report(context: dg.AssetExecutionContext, config: ReportConfig, output: OutputTree,
                      expert_policy: dict):
    """Reads every seed whose fine-tuned and baseline runs have both been materialised (matched seeds)."""
    scenario = context.partition_key
    finetuned = _latest_run_dirs(context.instance, "finetuned_policy", scenario)
    baseline = _latest_run_dirs(context.instance, "baseline_policy", scenario)
    seeds = sorted(set(finetuned) & set(baseline))
    if not seeds:
        raise dg.Failure(f"{scenario}: no seed has both a finetuned_policy and a baseline_policy yet")
    unmatched = sorted(set(finetuned) ^ set(baseline))
    if unmatched:
        context.log.warning(f"{scenario}: seeds {unmatched} have only one arm and are left out")
    demo = {read_json(finetuned[s] / "manifest.json")["demo_transitions"] for s in seeds}
    inputs = load_inputs_from_dirs(
        scenario, {s: finetuned[s] for s in seeds}, {s: baseline[s] for s in seeds},
        demo_transitions=max(demo), expert_steps=int(expert_policy["timesteps_used"]),
        target_success=config.target_success, max_collision=config.max_collision, k=config.consecutive_evals,
        ratio_target=config.ratio_target, statistic=config.statistic, n_resamples=config.n_resamples,
        min_seeds=config.min_seeds,
    )
    started = time.time()
    result = compare(inputs)
    out_dir = new_run_dir("reports", scenario, root=output.path())
    write_report(out_dir, inputs, result)
    write_manifest(out_dir, build_manifest(
        kind="comparison_report", partition=scenario, config=config.model_dump(),
        seeds={"matched_seeds": seeds}, artifact_dir=out_dir, started_at=started,
        extra={"expert_run": expert_policy["run_dir"]},
    ))
    verdict = result["verdict"]
    yield dg.Output(
        {"report_dir": str(out_dir), "scenario": scenario},
        metadata={
            "report_dir": dg.MetadataValue.path(str(out_dir)),
            "summary": dg.MetadataValue.md(summary_markdown(result)),
            "success_curves": png_markdown((out_dir / "success_curves.png").read_bytes(), "success curves"),
            "time_to_threshold": png_markdown((out_dir / "time_to_threshold.png").read_bytes(), "time to threshold"),
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
    deps=[dg.AssetDep("comparison_report", partition_mapping=dg.AllPartitionMapping())],
    group_name="comparison",
    description="All scenarios in one table and one figure (each scenario's latest comparison report).",
)
def benchmark_summary(context: dg.AssetExecutionContext, config: ReportConfig, output: OutputTree) -> dg.Output[dict]:
    latest = latest_metadata(context.instance, "comparison_report", scenario_partitions.get_partition_keys())
    if not latest:
        raise dg.Failure("no comparison_report has been materialised yet")
    reports = {scenario: read_json(Path(md["report_dir"]) / "report.json") for scenario, md in latest.items()}
    rows = summary_rows(reports)
    table = summary_table(rows, config.ratio_target)
    png = summary_png(rows, config.ratio_target)
    started = time.time()
    out_dir = new_run_dir("reports", "summary", root=output.path())
    atomic_write_json(out_dir / "summary.json", rows)
    atomic_write_text(out_dir / "summary.md", table + "\n")
    atomic_save(out_dir / "summary.png", lambda tmp: tmp.write_bytes(png))
    write_manifest(out_dir, build_manifest(kind="benchmark_summary", partition="all", config=config.model_dump(),
                                           seeds={}, artifact_dir=out_dir, started_at=started))
    return dg.Output({"summary_dir": str(out_dir), "rows": rows},
                     metadata={"table": dg.MetadataValue.md(table), "figure": png_markdown(png, "efficiency ratio"),
                               "summary_dir": dg.MetadataValue.path(str(out_dir))})
