"""Tests for robosf_assets.training.train_config: validation messages, profiles and seed ranges."""

import pytest
from pydantic import ValidationError

from robosf_assets.envs import list_scenarios
from robosf_assets.training.train_config import (
    ARM_EVAL,
    ARM_TIMESTEPS,
    MAX_ENVS,
    MAX_TRAIN_SEED,
    PROFILES,
    EvalSchedule,
    PPOHyperparams,
    PromotionBar,
    TrainConfig,
    eval_episode_seeds,
    profile_config,
    train_env_seeds,
    validation_episode_seeds,
)


def test_defaults_are_valid_and_documented() -> None:
    cfg = TrainConfig(scenario="crossing")
    assert cfg.rollout_size == cfg.ppo.n_steps * cfg.n_envs
    assert cfg.promotion.min_success == 0.90 and cfg.promotion.max_collision == 0.05
    for model in (TrainConfig, PPOHyperparams, EvalSchedule, PromotionBar):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


def test_batch_size_error_names_the_fields() -> None:
    with pytest.raises(
        ValidationError,
        match=r"ppo\.n_steps \(256\) \* n_envs \(8\) = 2048 .*ppo\.batch_size \(300\)",
    ):
        TrainConfig(scenario="crossing", n_envs=8, ppo={"n_steps": 256, "batch_size": 300})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scenario": "moon"}, "scenario"),
        ({"scenario": "crossing", "seed": MAX_TRAIN_SEED + 1}, "seed"),
        ({"scenario": "crossing", "n_envs": 0}, "n_envs"),
        ({"scenario": "crossing", "device": "tpu"}, "device"),
        ({"scenario": "crossing", "env_overrides": {"n_rayz": 8}}, "env_overrides"),
        ({"scenario": "crossing", "ppo": {"gamma": 1.5}}, "ppo.gamma"),
        ({"scenario": "crossing", "ppo": {"net_arch": []}}, "ppo.net_arch"),
        ({"scenario": "crossing", "eval": {"eval_seed_base": 5}}, "eval"),
        ({"scenario": "crossing", "promotion": {"min_success": 1.2}}, "promotion.min_success"),
        ({"scenario": "crossing", "validation": {"eval_seeds": [1, 1]}}, "validation.eval_seeds"),
        ({"scenario": "crossing", "totl_timesteps": 5}, "totl_timesteps"),
    ],
)
def test_invalid_field_is_named(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        TrainConfig(**kwargs)
    assert field in str(err.value)


def test_profiles_build_for_every_scenario() -> None:
    assert set(PROFILES) == {"quick", "full"}
    for scenario in list_scenarios():
        quick = profile_config("quick", scenario, seed=2)
        full = profile_config("full", scenario, seed=2)
        assert quick.scenario == scenario and quick.seed == 2
        # issue 10: experts may take up to 5M steps on the hard defaults
        assert quick.total_timesteps <= 1_000_000 < full.total_timesteps <= 5_000_000
        # quick is the start of the full expert run: same PPO, the full run's learning rate,
        # which reaches its final value at the arms' budget and stays there
        assert quick.ppo == full.ppo
        assert full.ppo.learning_rate_horizon == ARM_TIMESTEPS["full"] < full.total_timesteps
        assert quick.eval == full.eval and quick.early_stop_margin == full.early_stop_margin
        # the full expert runs its whole budget and is picked on held-out episodes; the quick
        # fallback (no shipped expert) stops once the bar holds, with no extra margin
        assert quick.early_stop and not full.early_stop and quick.early_stop_margin == 0.0
        assert full.validation.selection_candidates > quick.validation.selection_candidates
        for cfg in (quick, full):
            assert (cfg.promotion.min_success, cfg.promotion.max_collision) == (0.95, 0.03)
            assert len(cfg.validation.eval_seeds) >= 3 and cfg.validation.episodes_per_seed >= 100
            assert cfg.total_timesteps % cfg.rollout_size == 0


def test_profile_overrides_merge_nested_fields() -> None:
    cfg = profile_config("quick", "corridor", 1, ppo={"learning_rate": 1e-4}, total_timesteps=4096)
    assert cfg.ppo.learning_rate == 1e-4
    assert cfg.ppo.batch_size == PROFILES["quick"]["ppo"]["batch_size"]
    assert cfg.total_timesteps == 4096
    with pytest.raises(KeyError, match="quick"):
        profile_config("medium", "corridor", 1)


def test_train_eval_and_validation_seeds_are_disjoint() -> None:
    cfg = profile_config("full", "crossing", 0)
    train = {s for seed in range(10) for s in train_env_seeds(seed, cfg.n_envs)}
    evaluation = set(eval_episode_seeds(cfg.eval))
    validation = {
        s
        for v in cfg.validation.eval_seeds
        for s in validation_episode_seeds(v, cfg.validation.episodes_per_seed)
    }
    assert len(evaluation) == cfg.eval.n_eval_episodes
    assert not train & evaluation and not train & validation and not evaluation & validation
    # the extremes of the ranges too: the largest training world seed is below every
    # evaluation seed, and the largest allowed evaluation seed below every validation seed
    assert train_env_seeds(MAX_TRAIN_SEED, MAX_ENVS)[-1] < min(eval_episode_seeds(EvalSchedule()))
    widest = EvalSchedule(eval_seed_base=19 * 10**5 - 100, n_eval_episodes=100)
    assert max(eval_episode_seeds(widest)) < 19 * 10**5  # the selection episodes start there
    assert max(eval_episode_seeds(widest)) < min(validation_episode_seeds(0, 1))
    # validation seeds do not overlap each other
    assert not set(validation_episode_seeds(0, 100_000)) & set(validation_episode_seeds(1, 10))
    assert train_env_seeds(3, 4) == [3000, 3001, 3002, 3003]


def test_linear_learning_rate_decays_from_start_to_final():
    from robosf_assets.training.ppo import learning_rate_schedule

    schedule = learning_rate_schedule(3e-4, 3e-5)
    assert schedule(1.0) == pytest.approx(3e-4)
    assert schedule(0.5) == pytest.approx(1.65e-4)
    assert schedule(0.0) == pytest.approx(3e-5)
    assert learning_rate_schedule(3e-4, None) == 3e-4


def test_dense_phase_evaluates_more_often_at_the_start_only() -> None:
    schedule = EvalSchedule(eval_every_steps=40_000, dense_eval_every_steps=8192, dense_eval_until_steps=24_576)
    due, steps = [], 0
    while steps < 100_000:
        steps = schedule.next_eval_after(steps)
        due.append(steps)
    assert due == [8192, 16_384, 24_576, 40_000, 80_000, 120_000]
    quick = EvalSchedule(eval_every_steps=10_000, dense_eval_every_steps=4096, dense_eval_until_steps=16_384)
    due, steps = [], 0
    while steps < 40_000:
        steps = quick.next_eval_after(steps)
        due.append(steps)
    assert due == [4096, 8192, 12_288, 16_384, 20_000, 30_000, 40_000]  # no 10,000 inside the phase
    plain = EvalSchedule(eval_every_steps=40_000)
    assert plain.next_eval_after(0) == 40_000 and plain.next_eval_after(40_000) == 80_000


def test_full_profile_arms_resolve_the_start_to_two_rollouts() -> None:
    cfg = profile_config("full", "corridor", eval=ARM_EVAL["full"])
    assert cfg.eval.dense_eval_every_steps == 2 * cfg.rollout_size
    assert cfg.eval.next_eval_after(0) == 2 * cfg.rollout_size


def test_a_longer_learning_rate_horizon_gives_the_longer_runs_rates_bit_for_bit():
    from robosf_assets.training.ppo import learning_rate_schedule

    short, long_ = 999_424, 1_998_848
    cut = learning_rate_schedule(3e-4, 3e-5, short, long_)
    full = learning_rate_schedule(3e-4, 3e-5, long_)
    for step in range(0, short + 1, 4096):
        # what SB3 passes each run at this step
        assert cut(1.0 - float(step) / float(short)) == full(1.0 - float(step) / float(long_))
    assert cut(0.0) == pytest.approx(1.65e-4, rel=1e-3)  # half-way down the long decay
    same = learning_rate_schedule(3e-4, 3e-5, short, short)
    assert same(0.25) == learning_rate_schedule(3e-4, 3e-5)(0.25)


def test_one_profile_table_holds_every_per_profile_value() -> None:
    """PROFILES, ARM_TIMESTEPS, ARM_EVAL and CRITIC_WARMUP_STEPS are views of PROFILE_TABLE,
    and the arm and fine-tuning configs are built from it."""
    from robosf_assets.training import finetune, profiles, train_config
    from robosf_assets.training.train_config import arm_config
    from robosf_assets.training.finetune import FinetuneConfig

    table = profiles.PROFILE_TABLE
    assert set(table) == {"quick", "full"}
    assert all(set(p) == {"expert", "arm", "finetune", "stage"} for p in table.values())
    assert train_config.PROFILES is profiles.PROFILES and finetune.CRITIC_WARMUP_STEPS is profiles.CRITIC_WARMUP_STEPS
    for name, p in table.items():
        assert train_config.PROFILES[name] is p["expert"]
        assert train_config.ARM_TIMESTEPS[name] == p["arm"]["total_timesteps"]
        assert train_config.ARM_EVAL[name] is p["arm"]["eval"]
        arm = arm_config(name, "bottleneck", 3)
        # the arm is the expert config with the arm section merged key by key
        expected = profile_config(name, "bottleneck", 3, early_stop=False, total_timesteps=p["arm"]["total_timesteps"],
                                  eval=p["arm"]["eval"], promotion=p["arm"]["promotion"])
        assert arm == expected and not arm.early_stop
        assert arm.eval.n_eval_envs == p["expert"]["eval"]["n_eval_envs"]  # kept from the expert
        assert arm.total_timesteps % arm.rollout_size == 0
        assert FinetuneConfig.for_profile(name).critic_warmup_steps == p["finetune"]["critic_warmup_steps"]
        assert FinetuneConfig.for_profile(name, anchor_coef=0.0).anchor_coef == 0.0
    assert arm_config("quick", "crossing", 0, eval={"n_eval_episodes": 7}).eval.dense_eval_every_steps == 4096
    with pytest.raises(KeyError, match="quick"):
        arm_config("medium", "crossing")
    with pytest.raises(KeyError, match="quick"):
        FinetuneConfig.for_profile("medium")
    # the table is never mutated by building configs from it
    profile_config("quick", "crossing", 0, ppo={"net_arch": [8]}, env_overrides={"frame_stack": 3})
    assert table["quick"]["expert"]["ppo"]["net_arch"] == [128, 128]
    assert table["quick"]["expert"]["env_overrides"] == {"frame_stack": 2}


def test_fine_tuning_starts_inside_every_profiles_noise_cap():
    """BC hands fine-tuning log_std = finetune_log_std; above the cap, the cap would move the
    actor during the critic warm-up, which is meant to leave it frozen."""
    from robosf_assets.training.bc import BCConfig
    from robosf_assets.training.profiles import PROFILES

    start = BCConfig().finetune_log_std
    for name, expert in PROFILES.items():
        cap = expert["ppo"].get("log_std_max")
        assert cap is not None, f"{name}: no noise cap"
        assert start is not None and start <= cap, (name, start, cap)
