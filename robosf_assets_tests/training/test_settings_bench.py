"""The PPO settings comparison (bench.settings): arms, configs, and one tiny run."""

import json

import pytest

from robosf_assets.bench.settings import OLD_SETTINGS, arm_config, main, parse_settings, profile_settings
from robosf_assets.training.train_config import PROFILES


def test_arms_come_from_names_json_and_files(tmp_path) -> None:
    spec = tmp_path / "arms.json"
    spec.write_text(json.dumps([{"name": "e3", "n_epochs": 3}, {"name": "lr", "learning_rate": 1e-3}]))
    old, new, inline, e3, lr = parse_settings(["old", "new", '{"batch_size": 2048}', f"@{spec}"])
    assert old == OLD_SETTINGS and (old.n_envs, old.n_steps, old.batch_size, old.n_epochs) == (16, 256, 1024, 10)
    assert new == profile_settings() and new.n_envs == PROFILES["full"]["n_envs"]
    assert inline.batch_size == 2048 and inline.n_envs == new.n_envs and inline.name == "arm2"
    assert e3.n_epochs == 3 and e3.batch_size == new.batch_size and lr.learning_rate == 1e-3
    with pytest.raises(ValueError, match="unknown settings"):
        parse_settings(['{"epochs": 3}'])
    with pytest.raises(ValueError, match="distinct"):
        parse_settings(["old", "old"])


def test_arm_config_is_the_profile_run_with_the_arm_settings() -> None:
    arm = parse_settings(['{"name": "x", "n_envs": 8, "n_steps": 100, "batch_size": 200, "learning_rate": 5e-4}'])[0]
    cfg = arm_config(arm, "corridor", 2, budget=1000, eval_every=400, n_eval_episodes=10)
    assert cfg.total_timesteps == 1600 and cfg.total_timesteps % cfg.rollout_size == 0  # whole rollouts
    assert (cfg.n_envs, cfg.ppo.n_steps, cfg.ppo.batch_size, cfg.ppo.learning_rate) == (8, 100, 200, 5e-4)
    # the learning rate decays over the profile's horizon, so the run is the start of a real one
    assert cfg.ppo.learning_rate_horizon == PROFILES["full"]["ppo"]["learning_rate_horizon"] < PROFILES["full"]["total_timesteps"]
    assert cfg.ppo.learning_rate_final == PROFILES["full"]["ppo"]["learning_rate_final"]
    assert cfg.early_stop and cfg.early_stop_margin == 0 and cfg.eval.dense_eval_every_steps is None
    assert cfg.env_overrides == PROFILES["full"]["env_overrides"] and cfg.seed == 2


def test_tiny_comparison_reports_every_seed_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "result.json"
    tiny = '{"name": "%s", "n_envs": 2, "n_steps": 32, "batch_size": 32, "n_epochs": %d, "net_arch": [8]}'
    result = main(
        ["--scenario", "corridor", "--seeds", "0", "1", "--budget", "128", "--eval-every", "64",
         "--eval-episodes", "2", "--settings", tiny % ("a", 1), tiny % ("b", 2),
         "--env-overrides", '{"n_rays": 8, "horizon": 30}', "--out", str(out)]
    )
    saved = json.loads(out.read_text())
    assert saved["arms"] == json.loads(json.dumps(result["arms"]))
    assert [(r["arm"], r["seed"]) for r in saved["runs"]] == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
    for arm in saved["arms"]:
        assert len(arm["steps_to_threshold"]) == 2 and len(arm["censored_at"]) == 2
        for steps, censored in zip(arm["steps_to_threshold"], arm["censored_at"], strict=True):
            assert (steps is None) != (censored is None)  # reached, or censored at the last evaluation
    runs = saved["runs"]
    assert all(r["curve"][0]["timesteps"] == 0 and r["timesteps_used"] >= 128 for r in runs if r["censored_at"])
    assert "steps_ratio" in saved["arms"][1] and "steps_ratio" not in saved["arms"][0]
    printed = capsys.readouterr().out
    assert "ratio vs a" in printed and printed.count("seed") >= 4
    with pytest.raises(SystemExit):  # results are never overwritten
        main(["--settings", "old", "--out", str(out)])
