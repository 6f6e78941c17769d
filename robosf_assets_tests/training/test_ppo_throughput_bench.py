"""Smoke test of the PPO throughput benchmark (tiny budget: it must run, not be fast)."""

import numpy as np

from robosf_assets.bench.ppo_throughput import CEILING, ZeroCostVecEnv, format_table, main


def test_zero_cost_env_honours_the_vecenv_contract() -> None:
    env = ZeroCostVecEnv(4, n_rays=8, episode_length=3)
    obs = env.reset()
    assert obs.shape == (4, 13) and env.observation_space.contains(obs[0])
    ends = 0
    for _ in range(6):
        obs, rewards, dones, infos = env.step(np.zeros((4, 2), dtype=np.float32))
        ends += int(dones.sum())
        for i in np.flatnonzero(dones):
            assert "terminal_observation" in infos[i]
    assert ends == 8  # every world ends an episode every 3 steps


def test_bench_reports_every_arm_against_its_own_ceiling(capsys) -> None:
    tiny = '{"name": "%s", "n_envs": %d, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "net_arch": [8]}'
    rows = main(
        ["--steps", "64", "--rounds", "1", "--scenarios", "corridor", "--devices", "cpu", "--eval-episodes", "2", "--clock", "cpu",
         "--settings", tiny % ("a", 2), tiny % ("b", 4)]
    )
    assert [(r["arm"], r["env"], r["n_envs"]) for r in rows] == [
        ("a", CEILING, 2), ("a", "corridor", 2), ("b", CEILING, 4), ("b", "corridor", 4)
    ]
    for r in rows:
        assert r["ppo"] > 0 and r["ratio"] == r["ppo"] / r["ceiling"]
        assert r["settings"]["batch_size"] == 32 and r["device"] == "cpu" and r["clock"] == "cpu"
    corridor = [r for r in rows if r["env"] == "corridor"]
    assert all(r["env_only"] > 0 and r["eval_s"] > 0 and 0 < r["eval_share"] < 1 for r in corridor)
    table = format_table(rows)
    assert table.count("corridor") == 2 and CEILING not in table
    assert table in capsys.readouterr().out  # printed in one run, both arms
