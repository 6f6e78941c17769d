"""``trajectory_dataset`` (a new iteration per materialisation) and ``validated_dataset``."""

import dagster as dg
from pydantic import Field

from robosf_assets.datasets.record import DatasetSettings, run_trajectory_dataset
from robosf_assets.datasets.validate import run_validated_dataset
from robosf_assets.defs.metadata import png_markdown
from robosf_assets.defs.partitions import scenario_partitions
from robosf_assets.defs.resources import OutputTree
from robosf_assets.logs import dagster_log_bridge
from robosf_assets.refs import DatasetRef, ExpertRef, StageRefused, ValidatedDatasetRef

SIZE_CHECK = "dataset_size_within_cap"
COUNT_CHECK = "episode_count_minimum"
INTEGRITY_CHECK = "dataset_integrity"


class DatasetConfig(dg.Config):
    """Recording the expert's demonstrations and the limits they are checked against."""

    n_episodes: int = Field(200, description="Episodes recorded with the expert acting deterministically.")
    seed_base: int = Field(3_000_000, description="Episode k uses seed seed_base + k (disjoint from training and evaluation).")
    n_envs: int = Field(16, description="Worlds stepped together while recording.")
    min_episodes: int = Field(200, description="episode_count_minimum: episodes required.")
    size_cap_gb: float = Field(25.0, description="dataset_size_within_cap: maximum size on disk (10**9 bytes).")
    render_sample: bool = Field(True, description="Render episode 0 top-down into the metadata.")

    def settings(self) -> DatasetSettings:
        return DatasetSettings(**self.model_dump())


@dg.asset(
    partitions_def=scenario_partitions,
    group_name="datasets",
    kinds={"numpy"},
    description="Expert demonstrations: output/datasets/<scenario>/iter-NNNN/ (NPZ arrays, episodes JSONL, manifest).",
    check_specs=[
        dg.AssetCheckSpec(SIZE_CHECK, asset="trajectory_dataset", blocking=True, description="Dataset at most 25 GB (configurable)."),
        dg.AssetCheckSpec(COUNT_CHECK, asset="trajectory_dataset", blocking=True, description="At least 200 episodes (configurable)."),
        dg.AssetCheckSpec(
            INTEGRITY_CHECK, asset="trajectory_dataset", blocking=True,
            description="Checksums, array alignment, finite values, ranges and metadata completeness.",
        ),
    ],
)
def trajectory_dataset(context: dg.AssetExecutionContext, config: DatasetConfig, output: OutputTree,
                       expert_policy: ExpertRef):
    with dagster_log_bridge(context.log, level="INFO"):
        try:
            outcome = run_trajectory_dataset(config.settings(), expert_policy, output.path(), run_id=context.run_id)
        except StageRefused as e:
            raise dg.Failure(str(e)) from e
    manifest, size, count, integrity = outcome.manifest, outcome.size, outcome.count, outcome.integrity
    iter_dir = outcome.ref.iter_dir
    metadata = {
        "iteration_dir": dg.MetadataValue.path(str(iter_dir)),
        "iteration": iter_dir.name,
        "dataset_id": manifest["dataset_id"],
        "episodes": manifest["n_episodes"],
        "transitions": manifest["n_transitions"],
        "recorded_transitions_per_s": manifest["recording"]["transitions_per_s"],
        "bytes": size.value if size.value is not None else -1,
        "source_expert": dg.MetadataValue.path(str(expert_policy.run_dir)),
        "coverage": dg.MetadataValue.json(manifest["scenario_coverage"]),
    }
    if outcome.sample_png is not None:
        metadata["sample_episode"] = png_markdown(outcome.sample_png, "episode 0")
    yield dg.Output(outcome.ref, metadata=metadata)
    for name, result in ((SIZE_CHECK, size), (COUNT_CHECK, count)):
        yield dg.AssetCheckResult(
            check_name=name, passed=bool(result.passed), severity=dg.AssetCheckSeverity.ERROR,
            description=result.detail, metadata={"value": result.value if result.value is not None else -1,
                                                 "reasons": "; ".join(result.reasons) or "none"},
        )
    yield dg.AssetCheckResult(
        check_name=INTEGRITY_CHECK, passed=integrity.passed, severity=dg.AssetCheckSeverity.ERROR,
        description=integrity.status, metadata={"reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in integrity.reasons) or "none"),
                                                "failed_checks": ", ".join(integrity.failed_checks()) or "none"},
    )


@dg.asset(
    partitions_def=scenario_partitions,
    group_name="datasets",
    description="The dataset iteration after full validation: status validated or quarantined, with every reason.",
)
def validated_dataset(context: dg.AssetExecutionContext, config: DatasetConfig,
                      trajectory_dataset: DatasetRef) -> dg.Output[ValidatedDatasetRef]:
    with dagster_log_bridge(context.log, level="INFO"):
        outcome = run_validated_dataset(config.settings(), trajectory_dataset)
    report = outcome.report
    return dg.Output(
        outcome.ref,
        metadata={
            "status": report.status,
            "iteration_dir": dg.MetadataValue.path(str(trajectory_dataset.iter_dir)),
            "report": dg.MetadataValue.path(str(outcome.report_path)),
            "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in report.reasons) or "none"),
            "validation_seconds": round(report.elapsed_s, 3),
            "episodes": report.counts.get("episodes") or 0,
        },
    )
