"""Per scenario x seed: ``bc_policy``, ``finetuned_policy`` (PPO from BC) and ``baseline_policy``."""

import time
from pathlib import Path

import dagster as dg

from robosf_assets.artifacts import (
    atomic_save,
    build_manifest,
    new_run_dir,
    open_resumable_run_dir,
    release_run_dir,
    write_manifest,
)
from robosf_assets.benchmark.plots import learning_curve_png
from robosf_assets.datasets.load import load_trajectories, read_manifest
from robosf_assets.defs.config import ArmConfig, BCPolicyConfig, FinetuneArmConfig
from robosf_assets.defs.guards import TRAINING_POOL, quarantined_message, refuse_unless_validated
from robosf_assets.defs.metadata import png_markdown
from robosf_assets.defs.partitions import by_scenario, scenario_and_seed, scenario_seed_partitions
from robosf_assets.defs.resources import OutputTree
from robosf_assets.logs import dagster_log_bridge
from robosf_assets.training.bc import train_bc
from robosf_assets.training.config import TrainConfig
from robosf_assets.training.finetune import finetune_from_bc, train_baseline
from robosf_assets.training.ppo import TrainResult


def _partition_dir(scenario: str, seed: int) -> str:
    return f"{scenario}-seed{seed}"


def _arm_output(kind: str, config: TrainConfig, result: TrainResult, run_dir: Path, started: float, extra: dict):
    """Write the arm's manifest and learning curve; return the asset output with metadata."""
    png = learning_curve_png(result.curve, title=f"{kind}, {config.scenario}, seed {config.seed}")
    if not (run_dir / "learning_curve.png").exists():  # a resumed run may have written it before dying
        atomic_save(run_dir / "learning_curve.png", lambda tmp: tmp.write_bytes(png))
    release_run_dir(run_dir)
    manifest = build_manifest(
        kind=kind, partition=_partition_dir(config.scenario, config.seed), config=config.model_dump(),
        seeds={"run_seed": config.seed, "train_seed_base": config.train_seed_base}, artifact_dir=run_dir,
        started_at=started,
        extra={"timesteps_used": result.timesteps_used, "resumed_from": str(result.resumed_from or ""), **extra},
    )
    write_manifest(run_dir, manifest)
    last = result.curve[-1]
    return dg.Output(
        {"run_dir": str(run_dir), "model_path": str(result.model_path), "scenario": config.scenario,
         "seed": config.seed, "timesteps_used": result.timesteps_used, **extra},
        metadata={
            "run_dir": dg.MetadataValue.path(str(run_dir)),
            "timesteps_used": result.timesteps_used,
            "jumpstart_success": result.curve[0]["success"],
            "final_success": last["success"],
            "final_collision": last["collision"],
            "threshold_reached_at": result.promotion_reached_at if result.promotion_reached_at is not None else -1,
            "env_steps_per_s": round(result.env_steps_per_s, 1),
            "wall_time_s": round(result.wall_time_s, 1),
            "learning_curve": png_markdown(png, f"{kind} learning curve"),
        },
    )


@dg.asset(
    partitions_def=scenario_seed_partitions,
    ins={"validated_dataset": dg.AssetIn(partition_mapping=by_scenario)},
    group_name="pretraining",
    kinds={"pytorch"},
    pool=TRAINING_POOL,
    description="Behaviour cloning of the validated dataset into PPO's policy; critic regressed on the demonstrations' returns.",
)
def bc_policy(context: dg.AssetExecutionContext, config: BCPolicyConfig, output: OutputTree, validated_dataset: dict):
    scenario, seed = scenario_and_seed(context)
    if validated_dataset["status"] != "validated":
        raise dg.Failure(quarantined_message(validated_dataset["iter_dir"], validated_dataset["status"],
                                             validated_dataset["reasons"]))
    iter_dir = Path(validated_dataset["iter_dir"])
    dataset = read_manifest(iter_dir)
    train_config = config.train_config(scenario, seed)
    if dict(dataset["env_overrides"]) != dict(train_config.env_overrides):
        raise dg.Failure(f"dataset {iter_dir} was recorded with env overrides {dataset['env_overrides']}, "
                         f"this config trains with {train_config.env_overrides}: observations would not match")
    bc = config.bc_config()
    started = time.time()
    run_dir = new_run_dir("bc_policies", _partition_dir(scenario, seed), root=output.path())
    with dagster_log_bridge(context.log, level="INFO"):
        result = train_bc(train_config, bc, load_trajectories(iter_dir), run_dir)
    manifest = build_manifest(
        kind="bc_policy", partition=_partition_dir(scenario, seed),
        config={"train": train_config.model_dump(), "bc": bc.model_dump()},
        seeds={"run_seed": seed, "torch_and_batching": train_config.train_seed_base}, artifact_dir=run_dir,
        started_at=started,
        extra={"dataset_iteration": iter_dir.name, "dataset_id": dataset["dataset_id"],
               "dataset_dir": str(iter_dir), "demo_transitions": result.n_transitions},
    )
    write_manifest(run_dir, manifest)
    ev = result.evaluation
    return dg.Output(
        {"run_dir": str(run_dir), "policy_path": str(result.policy_path), "scenario": scenario, "seed": seed,
         "dataset_iteration": iter_dir.name, "dataset_id": dataset["dataset_id"],
         "demo_transitions": result.n_transitions},
        metadata={
            "run_dir": dg.MetadataValue.path(str(run_dir)),
            "dataset_iteration": iter_dir.name,
            "demo_transitions": result.n_transitions,
            "success_deterministic": ev["deterministic"]["success"],
            "collision_deterministic": ev["deterministic"]["collision"],
            "success_stochastic": ev["stochastic"]["success"],
            "collision_stochastic": ev["stochastic"]["collision"],
            "learnt_log_std": str([round(x, 3) for x in result.learnt_log_std]),
            "finetune_log_std": str([round(x, 3) for x in result.finetune_log_std]),
            "loss_curves": png_markdown(result.loss_png, "BC and value losses"),
        },
    )


@dg.asset(
    partitions_def=scenario_seed_partitions,
    group_name="pretraining",
    kinds={"pytorch"},
    pool=TRAINING_POOL,
    description="PPO initialised from bc_policy, critic warm-up with a frozen actor, evaluated on the fixed episodes.",
)
def finetuned_policy(context: dg.AssetExecutionContext, config: FinetuneArmConfig, output: OutputTree, bc_policy: dict):
    scenario, seed = scenario_and_seed(context)
    train_config = config.train_config(scenario, seed)
    finetune = config.finetune_config()
    key = {**train_config.run_key(), "bc_run": bc_policy["run_dir"], **finetune.model_dump()}
    run_dir, _ = open_resumable_run_dir("finetuned_policies", _partition_dir(scenario, seed), key, root=output.path())
    started = time.time()
    with dagster_log_bridge(context.log, level="INFO"):
        result = finetune_from_bc(train_config, finetune, Path(bc_policy["policy_path"]), run_dir)
    return _arm_output("finetuned_policy", train_config, result, run_dir, started, {
        "bc_run": bc_policy["run_dir"], "dataset_iteration": bc_policy["dataset_iteration"],
        "demo_transitions": bc_policy["demo_transitions"], **finetune.model_dump(),
    })


@dg.asset(
    partitions_def=scenario_seed_partitions,
    # not an input: the baseline does not read the dataset, but one expert anchors the scenario's whole
    # chain (UI "Materialize all" offers the scenario partitions), and no baseline is trained for a
    # scenario whose expert failed or whose dataset was quarantined
    deps=[dg.AssetDep("validated_dataset", partition_mapping=by_scenario)],
    group_name="baseline",
    kinds={"pytorch"},
    pool=TRAINING_POOL,
    description="PPO from scratch with the fine-tuned arm's hyperparameters, budget, seeds and evaluation schedule.",
)
def baseline_policy(context: dg.AssetExecutionContext, config: ArmConfig, output: OutputTree):
    scenario, seed = scenario_and_seed(context)
    refuse_unless_validated(context.instance, scenario)
    train_config = config.train_config(scenario, seed)
    run_dir, _ = open_resumable_run_dir("baseline_policies", _partition_dir(scenario, seed), train_config.run_key(),
                                        root=output.path())
    started = time.time()
    with dagster_log_bridge(context.log, level="INFO"):
        result = train_baseline(train_config, run_dir)
    return _arm_output("baseline_policy", train_config, result, run_dir, started, {})
