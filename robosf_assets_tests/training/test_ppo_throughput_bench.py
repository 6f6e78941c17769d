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


def test_bench_runs_and_reports_every_cell() -> None:
    rows = main(
        [
            "--steps",
            "64",
            "--n-envs",
            "2",
            "--scenarios",
            "corridor",
            "--rounds",
            "1",
            "--n-steps",
            "32",
            "--batch-size",
            "32",
            "--n-epochs",
            "1",
            "--net-arch",
            "8",
        ]
    )
    assert [r["env"] for r in rows] == [CEILING, "corridor"]
    assert all(r["ppo"] > 0 for r in rows) and rows[0]["ratio"] == 1.0
    assert "corridor" in format_table(rows)
