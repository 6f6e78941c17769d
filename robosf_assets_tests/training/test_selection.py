"""Promotion by held-out selection: curve rows nominate, fresh episodes pick, validation judges."""

import json

import numpy as np
import pytest
from stable_baselines3 import PPO

from robosf_assets.training.train_config import (
    SELECTION_SEED_BASE,
    PromotionBar,
    eval_episode_seeds,
    profile_config,
    selection_episode_seeds,
    validation_episode_seeds,
)
from robosf_assets.training.ppo import BEST_DIR, best_row, top_rows, train_ppo
from robosf_assets.training.selection import (
    SELECTED_MODEL_NAME,
    SELECTION_JSON,
    choose,
    nominate,
    select_policy,
)

BAR = PromotionBar()


def row(t: int, success: float, collision: float | None = None) -> dict:
    return {"timesteps": t, "success": success,
            "collision": round(1 - success, 3) if collision is None else collision}


def test_top_rows_ranks_by_worst_margin_earliest_first_in_curve_order() -> None:
    curve = [row(0, 0.1), row(1, 0.97), row(2, 0.99, 0.08), row(3, 0.97), row(4, 0.98)]
    assert [r["timesteps"] for r in top_rows(curve, BAR, 2)] == [1, 4]  # row 2: collisions
    assert [r["timesteps"] for r in top_rows(curve, BAR, 3)] == [1, 3, 4]
    assert top_rows([], BAR, 3) == []


def test_a_lucky_spike_is_nominated_but_not_picked_over_a_stable_plateau() -> None:
    # the plateau's policies are good (0.97 on every evaluation); one snapshot scored 1.00
    # on the curve's episodes by luck and is worse on fresh ones
    curve = [row(0, 0.2), row(1, 0.97), row(2, 0.97), row(3, 1.00), row(4, 0.96), row(5, 0.97)]
    assert best_row(curve, BAR)["timesteps"] == 3  # the curve's maximum is the spike
    nominees = top_rows(curve, BAR, 3)
    assert [r["timesteps"] for r in nominees] == [1, 2, 3]
    heldout = {1: row(1, 0.97, 0.02), 2: row(2, 0.96, 0.03), 3: row(3, 0.93, 0.07)}
    pick = nominees[choose([heldout[r["timesteps"]] for r in nominees], BAR)]
    assert pick["timesteps"] == 1
    assert choose([row(0, 0.95, 0.02), row(1, 0.95, 0.02)], BAR) == 0  # tie: the earlier
    with pytest.raises(ValueError, match="no candidates"):
        choose([], BAR)


def test_held_out_selection_removes_the_bias_of_the_curve_maximum() -> None:
    """Simulated runs: 30 snapshots with true success in [0.90, 0.96], each evaluated once on
    100 curve episodes. Promoting the curve maximum overestimates its own rate; nominating
    the top 3 plus the final one and picking on 200 held-out episodes gives as good a
    policy, and its validation on 300 fresh episodes is unbiased."""
    rng = np.random.default_rng(0)
    bias_max, bias_heldout, true_max, true_heldout = [], [], [], []
    for _ in range(1500):
        p = rng.uniform(0.90, 0.96, size=30)
        curve = [row(i, rng.binomial(100, q) / 100) for i, q in enumerate(p)]
        spike = best_row(curve, BAR)["timesteps"]
        bias_max.append(curve[spike]["success"] - p[spike])
        true_max.append(p[spike])
        nominees = sorted({r["timesteps"] for r in top_rows(curve, BAR, 3)} | {29})
        heldout = [row(i, rng.binomial(200, p[i]) / 200) for i in nominees]
        pick = nominees[choose(heldout, BAR)]
        bias_heldout.append(rng.binomial(300, p[pick]) / 300 - p[pick])
        true_heldout.append(p[pick])
    assert np.mean(bias_max) > 0.02  # the curve's maximum flatters its policy
    assert abs(np.mean(bias_heldout)) < 0.003  # validation of the held-out pick does not
    assert np.mean(true_heldout) >= np.mean(true_max) - 0.002


def test_selection_seeds_are_disjoint_from_curve_and_validation_episodes() -> None:
    seeds = selection_episode_seeds(200)
    assert seeds[0] == SELECTION_SEED_BASE and len(set(seeds)) == 200
    config = profile_config("full", "crossing", 0)
    others = set(eval_episode_seeds(config.eval))
    for s in config.validation.eval_seeds:
        others |= set(validation_episode_seeds(s, config.validation.episodes_per_seed))
    assert not others & set(seeds)
    with pytest.raises(ValueError, match="selection"):
        profile_config("full", "crossing", 0, eval={"eval_seed_base": SELECTION_SEED_BASE - 10})


def tiny_config(**changes):
    cfg = {
        "total_timesteps": 1536, "n_envs": 4, "env_overrides": {"n_peds": 2, "horizon": 80},
        "ppo": {"n_steps": 128, "batch_size": 256, "n_epochs": 1, "net_arch": [16, 16]},
        "eval": {"eval_every_steps": 512, "n_eval_episodes": 4, "n_eval_envs": 4},
        "validation": {"selection_episodes": 6, "selection_candidates": 2, "n_envs": 6},
        "checkpoint_every_steps": 100_000, "early_stop": False,
    }
    cfg.update(changes)
    return profile_config("quick", "crossing", seed=3, **cfg)


def test_select_policy_end_to_end(tmp_path) -> None:
    config = tiny_config()
    result = train_ppo(config, tmp_path)
    # every nominee of the curve has its snapshot
    for r in top_rows(result.curve, config.promotion, 2):
        assert (tmp_path / BEST_DIR / f"step-{r['timesteps']:010d}.zip").is_file()
    outcome = select_policy(config, tmp_path, result)
    nominees = nominate(result.curve, tmp_path, result.model_path, result.timesteps_used,
                        config.promotion, 2)
    assert [c.timesteps for c in outcome.candidates] == [c.timesteps for c in nominees]
    assert len(outcome.candidates) in (2, 3) and outcome.candidates[-1].timesteps <= 1536
    assert all(c.heldout["n_episodes"] == 6 for c in outcome.candidates)
    pick = outcome.candidates[outcome.chosen]
    assert outcome.timesteps == pick.timesteps
    assert outcome.model_path == tmp_path / SELECTED_MODEL_NAME
    assert outcome.model_path.read_bytes() == pick.path.read_bytes()
    PPO.load(outcome.model_path)
    saved = json.loads((tmp_path / SELECTION_JSON).read_text())
    assert saved["episode_seeds"] == [SELECTION_SEED_BASE, SELECTION_SEED_BASE + 5]
    assert saved["chosen"] == outcome.chosen and saved["model_path"] == SELECTED_MODEL_NAME
    # a retry replaces the files; selection off validates the best curve row's policy
    off = select_policy(tiny_config(validation={"selection_episodes": 0}), tmp_path, result)
    assert off.model_path == result.best_model_path and off.candidates == []
