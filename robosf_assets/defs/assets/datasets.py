"""``trajectory_dataset`` (a new iteration per materialisation) and ``validated_dataset``."""

from pathlib import Path

import dagster as dg
from pydantic import Field
from stable_baselines3 import PPO

from robosf_assets.datasets.load import read_manifest
from robosf_assets.datasets.playback import render_episode
from robosf_assets.datasets.record import record_dataset
from robosf_assets.datasets.schema import scenario_dir
from robosf_assets.datasets.validate import (
    check_episode_count,
    check_size_cap,
    validate_dataset,
    write_integrity_report,
)
from robosf_assets.defs.metadata import png_markdown
from robosf_assets.defs.partitions import scenario_partitions
from robosf_assets.defs.resources import OutputTree
from robosf_assets.envs.rollout import sb3_policy
from robosf_assets.logs import dagster_log_bridge
from robosf_assets.training.expert import verify_model

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


def _cap_bytes(config: DatasetConfig) -> int:
    return int(config.size_cap_gb * 10**9)


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
def trajectory_dataset(context: dg.AssetExecutionContext, config: DatasetConfig, output: OutputTree, expert_policy: dict):
    scenario = context.partition_key
    if not expert_policy["promoted"]:
        raise dg.Failure(
            f"expert {expert_policy['run_dir']} did not pass the promotion bar; no dataset is built from a failed expert",
        )
    verify_model(Path(expert_policy["model_path"]), expert_policy["model_sha256"])
    model = PPO.load(expert_policy["model_path"], device="cpu")
    with dagster_log_bridge(context.log, level="INFO"):
        iter_dir = record_dataset(
            sb3_policy(model, deterministic=True),
            scenario,
            scenario_dir(scenario, root=output.path()),
            n_episodes=config.n_episodes,
            seed_base=config.seed_base,
            n_envs=config.n_envs,
            env_overrides=expert_policy["env_overrides"],
            source={"run_dir": expert_policy["run_dir"], "model_sha256": expert_policy["model_sha256"]},
            config=config.model_dump(),
            run_id=context.run_id,
        )
    manifest = read_manifest(iter_dir)
    size = check_size_cap(iter_dir, _cap_bytes(config))
    count = check_episode_count(iter_dir, config.min_episodes)
    integrity = validate_dataset(iter_dir, min_episodes=config.min_episodes, size_cap_bytes=_cap_bytes(config))

    metadata = {
        "iteration_dir": dg.MetadataValue.path(str(iter_dir)),
        "iteration": iter_dir.name,
        "dataset_id": manifest["dataset_id"],
        "episodes": manifest["n_episodes"],
        "transitions": manifest["n_transitions"],
        "recorded_transitions_per_s": manifest["recording"]["transitions_per_s"],
        "bytes": size.value if size.value is not None else -1,
        "source_expert": dg.MetadataValue.path(expert_policy["run_dir"]),
        "coverage": dg.MetadataValue.json(manifest["scenario_coverage"]),
    }
    if config.render_sample:
        playback = output.path() / "playback" / scenario
        rendered = render_episode(iter_dir, 0, playback / f"{iter_dir.name}-episode-0000.png")
        metadata["sample_episode"] = png_markdown(Path(rendered.png).read_bytes(), "episode 0")
    yield dg.Output(
        {"iter_dir": str(iter_dir), "iteration": iter_dir.name, "dataset_id": manifest["dataset_id"], "scenario": scenario},
        metadata=metadata,
    )
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
def validated_dataset(context: dg.AssetExecutionContext, config: DatasetConfig, trajectory_dataset: dict) -> dg.Output[dict]:
    iter_dir = Path(trajectory_dataset["iter_dir"])
    report = validate_dataset(iter_dir, min_episodes=config.min_episodes, size_cap_bytes=_cap_bytes(config))
    report_path = write_integrity_report(iter_dir, report)
    if not report.passed:
        context.log.warning(f"{iter_dir} quarantined: {'; '.join(report.reasons)}")
    return dg.Output(
        {**trajectory_dataset, "status": report.status, "report": str(report_path), "reasons": report.reasons},
        metadata={
            "status": report.status,
            "iteration_dir": dg.MetadataValue.path(str(iter_dir)),
            "report": dg.MetadataValue.path(str(report_path)),
            "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in report.reasons) or "none"),
            "validation_seconds": round(report.elapsed_s, 3),
            "episodes": report.counts.get("episodes") or 0,
        },
    )
