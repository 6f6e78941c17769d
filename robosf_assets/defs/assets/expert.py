"""``expert_policy``: a PPO expert per scenario, with the blocking ``expert_promotion_bar`` check."""

import dagster as dg

from robosf_assets.defs.run_config import ExpertConfig
from robosf_assets.defs.guards import TRAINING_POOL
from robosf_assets.defs.metadata import png_markdown, rate_table, rate_text
from robosf_assets.defs.partitions import scenario_partitions
from robosf_assets.defs.resources import OutputTree
from robosf_assets.logs import dagster_log_bridge
from robosf_assets.training.expert import run_expert

PROMOTION_CHECK = "expert_promotion_bar"


@dg.asset(
    partitions_def=scenario_partitions,
    group_name="expert",
    kinds={"pytorch"},
    pool=TRAINING_POOL,
    description="PPO expert trained from scratch on the scenario, validated on 3 x 100 fresh episodes.",
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
    with dagster_log_bridge(context.log, level="INFO"):
        outcome = run_expert(train_config, output.path(), extra={"dagster_run_id": context.run_id})

    pooled, verdict, train = outcome.validation["pooled"], outcome.verdict, outcome.train
    yield dg.Output(
        outcome.ref,
        metadata={
            "run_dir": dg.MetadataValue.path(str(outcome.run_dir)),
            "promoted": outcome.promoted,
            "success": rate_text(pooled["success"]),
            "collision": rate_text(pooled["collision"]),
            "validation": rate_table(outcome.validation["per_seed"], pooled),
            "timesteps_used": train.timesteps_used,
            "validated_model": outcome.model_path.name,
            "wall_time_s": round(train.wall_time_s, 1),
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
        description=verdict["message"],
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
