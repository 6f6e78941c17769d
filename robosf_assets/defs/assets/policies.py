"""Per scenario x seed: ``bc_policy``, ``finetuned_policy`` (PPO from BC) and ``baseline_policy``."""

import dagster as dg

from robosf_assets.defs.run_config import ArmConfig, BCPolicyConfig, FinetuneArmConfig
from robosf_assets.defs.guards import TRAINING_POOL, quarantined_message, refuse_unless_validated
from robosf_assets.defs.metadata import png_markdown
from robosf_assets.defs.partitions import by_scenario, scenario_and_seed, scenario_seed_partitions
from robosf_assets.defs.resources import OutputTree
from robosf_assets.logs import dagster_log_bridge
from robosf_assets.refs import BCPolicyRef, PolicyRef, StageRefused, ValidatedDatasetRef
from robosf_assets.training.bc import run_bc
from robosf_assets.training.finetune import ArmOutcome, run_baseline, run_finetuned


def _arm_output(outcome: ArmOutcome) -> dg.Output[PolicyRef]:
    """The arm's reference with its curve's metadata."""
    result, first, last = outcome.result, outcome.result.curve[0], outcome.result.curve[-1]
    return dg.Output(
        outcome.ref,
        metadata={
            "run_dir": dg.MetadataValue.path(str(outcome.ref.run_dir)),
            "timesteps_used": result.timesteps_used,
            "jumpstart_success": first["success"],
            "final_success": last["success"],
            "final_collision": last["collision"],
            "threshold_reached_at": result.promotion_reached_at if result.promotion_reached_at is not None else -1,
            "env_steps_per_s": round(result.env_steps_per_s, 1),
            "wall_time_s": round(result.wall_time_s, 1),
            "learning_curve": png_markdown(outcome.curve_png, f"{outcome.ref.arm} learning curve"),
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
def bc_policy(context: dg.AssetExecutionContext, config: BCPolicyConfig, output: OutputTree,
              validated_dataset: ValidatedDatasetRef) -> dg.Output[BCPolicyRef]:
    scenario, seed = scenario_and_seed(context)
    dataset = validated_dataset
    if not dataset.validated:
        raise dg.Failure(quarantined_message(str(dataset.iter_dir), dataset.status, list(dataset.reasons)))
    with dagster_log_bridge(context.log, level="INFO"):
        try:
            outcome = run_bc(config.train_config(scenario, seed), config.bc_config(), dataset, output.path())
        except StageRefused as e:
            raise dg.Failure(str(e)) from e
    result, ev = outcome.result, outcome.result.evaluation
    return dg.Output(
        outcome.ref,
        metadata={
            "run_dir": dg.MetadataValue.path(str(outcome.ref.run_dir)),
            "dataset_iteration": dataset.iteration,
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
def finetuned_policy(context: dg.AssetExecutionContext, config: FinetuneArmConfig, output: OutputTree,
                     bc_policy: BCPolicyRef) -> dg.Output[PolicyRef]:
    scenario, seed = scenario_and_seed(context)
    with dagster_log_bridge(context.log, level="INFO"):
        outcome = run_finetuned(config.train_config(scenario, seed), config.finetune_config(), bc_policy,
                                output.path())
    return _arm_output(outcome)


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
def baseline_policy(context: dg.AssetExecutionContext, config: ArmConfig, output: OutputTree) -> dg.Output[PolicyRef]:
    scenario, seed = scenario_and_seed(context)
    refuse_unless_validated(context.instance, scenario)
    with dagster_log_bridge(context.log, level="INFO"):
        outcome = run_baseline(config.train_config(scenario, seed), output.path())
    return _arm_output(outcome)
