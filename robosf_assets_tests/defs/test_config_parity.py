"""Every knob of the core configs has a Dagster config counterpart (issue 14 item 4).

The core models (``TrainConfig`` and its nested ``PPOHyperparams``, ``EvalSchedule``,
``PromotionBar``, ``ValidationSpec``; ``FinetuneConfig``; ``BCConfig``; the recording
arguments of ``record_dataset``) are walked field by field: a field added there fails
here until the Dagster layer (``robosf_assets/defs/run_config.py``) can set it.
"""

import inspect

import pytest
from pydantic import BaseModel

from robosf_assets.datasets.record import record_dataset
from robosf_assets.defs.assets.datasets import DatasetConfig
from robosf_assets.defs.run_config import ArmConfig, BCPolicyConfig, ExpertConfig, FinetuneArmConfig, PPOSettings
from robosf_assets.training.bc import BCConfig
from robosf_assets.training.train_config import DATASET_SEED_BASE, PPOHyperparams, TrainConfig
from robosf_assets.training.finetune import FinetuneConfig

NOT_CONFIG = {
    "scenario": "the partition key",
    "seed": "ExpertConfig.seed; the arms' partition key",
}
"""TrainConfig fields that are not Dagster config by design, and why."""

RECORD_NOT_CONFIG = {
    "policy": "the expert_policy input",
    "scenario": "the partition key",
    "out_parent": "the output resource",
    "env_overrides": "the expert's (observations must match)",
    "source": "the expert_policy input",
    "config": "the DatasetConfig itself",
    "run_id": "the Dagster run",
    "policy_name": "always the expert",
    "parallel": "one process per asset run (a run is the unit of parallelism)",
    "progress_interval_s": "log spacing (not part of the dataset)",
    "torch_threads": "1: recorded bytes do not depend on the machine's cores",
}
"""record_dataset parameters that are not DatasetConfig fields, and why."""


def core_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted paths of every leaf field of ``model`` (nested models walked)."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= core_paths(ann, f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def test_ppo_settings_mirror_every_ppo_hyperparameter():
    assert list(PPOSettings.model_fields) == list(PPOHyperparams.model_fields)
    for name in ("vf_coef", "max_grad_norm", "log_std_init"):
        assert PPOSettings.model_fields[name].description == PPOHyperparams.model_fields[name].description
    assert all(v is None for v in PPOSettings().model_dump().values())


def test_every_train_config_field_has_a_dagster_counterpart():
    paths = core_paths(TrainConfig)
    assert {"ppo.vf_coef", "eval.deterministic", "promotion.per_seed", "validation.selection_candidates"} <= paths
    mapped = set(ExpertConfig.CORE_PATHS.values()) | set(ArmConfig.CORE_PATHS.values())
    missing = sorted(paths - mapped - set(NOT_CONFIG))
    assert not missing, f"core TrainConfig fields with no Dagster config counterpart: {missing}"
    assert not set(mapped) - paths, f"Dagster fields mapped to no core field: {sorted(set(mapped) - paths)}"


@pytest.mark.parametrize("config", [ExpertConfig, ArmConfig, BCPolicyConfig, FinetuneArmConfig])
def test_every_training_field_reaches_the_core_config(config):
    """No Dagster field is left out of the mapping (it would be a knob that does nothing)."""
    own = {"profile", "ppo", "seed", "scenario_overrides", "expert_source"}  # expert_source: run_expert's argument
    own |= set(getattr(config, "BC_FIELDS", {})) | set(getattr(config, "FINETUNE_FIELDS", ()))
    names = set(config.model_fields) - own
    paths = {k for k in config.CORE_PATHS if not k.startswith("ppo.")}
    assert names == paths, f"{config.__name__}: unmapped {sorted(names - paths)}, stale {sorted(paths - names)}"
    assert {k[4:] for k in config.CORE_PATHS if k.startswith("ppo.")} == set(PPOSettings.model_fields)


def test_set_values_arrive_where_the_mapping_says():
    cfg = ExpertConfig(profile="quick", seed=1, eval_deterministic=False, per_seed=True, selection_candidates=5,
                       validation_n_envs=8, torch_threads=2, device="cpu", early_stop_margin=0.01,
                       ppo={"vf_coef": 0.25, "max_grad_norm": 1.5, "log_std_init": -0.5}).train_config("crossing")
    assert (cfg.eval.deterministic, cfg.promotion.per_seed, cfg.validation.selection_candidates) == (False, True, 5)
    assert (cfg.validation.n_envs, cfg.torch_threads, cfg.device, cfg.early_stop_margin) == (8, 2, "cpu", 0.01)
    assert (cfg.ppo.vf_coef, cfg.ppo.max_grad_norm, cfg.ppo.log_std_init) == (0.25, 1.5, -0.5)
    arm = ArmConfig(profile="full", n_eval_envs=4, ppo={"vf_coef": 0.1}).train_config("corridor", 2)
    assert (arm.eval.n_eval_envs, arm.ppo.vf_coef, arm.early_stop) == (4, 0.1, False)


def test_every_finetune_field_has_a_dagster_counterpart():
    assert set(FinetuneArmConfig.FINETUNE_FIELDS) == set(FinetuneConfig.model_fields)
    assert set(FinetuneArmConfig.FINETUNE_FIELDS) <= set(FinetuneArmConfig.model_fields)
    ft = FinetuneArmConfig(profile="quick", actor_ramp_steps=8192, anchor_coef=0.5, anchor_decay=0.9,
                           anchor_batch_size=64).finetune_config()
    assert (ft.actor_ramp_steps, ft.anchor_coef, ft.anchor_decay, ft.anchor_batch_size) == (8192, 0.5, 0.9, 64)
    assert ft.critic_warmup_steps == 16_384  # the quick profile's warm-up
    assert FinetuneArmConfig(profile="full").finetune_config() == FinetuneConfig()  # full = the core defaults


def test_every_bc_field_has_a_dagster_counterpart():
    assert set(BCPolicyConfig.BC_FIELDS.values()) == set(BCConfig.model_fields)
    assert set(BCPolicyConfig.BC_FIELDS) <= set(BCPolicyConfig.model_fields)
    assert BCPolicyConfig().bc_config() == BCConfig()
    bc = BCPolicyConfig(bc_ent_weight=0.0, bc_l2_weight=1e-4, value_learning_rate=3e-4, bc_epochs=2).bc_config()
    assert (bc.ent_weight, bc.l2_weight, bc.value_learning_rate, bc.epochs) == (0.0, 1e-4, 3e-4, 2)


def test_every_recording_argument_has_a_dataset_config_counterpart():
    params = set(inspect.signature(record_dataset).parameters)
    missing = sorted(params - set(DatasetConfig.model_fields) - set(RECORD_NOT_CONFIG))
    assert not missing, f"record_dataset arguments with no DatasetConfig counterpart: {missing}"
    assert not set(RECORD_NOT_CONFIG) - params, "RECORD_NOT_CONFIG names a parameter record_dataset lost"
    assert DatasetConfig().seed_base == DATASET_SEED_BASE
