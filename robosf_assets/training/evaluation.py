"""Evaluate a policy on fixed episode sets and judge it against the promotion bar.

Every episode is reseeded from its own seed (see :func:`robosf_assets.envs.rollout.run_episodes`),
so an evaluation set is the same whatever policy ran before and however many worlds play it.
Results are benchmark episode records (:func:`robosf_assets.benchmark.episodes.episode_record`),
summarised with :mod:`robosf_assets.benchmark.stats` (REFERENCE §4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from robosf_assets.benchmark.episodes import episode_record
from robosf_assets.benchmark.stats import aggregate_episode_metrics, rate_with_ci
from robosf_assets.envs import make_vec_env
from robosf_assets.envs.rollout import Policy, run_episodes, sb3_policy
from robosf_assets.envs.vec_env import RobotNavVecEnv
from robosf_assets.logs import get_logger
from robosf_assets.training.train_config import PromotionBar, TrainConfig, validation_episode_seeds

__all__ = [
    "as_policy",
    "curve_point",
    "evaluate_multi_seed",
    "evaluate_policy_episodes",
    "promotion_verdict",
    "validate_policy",
]

log = get_logger("training.evaluation")


def _mean_action_policy(model: Any) -> Policy | None:
    """The deterministic actions of an SB3 actor-critic with a Gaussian head, computed lean.

    ``model.predict`` spends most of its time around the network on 16 observations
    (switching training mode on every module, checking and converting the observation,
    building a distribution object); this computes what it returns -- the actor's mean,
    clipped to the action space -- with the same torch operations in inference mode, so
    the actions are bitwise the same. ``None`` where the model is not of that kind
    (then ``predict`` is used).
    """
    from stable_baselines3.common.distributions import DiagGaussianDistribution
    from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy

    policy = getattr(model, "policy", None)
    if (
        not isinstance(policy, ActorCriticPolicy)
        or not isinstance(policy.action_dist, DiagGaussianDistribution)
        or policy.squash_output
        or not isinstance(policy.action_space, gym.spaces.Box)
        or not isinstance(policy.observation_space, gym.spaces.Box)
    ):
        return None
    import torch

    low, high = policy.action_space.low, policy.action_space.high
    obs_shape = policy.observation_space.shape
    policy.set_training_mode(False)

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            tensor = torch.as_tensor(np.asarray(obs).reshape(-1, *obs_shape), device=policy.device)
            features = BasePolicy.extract_features(policy, tensor, policy.pi_features_extractor)
            mean = policy.action_net(policy.mlp_extractor.forward_actor(features))
        return np.clip(mean.cpu().numpy(), low, high)

    return act


def as_policy(model_or_policy: Any, deterministic: bool = True) -> Policy:
    """A batch policy from an SB3 model (anything with ``predict``) or ``obs -> actions``.

    Deterministic SB3 actor-critics (PPO's ``MlpPolicy``) get a lean path that returns
    bitwise what ``predict`` returns, several times faster on small batches.
    """
    if hasattr(model_or_policy, "predict"):
        fast = _mean_action_policy(model_or_policy) if deterministic else None
        return fast or sb3_policy(model_or_policy, deterministic=deterministic)
    if callable(model_or_policy):
        return model_or_policy
    raise TypeError(
        f"expected an SB3 model or a callable obs -> actions, got {type(model_or_policy).__name__}"
    )


def evaluate_policy_episodes(
    model_or_policy: Any,
    scenario: str,
    seeds: Sequence[int],
    n_envs: int = 16,
    env_overrides: Mapping[str, Any] | None = None,
    deterministic: bool = True,
    *,
    policy_name: str = "policy",
    env: RobotNavVecEnv | None = None,
    extra: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Play one episode per seed and return one benchmark record per episode, in seed order.

    :param model_or_policy: an SB3 model or a batch policy (see :func:`as_policy`).
    :param scenario: scenario name.
    :param seeds: episode seeds.
    :param n_envs: worlds stepped together (capped at ``len(seeds)``); ignored with ``env``.
    :param env_overrides: ``make_vec_env`` overrides; must match what the policy was trained on.
    :param deterministic: mean action (True) or sampled (False); SB3 models only.
    :param policy_name: stored in each record's ``policy`` key.
    :param env: reuse this vec env instead of building one (it is reset).
    :param extra: stored in each record's ``extra`` (e.g. the checkpoint path).
    :return: records with ``episode_index`` = position in ``seeds``.
    """
    if not seeds:
        return []
    policy = as_policy(model_or_policy, deterministic)
    if env is None:
        env = make_vec_env(scenario, min(n_envs, len(seeds)), seeds[0], **dict(env_overrides or {}))
    episodes = run_episodes(env, policy, seeds)
    extra = {"deterministic": deterministic, **dict(extra or {})}
    return [
        episode_record(
            scenario=scenario,
            seed=ep.seed,
            episode_index=i,
            policy=policy_name,
            metrics=ep.metrics,
            extra=extra,
        )
        for i, ep in enumerate(episodes)
    ]


def curve_point(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Success rate, collision rate and mean return of an evaluation (one learning-curve row)."""
    if not records:
        raise ValueError("no episode records to summarise")
    return {
        "success": float(np.mean([bool(r["success"]) for r in records])),
        "collision": float(np.mean([bool(r["collision"]) for r in records])),
        "mean_return": float(np.mean([float(r["episode_return"]) for r in records])),
        "n_episodes": len(records),
    }


def _rates(records: Sequence[Mapping[str, Any]], seed: int) -> dict[str, Any]:
    return {
        "n_episodes": len(records),
        "success": rate_with_ci([bool(r["success"]) for r in records], seed=seed),
        "collision": rate_with_ci([bool(r["collision"]) for r in records], seed=seed),
    }


def evaluate_multi_seed(
    model: Any,
    scenario: str,
    eval_seeds: Sequence[int],
    episodes_per_seed: int,
    n_envs: int = 16,
    env_overrides: Mapping[str, Any] | None = None,
    deterministic: bool = True,
    *,
    policy_name: str = "policy",
    bootstrap_seed: int = 0,
    seed_fn: Callable[[int, int], list[int]] = validation_episode_seeds,
) -> dict[str, Any]:
    """Validate a policy over several evaluation seeds, each its own set of fresh episodes.

    Per seed and pooled, success and collision are reported as rates with a 95% bootstrap
    CI and a Wilson interval (:func:`~robosf_assets.benchmark.stats.rate_with_ci`); the pool
    also gets :func:`~robosf_assets.benchmark.stats.aggregate_episode_metrics` (mean,
    median, p95, bootstrap CI of every REFERENCE §4 metric).

    :param model: SB3 model or batch policy.
    :param scenario: scenario name.
    :param eval_seeds: validation seeds (issue 3 asks for at least 3).
    :param episodes_per_seed: episodes per validation seed (issue 3: 100).
    :param n_envs: worlds stepped together.
    :param env_overrides: ``make_vec_env`` overrides.
    :param deterministic: mean action or sampled.
    :param policy_name: stored in every record.
    :param bootstrap_seed: seed of every bootstrap CI.
    :param seed_fn: ``(eval_seed, n) -> episode seeds``; default
        :func:`~robosf_assets.training.train_config.validation_episode_seeds`.
    :return: ``{"scenario", "policy", "deterministic", "eval_seeds", "episodes_per_seed",
        "per_seed": {str(seed): {"n_episodes", "success", "collision"}},
        "pooled": {"n_episodes", "success", "collision", "metrics"}, "episodes": [records]}``;
        each record's ``extra.eval_seed`` says which seed it belongs to. Everything but
        ``episodes`` is small enough for asset metadata.
    """
    if not eval_seeds:
        raise ValueError("eval_seeds is empty: give at least one validation seed")
    if len(set(eval_seeds)) != len(eval_seeds):
        raise ValueError(f"eval_seeds must be distinct, got {list(eval_seeds)}")
    n_envs = min(n_envs, episodes_per_seed)
    env = make_vec_env(scenario, n_envs, 0, **dict(env_overrides or {}))
    per_seed: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    for eval_seed in eval_seeds:
        recs = evaluate_policy_episodes(
            model,
            scenario,
            seed_fn(int(eval_seed), episodes_per_seed),
            deterministic=deterministic,
            policy_name=policy_name,
            env=env,
            extra={"eval_seed": int(eval_seed)},
        )
        # episode_index counts across the whole validation, so (seed, index) pairs stay unique
        for r in recs:
            r["episode_index"] = len(records)
            records.append(r)
        per_seed[str(eval_seed)] = _rates(recs, bootstrap_seed)
        log.info(
            "validation {} seed {}: success {:.3f} collision {:.3f} ({} episodes)",
            scenario,
            eval_seed,
            per_seed[str(eval_seed)]["success"]["mean"],
            per_seed[str(eval_seed)]["collision"]["mean"],
            len(recs),
        )
    pooled = _rates(records, bootstrap_seed)
    pooled["metrics"] = aggregate_episode_metrics(records, seed=bootstrap_seed)
    return {
        "scenario": scenario,
        "policy": policy_name,
        "deterministic": deterministic,
        "eval_seeds": [int(s) for s in eval_seeds],
        "episodes_per_seed": int(episodes_per_seed),
        "per_seed": per_seed,
        "pooled": pooled,
        "episodes": records,
    }


def _rate(block: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``{"mean", ...}`` of ``key`` in ``block``; a bare number is accepted as the mean."""
    if key not in block:
        raise KeyError(f"summary has no {key!r} rate; expected evaluate_multi_seed's output")
    value = block[key]
    return dict(value) if isinstance(value, Mapping) else {"mean": float(value)}


def _judge(block: Mapping[str, Any], bar: PromotionBar) -> dict[str, Any]:
    success, collision = _rate(block, "success"), _rate(block, "collision")
    s_margin = success["mean"] - bar.min_success
    c_margin = bar.max_collision - collision["mean"]
    return {
        "passed": s_margin >= 0 and c_margin >= 0,
        "success": {
            "value": success["mean"],
            "threshold": bar.min_success,
            "margin": s_margin,
            "passed": s_margin >= 0,
            "ci": [success.get("ci_low"), success.get("ci_high")],
            "wilson": [success.get("wilson_low"), success.get("wilson_high")],
        },
        "collision": {
            "value": collision["mean"],
            "threshold": bar.max_collision,
            "margin": c_margin,
            "passed": c_margin >= 0,
            "ci": [collision.get("ci_low"), collision.get("ci_high")],
            "wilson": [collision.get("wilson_low"), collision.get("wilson_high")],
        },
    }


def _describe(judged: Mapping[str, Any]) -> str:
    s, c = judged["success"], judged["collision"]
    s_text = (
        f"success {s['value']:.3f} >= {s['threshold']:.3f} (by {s['margin']:.3f})"
        if s["passed"]
        else f"success {s['value']:.3f} is {-s['margin']:.3f} below {s['threshold']:.3f}"
    )
    c_text = (
        f"collision {c['value']:.3f} <= {c['threshold']:.3f} (by {c['margin']:.3f})"
        if c["passed"]
        else f"collision {c['value']:.3f} is {-c['margin']:.3f} above {c['threshold']:.3f}"
    )
    return f"{s_text}; {c_text}"


def promotion_verdict(
    summary: Mapping[str, Any], bar: PromotionBar | None = None
) -> dict[str, Any]:
    """Does the validated policy meet the promotion bar, and by how much?

    Margins are signed so that positive means "passes with room": success
    ``value - min_success`` and collision ``max_collision - value``; a failure is the
    magnitude of the negative margin. The pooled rates decide; with ``bar.per_seed``
    every seed must pass as well.

    :param summary: :func:`evaluate_multi_seed`'s result, or a dict with ``success`` and
        ``collision`` rates (``rate_with_ci`` dicts or plain numbers).
    :param bar: default :class:`~robosf_assets.training.train_config.PromotionBar` ().
    :return: ``{"passed", "success": {"value", "threshold", "margin", "passed", "ci",
        "wilson"}, "collision": {...}, "per_seed": {seed: {...}}, "failed_seeds", "message",
        "bar"}``.
    """
    bar = bar or PromotionBar()
    pooled = summary.get("pooled", summary)
    verdict = _judge(pooled, bar)
    per_seed = {str(k): _judge(v, bar) for k, v in summary.get("per_seed", {}).items()}
    failed_seeds = [k for k, v in per_seed.items() if not v["passed"]]
    passed = verdict["passed"] and (not bar.per_seed or not failed_seeds)
    message = ("PASSED: " if passed else "FAILED: ") + _describe(verdict)
    if bar.per_seed and failed_seeds:
        message += f"; seeds {failed_seeds} miss the bar on their own"
    return {
        **verdict,
        "passed": passed,
        "per_seed": per_seed,
        "failed_seeds": failed_seeds,
        "message": message,
        "bar": bar.model_dump(),
    }


def validate_policy(
    model: Any, config: TrainConfig, *, policy_name: str = "expert"
) -> dict[str, Any]:
    """Multi-seed validation of a trained policy as ``config`` specifies, with its verdict.

    Runs :func:`evaluate_multi_seed` on ``config.validation`` (fresh episodes, disjoint from
    the training worlds and from the learning-curve set) with ``config.env_overrides``, and
    adds ``"verdict"``: :func:`promotion_verdict` against ``config.promotion``.
    """
    summary = evaluate_multi_seed(
        model,
        config.scenario,
        config.validation.eval_seeds,
        config.validation.episodes_per_seed,
        n_envs=config.validation.n_envs,
        env_overrides=config.env_overrides,
        deterministic=config.eval.deterministic,
        policy_name=policy_name,
        bootstrap_seed=config.seed,
    )
    summary["verdict"] = promotion_verdict(summary, config.promotion)
    log.info("validation {} {}: {}", config.scenario, policy_name, summary["verdict"]["message"])
    return summary
