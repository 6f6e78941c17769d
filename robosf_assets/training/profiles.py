"""The training profiles: every per-profile value in one table (:data:`PROFILE_TABLE`).

One entry per profile (``quick``, ``full``), each with four sections:

- ``expert``: :class:`~robosf_assets.training.train_config.TrainConfig` fields (nested models as
  dicts) of the expert run, and the base every other stage of that profile starts from;
- ``arm``: what the comparison arms (BC's architecture, fine-tuned and baseline PPO)
  change on top of ``expert``: their budget and their dense evaluation phase;
- ``finetune``: :class:`~robosf_assets.training.finetune.FinetuneConfig` fields.

Everything that depends on the profile reads this table: ``profile_config`` and the
arm/fine-tuning configs of the core, the Dagster configs (``robosf_assets.defs.run_config``),
and the tests that check the numbers README.md and docs/ quote (``test_docs.py``).
Why each value is what it is: docs/configuration.md ("Profiles", "PPO settings and
training throughput"); the history that is not there is in the comments below.

No imports beyond the standard library: the docs tests and the UI read it cheaply.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["ARM_EVAL", "ARM_TIMESTEPS", "CRITIC_WARMUP_STEPS", "PROFILES", "PROFILE_TABLE", "arm_overrides"]

_FRAME_STACK = {"frame_stack": 2}
# Both profiles stack 2 frames: one LiDAR scan shows where pedestrians are, two show
# where they are going.

_PPO = {
    # issue 11: 64 worlds x 64 steps, 4 epochs of batch 1024 (16 gradient steps per
    # rollout) at 2.5x the learning rate, instead of 16 x 256 and 10 epochs (40 steps) at
    # 3e-4: 41% of the update cost per env step (bench.ppo_throughput); steps to threshold
    # in docs/configuration.md (bench.settings). Before that, with 16 x 256: batch 512 let
    # bottleneck collapse into a standing-still policy (success 0 for 2M steps), 1024
    # reached 0.89 by 300k; at a constant 3e-4 the success rate kept oscillating by +-0.05
    # around 0.9: the rate decays linearly to 3e-5.
    "n_steps": 64,
    "batch_size": 1024,
    "n_epochs": 4,
    "net_arch": [128, 128],
    "learning_rate": 7.5e-4,
    "learning_rate_final": 3e-5,
    # issue 10: the discount is part of what "safety first" means. At 0.99 (a 10 s horizon at
    # 0.1 s steps) waiting 2 s for a gap costs 18% of everything still to come, so PPO's
    # faster policies with 5-8% collisions out-earned a braking rule with 2% (docs/benchmark.md,
    # "The reward"); at 0.999 waiting costs 2%.
    "gamma": 0.999,
    # issue 10: the action noise is capped at std exp(-1) = 0.37. Uncapped, the speed
    # action's log-std of the 2026-12-02 full-profile experts grew where the expert failed
    # (square +0.05 -> +0.34) and shrank where it passed (hallway -0.30, detour -0.48): the
    # sampled policy braked at random while the evaluated mean drove flat out. With the cap
    # the old square's late curve rose from 0.85-0.95 to 0.93-0.99 success on 3 seeds and
    # detour held 0.95-1.0 after 1M steps (docs/benchmark.md, "The action noise"). BC hands
    # fine-tuning the same std (bc.finetune_log_std -1.0).
    "log_std_max": -1.0,
}


# Issue 10 on the hard default scenarios (hallway, square, detour): an expert may take up to
# 5M steps (1,220 rollouts) and each comparison arm gets 3M (732 rollouts): in calibration
# on the 2026-12-03 scenarios PPO from scratch first met the bar at 1.0M-2.4M steps
# (docs/benchmark.md), and with the simulator and PPO loop of issue 11 (about 20k
# env-steps/s per process, 2 at a time) 30 arms of 3M fit the full profile's 2 hours.
_EXPERT_BUDGET = 4_997_120
_ARM_BUDGET = 2_998_272

# The expert's learning rate decays over the arms' 2,998,272 steps, then stays at the final
# 3e-5 for the rest of its budget (learning_rate_horizon): a settled policy to pick from.
# With the decay over the whole 5M, the 2026-12-03 full profile's square expert kept the
# experts' bar in 16 of its last 31 evaluations and failed validation (0.927 / 0.050); the
# same run with this horizon kept it in 24 of 32 and passed (0.970 / 0.023;
# docs/benchmark.md, "The experts' learning rate").
_EXPERT_LR_HORIZON = _ARM_BUDGET

# The expert bar (issue 10 item 3): an expert is promoted at success >= 0.95 and collision
# <= 0.03 on 3 x 100 fresh validation episodes. The comparison arms keep the benchmark's
# threshold (success >= 0.90, collision <= 0.05), the bar their time to threshold counts.
_EXPERT_BAR = {"min_success": 0.95, "max_collision": 0.03}
_ARM_BAR = {"min_success": 0.90, "max_collision": 0.05}

PROFILE_TABLE: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        # The demo budget (make demo: every scenario, 5 seeds, in minutes on 2 cores). Its
        # experts are the full profile's, shipped (stage.expert_source); where none is
        # shipped it trains the full expert run cut off at 999,424 steps, with the learning
        # rate of the full run's 2,998,272-step decay (learning_rate_horizon), so its first
        # 999,424 steps are the full run's bit for bit. History (old easy defaults): With the settings before issue 11 the full experts' best
        # evaluations came at 40,960 (crossing), 163,840 (bottleneck) and 720,896
        # (corridor), inside the cut. Quick profiles with their own shorter schedules gave
        # experts that failed validation (crossing 0.903 / 0.097 with a 1M decay; corridor
        # 0.911 / 0.078 and bottleneck 0.756 / 0.244 with 64x64 nets and 150k steps).
        "expert": {
            "env_overrides": dict(_FRAME_STACK),
            "total_timesteps": 999_424,
            "n_envs": 64,
            "ppo": {**copy.deepcopy(_PPO), "learning_rate_horizon": _EXPERT_LR_HORIZON},
            "eval": {"eval_every_steps": 40_000, "n_eval_episodes": 100, "n_eval_envs": 16},
            "validation": {"eval_seeds": [0, 1, 2], "episodes_per_seed": 100, "n_envs": 16},
            # the same expert bar as the full profile: a shipped expert is revalidated
            # against it, a trained one (no shipped expert for the scenario) must meet it
            "promotion": dict(_EXPERT_BAR),
            "early_stop": True,
            "early_stop_margin": 0.0,
            "checkpoint_every_steps": 100_000,
            "progress_interval_s": 10.0,
        },
        "arm": {
            "early_stop": False,  # arms run their whole budget
            "promotion": dict(_ARM_BAR),
            # 10 rollouts, both arms alike, independent of when the expert stopped
            "total_timesteps": 40_960,
            # every rollout for the whole arm, on 50 episodes
            "eval": {"dense_eval_every_steps": 4096, "dense_eval_until_steps": 40_960, "n_eval_episodes": 50},
        },
        # 4 of the arm's 10 rollouts
        "finetune": {"critic_warmup_steps": 16_384},
        # the demo cannot train the default scenarios' experts (millions of steps): it adopts
        # the full profile's shipped ones, revalidated (training.expert.adopt_shipped_expert)
        "stage": {"expert_source": "shipped"},
    },
    "full": {
        # The budget that trains experts: 4,997,120 steps; the 5 best curve evaluations and
        # the final policy play 200 held-out episodes, the best of them is validated on
        # 3 seeds x 100 fresh episodes against the expert bar (success >= 0.95, collision
        # <= 0.03). (On the old easy defaults the bar was 0.90 / 0.05 with a 0.03 margin for
        # the stop: a 0.02 margin had stopped corridor at 1.16M steps on three curve
        # evaluations at <= 0.03 collisions, and validation then found 0.060.)
        "expert": {
            "env_overrides": dict(_FRAME_STACK),
            "total_timesteps": _EXPERT_BUDGET,
            "n_envs": 64,
            "ppo": {**copy.deepcopy(_PPO), "learning_rate_horizon": _EXPERT_LR_HORIZON},
            "eval": {"eval_every_steps": 40_000, "n_eval_episodes": 100, "n_eval_envs": 16},
            # 5 nominees (the quick profile's 3) from a curve of 125 evaluations
            "validation": {"eval_seeds": [0, 1, 2], "episodes_per_seed": 100, "n_envs": 16,
                           "selection_candidates": 5},
            "promotion": dict(_EXPERT_BAR),
            # the whole budget, then the held-out selection: an early stop on 3 evaluations
            # of the same 100 curve episodes stopped the hallway expert at 921,664 steps on
            # 0.95-0.97 / 0.02-0.03, and validation then found 0.940 / 0.060 (2026-12-02)
            "early_stop": False,
            "early_stop_margin": 0.0,
            "checkpoint_every_steps": 250_000,
            "progress_interval_s": 30.0,
        },
        "arm": {
            "early_stop": False,
            "total_timesteps": _ARM_BUDGET,
            "promotion": dict(_ARM_BAR),
            # every 2 rollouts (8,192 steps) up to 204,800, where PPO from scratch first
            # reaches the bar on every scenario (20k-120k) and where a warm start must hold
            # it; then the expert's 40,000. At 40,000 from the start, time to threshold
            # could only read 0 or 40,960 on corridor. The expert keeps the plain spacing:
            # its early stop needs the bar to hold over 80,000 steps, not 16,384.
            "eval": {"dense_eval_every_steps": 8192, "dense_eval_until_steps": 204_800},
        },
        # 10 of 732 rollouts: with 8,192 steps the cloned policy drifted from 0.99 success
        # to 0.84-0.93 within 160k steps, with 40,960 it held 0.92-0.99 (training.finetune)
        "finetune": {"critic_warmup_steps": 40_960},
        "stage": {"expert_source": "train"},
    },
}
"""Every per-profile value: ``{profile: {"expert" | "arm" | "finetune": fields}}``."""

PROFILES: dict[str, dict[str, Any]] = {name: p["expert"] for name, p in PROFILE_TABLE.items()}
"""The expert's :class:`TrainConfig` fields per profile (the base of every stage)."""

ARM_TIMESTEPS: dict[str, int] = {name: p["arm"]["total_timesteps"] for name, p in PROFILE_TABLE.items()}
"""Budget of each comparison arm (fine-tuned and baseline) per profile, when not configured."""

ARM_EVAL: dict[str, dict[str, int]] = {name: p["arm"]["eval"] for name, p in PROFILE_TABLE.items()}
"""Evaluation schedule changes (dense phase) of both comparison arms per profile."""

CRITIC_WARMUP_STEPS: dict[str, int] = {
    name: p["finetune"]["critic_warmup_steps"] for name, p in PROFILE_TABLE.items()
}
"""Default critic warm-up of fine-tuning per profile."""


def arm_overrides(profile: str) -> dict[str, Any]:
    """A copy of what the comparison arms of ``profile`` change on top of its expert config."""
    return copy.deepcopy(PROFILE_TABLE[profile]["arm"])
