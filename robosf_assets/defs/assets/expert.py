"""``expert_policy``: a PPO expert per scenario, with the blocking ``expert_promotion_bar`` check."""

import dagster as dg

from robosf_assets.defs.run_config import ExpertConfig, resolve_profile
from robosf_assets.defs.guards import TRAINING_POOL
from robosf_assets.defs.metadata import png_markdown, rate_table, rate_text
from robosf_assets.defs.partitions import scenario_partitions
from robosf_assets.defs.resources import OutputTree
from robosf_assets.logs import dagster_log_bridge
from robosf_assets.training.expert import (
    EXPERT_SOURCES,
    ExpertOutcome,
    ShippedExpertError,
    default_expert_source,
    run_expert,
)

PROMOTION_CHECK = "expert_promotion_bar"


def expert_source(config: ExpertConfig, scenario: str) -> tuple[str, str]:
    """``(profile, source)`` of the scenario's expert run: ``expert_source`` (a scenario
    override first), else the profile's default (``PROFILE_TABLE[profile]["stage"]``)."""
    changed = config.scenario_overrides.get(scenario) or {}
    profile = resolve_profile(changed.get("profile", config.profile))
    source = changed.get("expert_source", config.expert_source) or default_expert_source(profile)
    if source not in EXPERT_SOURCES:
        raise dg.Failure(f"expert_source {source!r}: choose one of {list(EXPERT_SOURCES)}")
    return profile, source


def source_text(outcome: ExpertOutcome, requested: str = "train") -> str:
    """What the UI and the CLI say about where the expert came from (``requested``: the
    expert_source asked for)."""
    if outcome.source == "shipped":
        return f"shipped from full-profile run {(outcome.shipped or {}).get('source_run')}, revalidated here"
    return "trained (no shipped expert for this scenario)" if requested == "shipped" else "trained"


@dg.asset(
    partitions_def=scenario_partitions,
    group_name="expert",
    kinds={"pytorch"},
    pool=TRAINING_POOL,
    description="PPO expert of the scenario, validated on 3 x 100 fresh episodes: trained from scratch, or "
                "(expert_source 'shipped', the quick profile's default) the full-profile expert the repository "
                "ships, validated again here. Its expert_source metadata says which.",
    check_specs=[
        dg.AssetCheckSpec(
            PROMOTION_CHECK,
            asset="expert_policy",
            blocking=True,
            description="Validated success >= 0.90 and collision <= 0.05 (configurable); no dataset is built otherwise.",
        )
    ],
)
def expert_policy(context: dg.AssetExecutionContext, config: ExpertConfig, output: OutputTree):
    train_config = config.train_config(context.partition_key)
    profile, source = expert_source(config, context.partition_key)
    with dagster_log_bridge(context.log, level="INFO"):
        try:
            outcome = run_expert(train_config, output.path(), source=source,
                                 extra={"dagster_run_id": context.run_id, "profile": profile})
        except ShippedExpertError as e:
            raise dg.Failure(str(e)) from e

    pooled, verdict, train = outcome.validation["pooled"], outcome.verdict, outcome.train
    shipped = outcome.source == "shipped"
    yield dg.Output(
        outcome.ref,
        metadata={
            "expert_source": source_text(outcome, source),
            "run_dir": dg.MetadataValue.path(str(outcome.run_dir)),
            "promoted": outcome.promoted,
            "success": rate_text(pooled["success"]),
            "collision": rate_text(pooled["collision"]),
            "validation": rate_table(outcome.validation["per_seed"], pooled),
            "timesteps_used": train.timesteps_used,
            "validated_model": outcome.model_path.name,
            # an adopted expert: the time spent here (validation); its training's is trained_wall_time_s
            "wall_time_s": round(outcome.manifest["wall_time_s"] if shipped else train.wall_time_s, 1),
            **({"trained_wall_time_s": round(train.wall_time_s, 1),
                "shipped_git_revision": str(outcome.shipped.get("source_git_revision"))} if shipped else {}),
            "env_steps_per_s": round(train.env_steps_per_s, 1),
            "promotion_reached_at": train.promotion_reached_at,
            "resumed_from": str(train.resumed_from) if train.resumed_from else "none",
            "checkpoint": dg.MetadataValue.path(str(train.last_checkpoint)) if train.last_checkpoint else "none",
            "learning_curve": png_markdown(outcome.curve_png, "learning curve"),
        },
    )
    yield dg.AssetCheckResult(
        check_name=PROMOTION_CHECK,
        passed=outcome.promoted,
        severity=dg.AssetCheckSeverity.ERROR,
        description=verdict["message"] + (f" ({source_text(outcome)})" if shipped else ""),
        metadata={
            "success": pooled["success"]["mean"],
            "success_margin": verdict["success"]["margin"],
            "collision": pooled["collision"]["mean"],
            "collision_margin": verdict["collision"]["margin"],
            "min_success": verdict["bar"]["min_success"],
            "max_collision": verdict["bar"]["max_collision"],
            "episodes": pooled["n_episodes"],
        },
    )
