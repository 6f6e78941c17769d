"""Tests for robosf_assets.training.ppo: artefacts, resume, early stop, determinism, BC hook.

Budgets are tiny (a few hundred env steps on 16-ray worlds): these check the machinery,
not learning.
"""

import json
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO

from robosf_assets.envs import make_vec_env
from robosf_assets.training.train_config import PromotionBar, TrainConfig, eval_episode_seeds
from robosf_assets.training.evaluation import curve_point, evaluate_policy_episodes
from robosf_assets.training.ppo import (
    CHECKPOINT_DIR,
    CURVE_NAME,
    MODEL_NAME,
    bar_score,
    best_row,
    build_ppo,
    latest_checkpoint,
    read_curve,
    train_ppo,
)

ROLLOUT = 256  # 4 envs x 64 steps


def tiny(**changes) -> TrainConfig:
    fields = {
        "scenario": "crossing",
        "seed": 1,
        "total_timesteps": 2 * ROLLOUT,
        "n_envs": 4,
        "ppo": {"n_steps": 64, "batch_size": 128, "n_epochs": 2, "net_arch": [32, 32]},
        "eval": {"eval_every_steps": ROLLOUT, "n_eval_episodes": 4, "n_eval_envs": 4},
        "checkpoint_every_steps": ROLLOUT,
        "early_stop": False,
        "env_overrides": {"n_rays": 16, "horizon": 60},
        "device": "cpu",
    }
    fields.update(changes)
    return TrainConfig.model_validate(fields)


def policy_params(path: Path) -> dict[str, torch.Tensor]:
    return PPO.load(path, device="cpu").policy.state_dict()


def same_params(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


LEARNING_KEYS = ("timesteps", "success", "collision", "mean_return", "n_episodes")


def learning_columns(curve: list[dict]) -> list[tuple]:
    return [tuple(row[k] for k in LEARNING_KEYS) for row in curve]


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("base")
    return run_dir, train_ppo(tiny(), run_dir)


def test_run_writes_model_curve_checkpoints_and_tensorboard(base_run) -> None:
    run_dir, result = base_run
    assert result.model_path == run_dir / MODEL_NAME and result.model_path.is_file()
    assert (
        result.timesteps_used == 2 * ROLLOUT
        and not result.stopped_early
        and result.resumed_from is None
    )
    curve = read_curve(run_dir / CURVE_NAME)
    assert curve == result.curve
    assert [r["timesteps"] for r in curve] == [0, ROLLOUT, 2 * ROLLOUT]  # step-0 row: the jumpstart
    assert curve[0]["env_steps_per_s"] is None and curve[-1]["env_steps_per_s"] > 0
    assert all(r["n_episodes"] == 4 and 0 <= r["success"] <= 1 for r in curve)
    ckpts = sorted(p.name for p in (run_dir / CHECKPOINT_DIR).iterdir())
    assert ckpts == [
        "step-0000000256.json",
        "step-0000000256.zip",
        "step-0000000512.json",
        "step-0000000512.zip",
    ]
    assert result.last_checkpoint == run_dir / CHECKPOINT_DIR / "step-0000000512.zip"
    meta = latest_checkpoint(run_dir).meta
    assert (
        meta["timesteps"] == 2 * ROLLOUT and meta["curve_rows"] == 3 and meta["config"]["seed"] == 1
    )
    assert list((run_dir / "tb").rglob("events.out.tfevents.*"))
    summary = json.loads((run_dir / "training.json").read_text())
    assert summary["timesteps_used"] == 2 * ROLLOUT and summary["config"]["scenario"] == "crossing"
    assert result.wall_time_s > 0 and result.env_steps_per_s > 0
    assert not list(run_dir.rglob(".tmp-*"))
    best = best_row(curve, PromotionBar())
    assert result.best_timesteps == best["timesteps"]
    assert result.best_model_path == run_dir / "best_model.zip"
    snapshot = run_dir / "best" / f"step-{best['timesteps']:010d}.zip"
    assert result.best_model_path.read_bytes() == snapshot.read_bytes()


def test_bar_score_and_best_row() -> None:
    bar = PromotionBar()
    assert bar_score({"success": 0.95, "collision": 0.04}, bar) == pytest.approx(0.01)
    assert bar_score({"success": 0.85, "collision": 0.0}, bar) == pytest.approx(-0.05)
    curve = [
        {"timesteps": 0, "success": 0.1, "collision": 0.9},
        {"timesteps": 10, "success": 0.97, "collision": 0.03},
        {"timesteps": 20, "success": 0.99, "collision": 0.01},
        {"timesteps": 30, "success": 0.99, "collision": 0.01},
        {"timesteps": 40, "success": 0.88, "collision": 0.12},
    ]
    assert best_row(curve, bar)["timesteps"] == 20  # the earliest of equal scores
    assert best_row([], bar) is None


def test_build_ppo_seeds_training_worlds_from_the_run_seed() -> None:
    cfg = tiny(seed=7)
    env = make_vec_env(cfg.scenario, cfg.n_envs, cfg.train_seed_base, **cfg.env_overrides)
    model = build_ppo(cfg, env)
    assert env._seeds == [7000, 7001, 7002, 7003]  # applied at the next reset
    assert model.n_steps == 64 and model.batch_size == 128 and model.seed == 7000


def test_same_seed_gives_identical_curves_and_weights(base_run, tmp_path) -> None:
    # Holds on CPU with torch_threads=1 (the default): all randomness is seeded and the
    # evaluation is deterministic. Wall-clock columns differ and are not compared.
    run_dir, first = base_run
    second = train_ppo(tiny(), tmp_path / "again")
    assert learning_columns(second.curve) == learning_columns(first.curve)
    assert same_params(policy_params(second.model_path), policy_params(first.model_path))
    other = train_ppo(tiny(seed=2, total_timesteps=ROLLOUT), tmp_path / "other")
    assert not same_params(
        policy_params(other.model_path),
        policy_params(first.last_checkpoint.with_name("step-0000000256.zip")),
    )


def test_resume_after_interruption_continues_to_the_larger_budget(base_run, tmp_path) -> None:
    run_dir = tmp_path / "run"
    first = train_ppo(tiny(total_timesteps=ROLLOUT, checkpoint_every_steps=ROLLOUT), run_dir)
    assert first.timesteps_used == ROLLOUT and latest_checkpoint(run_dir).timesteps == ROLLOUT
    # what a kill after the checkpoint leaves: a row written later and a torn line
    with open(run_dir / CURVE_NAME, "a") as fh:
        fh.write(json.dumps({"timesteps": 999_999, "success": 1.0, "collision": 0.0}) + "\n")
        fh.write('{"timeste')
    resumed = train_ppo(tiny(total_timesteps=2 * ROLLOUT), run_dir)
    assert resumed.resumed_from == run_dir / CHECKPOINT_DIR / "step-0000000256.zip"
    assert resumed.timesteps_used == 2 * ROLLOUT
    steps = [r["timesteps"] for r in resumed.curve]
    assert steps == [0, ROLLOUT, 2 * ROLLOUT] and steps == sorted(set(steps))
    assert resumed.curve[:2] == first.curve
    assert read_curve(run_dir / CURVE_NAME) == resumed.curve
    assert resumed.wall_time_s > first.wall_time_s
    assert latest_checkpoint(run_dir).timesteps == 2 * ROLLOUT
    # calling again with the budget already spent trains nothing
    again = train_ppo(tiny(total_timesteps=2 * ROLLOUT), run_dir)
    assert again.timesteps_used == 2 * ROLLOUT and again.curve == resumed.curve


def test_resume_refuses_a_different_run_config(base_run) -> None:
    run_dir, _ = base_run
    with pytest.raises(ValueError, match=r"\['ppo'\]"):
        train_ppo(
            tiny(
                total_timesteps=4 * ROLLOUT,
                ppo={"n_steps": 64, "batch_size": 128, "n_epochs": 3, "net_arch": [32, 32]},
            ),
            run_dir,
        )


def test_leftover_model_without_checkpoint_is_trained_over_but_a_finished_run_is_refused(tmp_path) -> None:
    (tmp_path / MODEL_NAME).write_bytes(b"left by an interrupted attempt")  # nothing to resume
    result = train_ppo(tiny(total_timesteps=ROLLOUT), tmp_path)
    assert result.resumed_from is None and (tmp_path / MODEL_NAME).read_bytes()[:2] == b"PK"
    (tmp_path / "manifest.json").write_text("{}")  # committed: never trained into again
    with pytest.raises(FileExistsError, match="finished run"):
        train_ppo(tiny(total_timesteps=2 * ROLLOUT), tmp_path)


def test_early_stop_when_the_bar_holds_k_evaluations(tmp_path) -> None:
    always = {"min_success": 0.0, "max_collision": 1.0, "consecutive_evals": 2}
    cfg = tiny(total_timesteps=8 * ROLLOUT, early_stop=True, promotion=always)
    result = train_ppo(cfg, tmp_path)
    assert result.stopped_early and result.promotion_reached_at == 0
    assert [r["timesteps"] for r in result.curve] == [0, ROLLOUT]
    assert result.timesteps_used == ROLLOUT + cfg.n_envs  # SB3 stops after one more vector step
    # a retry of a finished, promoted run trains nothing more
    again = train_ppo(cfg, tmp_path)
    assert again.stopped_early and again.timesteps_used == result.timesteps_used
    assert again.curve == result.curve
    # the bar first holding k times at the very end of the budget is not an early stop
    at_end = train_ppo(
        tiny(early_stop=True, promotion={**always, "consecutive_evals": 3}), tmp_path / "end"
    )
    assert not at_end.stopped_early and at_end.promotion_reached_at == 0
    assert at_end.timesteps_used == 2 * ROLLOUT


def test_init_policy_state_is_the_starting_policy(tmp_path) -> None:
    source_cfg = tiny(seed=5)
    env = make_vec_env(source_cfg.scenario, 4, 0, **source_cfg.env_overrides)
    source = build_ppo(source_cfg, env)
    state = source.policy.state_dict()
    result = train_ppo(tiny(total_timesteps=ROLLOUT), tmp_path / "warm", init_policy_state=state)
    records = evaluate_policy_episodes(
        source, "crossing", eval_episode_seeds(tiny().eval), env_overrides=tiny().env_overrides
    )
    expected = curve_point(records)
    assert {k: result.curve[0][k] for k in expected} == expected
    bigger = build_ppo(tiny(ppo={"n_steps": 64, "batch_size": 128, "net_arch": [64]}), env)
    with pytest.raises(ValueError, match="init_policy_state does not match"):
        train_ppo(tiny(), tmp_path / "bad", init_policy_state=bigger.policy.state_dict())


def test_a_run_cut_short_of_its_learning_rate_horizon_is_the_start_of_the_long_run(tmp_path) -> None:
    ppo = {"n_steps": 64, "batch_size": 128, "n_epochs": 2, "net_arch": [32, 32], "learning_rate_final": 3e-5}
    long_run = train_ppo(tiny(total_timesteps=4 * ROLLOUT, ppo=ppo), tmp_path / "long")
    cut = train_ppo(tiny(total_timesteps=2 * ROLLOUT, ppo={**ppo, "learning_rate_horizon": 4 * ROLLOUT}),
                    tmp_path / "cut")
    assert learning_columns(cut.curve) == learning_columns(long_run.curve[:3])
    at_cut = tmp_path / "long" / CHECKPOINT_DIR / f"step-{2 * ROLLOUT:010d}.zip"
    assert same_params(policy_params(cut.model_path), policy_params(at_cut))
    # without the horizon the short run decays over its own budget and differs
    own = train_ppo(tiny(total_timesteps=2 * ROLLOUT, ppo=ppo), tmp_path / "own")
    assert not same_params(policy_params(own.model_path), policy_params(at_cut))


def test_log_std_cap_holds_for_every_rollout_and_the_saved_model(tmp_path) -> None:
    """A noise cap below the initial log std clamps it before the first rollout, and the
    model saved after the last update obeys it too; without the cap the std is left alone."""
    cap = -0.7
    result = train_ppo(tiny(ppo={**tiny().ppo.model_dump(), "log_std_init": 0.5, "log_std_max": cap}),
                       tmp_path / "capped")
    capped = PPO.load(result.model_path, device="cpu").policy.log_std
    assert torch.all(capped <= cap + 1e-7)
    free = train_ppo(tiny(ppo={**tiny().ppo.model_dump(), "log_std_init": 0.5}), tmp_path / "free")
    assert torch.all(PPO.load(free.model_path, device="cpu").policy.log_std > 0.0)


def averaging(decay: float | None, **changes) -> TrainConfig:
    return tiny(ppo={**tiny().ppo.model_dump(), "policy_average_decay": decay}, **changes)


def test_policy_average_counts_each_update_once() -> None:
    """The average takes the weights after an update (a rollout that ended) at the next
    boundary or at the end of training, and never without one."""
    from robosf_assets.training.callbacks import PolicyAverage

    model = build_ppo(tiny(), make_vec_env("crossing", 4, 0, n_rays=16, horizon=60))
    avg = PolicyAverage(0.75)
    avg.init_callback(model)
    avg.on_training_start({}, {})
    start = {k: v.clone() for k, v in model.policy.state_dict().items()}
    with torch.no_grad():
        model.policy.log_std.add_(1.0)  # what an update does to one tensor
    avg.on_rollout_start()  # the first boundary of a call follows no update
    assert torch.equal(avg.average["log_std"], start["log_std"])
    avg.on_rollout_end()
    avg.on_rollout_start()
    assert torch.allclose(avg.average["log_std"], start["log_std"] + 0.25)
    avg.on_training_end()  # an early stop: no update since that boundary
    assert torch.allclose(avg.average["log_std"], start["log_std"] + 0.25)
    assert torch.equal(avg.average["action_net.weight"], start["action_net.weight"])
    with avg.averaged():
        assert torch.allclose(model.policy.log_std, start["log_std"] + 0.25)
    assert torch.allclose(model.policy.log_std, start["log_std"] + 1.0)  # PPO's weights restored


def test_decay_zero_is_the_plain_run_and_a_decay_saves_and_evaluates_the_average(base_run, tmp_path) -> None:
    run_dir, plain = base_run
    zero = train_ppo(averaging(0.0), tmp_path / "zero")  # the average of the last update only
    assert learning_columns(zero.curve) == learning_columns(plain.curve)
    assert same_params(policy_params(zero.model_path), policy_params(plain.model_path))

    averaged = train_ppo(averaging(0.5), tmp_path / "avg")
    assert learning_columns(averaged.curve)[0] == learning_columns(plain.curve)[0]  # nothing trained yet
    final = policy_params(averaged.model_path)
    raw = policy_params(averaged.last_checkpoint)  # the checkpoint keeps PPO's own weights
    assert not same_params(final, raw)
    saved = torch.load(averaged.last_checkpoint.with_name("step-0000000512.avg.pt"), weights_only=True)
    assert same_params(final, saved)
    # the curve's last row judged the saved model
    records = evaluate_policy_episodes(
        PPO.load(averaged.model_path, device="cpu"), "crossing", eval_episode_seeds(tiny().eval),
        env_overrides=tiny().env_overrides,
    )
    assert {k: averaged.curve[-1][k] for k in curve_point(records)} == curve_point(records)


def test_an_averaged_run_resumes_from_its_saved_average_and_refuses_a_checkpoint_without_it(tmp_path) -> None:
    # A resumed run is not the straight run bit for bit (SB3 does not restore its RNG
    # state), but with decay 0 it must be the plain resumed run: nothing counted twice or lost.
    def interrupted(cfg_at, name):
        train_ppo(cfg_at(ROLLOUT), tmp_path / name)
        return train_ppo(cfg_at(3 * ROLLOUT), tmp_path / name)

    plain = interrupted(lambda n: tiny(total_timesteps=n), "plain")
    zero = interrupted(lambda n: averaging(0.0, total_timesteps=n), "zero")
    assert zero.resumed_from is not None
    assert learning_columns(zero.curve) == learning_columns(plain.curve)
    assert same_params(policy_params(zero.model_path), policy_params(plain.model_path))
    # with a decay the resumed average starts from the checkpoint's, not from PPO's weights
    half = interrupted(lambda n: averaging(0.5, total_timesteps=n), "half")
    ckpt = tmp_path / "half" / CHECKPOINT_DIR
    before = torch.load(ckpt / "step-0000000256.avg.pt", weights_only=True)
    raw_after = policy_params(ckpt / "step-0000000512.zip")
    after = torch.load(ckpt / "step-0000000512.avg.pt", weights_only=True)
    key = "action_net.weight"
    assert torch.allclose(after[key], 0.5 * before[key] + 0.5 * raw_after[key])

    train_ppo(averaging(0.5, total_timesteps=ROLLOUT), tmp_path / "lost")
    (tmp_path / "lost" / CHECKPOINT_DIR / "step-0000000256.avg.pt").unlink()
    with pytest.raises(ValueError, match="averaged policy weights are missing"):
        train_ppo(averaging(0.5, total_timesteps=2 * ROLLOUT), tmp_path / "lost")
