"""Behaviour cloning of the expert's demonstrations into the policy PPO will fine-tune.

BC (``imitation.algorithms.bc.BC``) trains the *same* SB3 ``ActorCriticPolicy`` that
:func:`~robosf_assets.training.ppo.build_ppo` builds, so ``ppo.policy.load_state_dict``
matches every key. Three things BC alone gets wrong for a PPO warm start (REFERENCE §6)
are handled here:

1. **The critic.** BC never trains the value head; a random critic makes the first PPO
   updates collapse the actor. After BC the value network is regressed onto the
   demonstrations' discounted Monte-Carlo returns (``gamma`` of the PPO config; the
   return of a truncated episode is cut at the horizon, a known, small downward bias).
2. **The action noise.** BC's negative log-likelihood shrinks ``log_std`` towards the
   (deterministic) expert's zero noise. The BC policy is evaluated both deterministically
   (mean action) and stochastically with its learnt ``log_std``; then ``log_std`` is
   reset to ``finetune_log_std`` (default -1.0, std 0.37 in the [-1, 1] action units) so
   PPO keeps some exploration without undoing the cloned behaviour. Both values are saved.
3. **Normalisation.** No observation normalisation is used anywhere (observations are
   already in [-1, 1]), so demonstrations, BC, fine-tuning and evaluation agree.

Run directory::

    bc_log/progress.csv     BC loss curve (imitation's logger: bc/loss, bc/neglogp, ...)
    value_pretrain.json     value-head regression loss per epoch
    bc_loss.png             both curves
    policy.pt               state_dict of the policy handed to fine-tuning (log_std reset)
    model.zip               the same policy as an SB3 PPO model (loadable with PPO.load)
    evaluation.json         deterministic and stochastic evaluation of the BC policy
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from imitation.algorithms.bc import BC
from imitation.data.types import TrajectoryWithRew
from imitation.util.logger import configure as imitation_logger
from pydantic import BaseModel, ConfigDict, Field

from robosf_assets.artifacts import atomic_save, atomic_write_json, build_manifest, new_run_dir, write_manifest
from robosf_assets.datasets.load import load_trajectories, read_manifest
from robosf_assets.envs import make_vec_env
from robosf_assets.logs import get_logger
from robosf_assets.refs import BCPolicyRef, StageRefused, ValidatedDatasetRef
from robosf_assets.threads import torch_threads
from robosf_assets.training.train_config import TrainConfig, eval_episode_seeds
from robosf_assets.training.evaluation import curve_point, evaluate_policy_episodes
from robosf_assets.training.ppo import build_ppo

log = get_logger("training.bc")


class BCConfig(BaseModel):
    """Behaviour cloning and critic pre-training settings."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(10, ge=1, description="Passes over the demonstrations.")
    batch_size: int = Field(256, ge=1, description="Demonstration transitions per gradient step.")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate of BC.")
    ent_weight: float = Field(1e-3, ge=0, description="Entropy bonus weight in the BC loss.")
    l2_weight: float = Field(0.0, ge=0, description="L2 weight decay in the BC loss.")
    value_epochs: int = Field(10, ge=0, description="Epochs of value-head regression on MC returns (0: skip).")
    value_learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate of the value regression.")
    finetune_log_std: float | None = Field(
        -1.0, description="log_std handed to fine-tuning; None keeps what BC learnt."
    )
    eval_episodes: int = Field(50, ge=1, description="Evaluation episodes of the BC policy (fixed seeds).")


@dataclass
class BCResult:
    policy_path: Path
    model_path: Path
    evaluation: dict[str, Any]
    bc_losses: list[dict[str, float]]
    value_losses: list[float]
    learnt_log_std: list[float]
    finetune_log_std: list[float]
    n_transitions: int
    wall_time_s: float
    loss_png: bytes


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Monte-Carlo returns ``G_t = r_t + gamma * G_{t+1}`` of one episode (``G_T = 0``)."""
    out = np.zeros(len(rewards), dtype=np.float64)
    acc = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        acc = float(rewards[t]) + gamma * acc
        out[t] = acc
    return out


def _actor_and_critic(policy) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    critic = list(policy.mlp_extractor.value_net.parameters()) + list(policy.value_net.parameters())
    critic_ids = {id(p) for p in critic}
    actor = [p for p in policy.parameters() if id(p) not in critic_ids]
    return actor, critic


def pretrain_value_head(
    policy, trajectories: list[TrajectoryWithRew], gamma: float, epochs: int, lr: float, batch_size: int, seed: int
) -> list[float]:
    """Regress the critic on discounted returns; the actor is untouched. Mean loss per epoch."""
    if epochs == 0:
        return []
    obs = np.concatenate([t.obs[:-1] for t in trajectories]).astype(np.float32)
    returns = np.concatenate([discounted_returns(t.rews, gamma) for t in trajectories]).astype(np.float32)
    obs_t = torch.as_tensor(obs, device=policy.device)
    ret_t = torch.as_tensor(returns, device=policy.device)
    _, critic = _actor_and_critic(policy)
    optimizer = torch.optim.Adam(critic, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = torch.randperm(len(obs_t), generator=gen)
        total, batches = 0.0, 0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size].to(policy.device)
            values = policy.predict_values(obs_t[idx]).flatten()
            loss = torch.nn.functional.mse_loss(values, ret_t[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        losses.append(total / batches)
    policy.set_training_mode(False)
    return losses


def _read_bc_log(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    rows = []
    with path.open() as fh:
        for row in csv.DictReader(fh):
            rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return rows


def _loss_png(bc_losses: list[dict[str, float]], value_losses: list[float], title: str) -> bytes:
    from robosf_assets.benchmark.plots import plt, png_bytes

    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    xs = [r.get("bc/batch", i) for i, r in enumerate(bc_losses)]
    a.plot(xs, [r.get("bc/loss", np.nan) for r in bc_losses], label="loss")
    a.plot(xs, [r.get("bc/neglogp", np.nan) for r in bc_losses], label="neg. log-likelihood")
    a.set_xlabel("BC batch")
    a.set_title("behaviour cloning")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    b.plot(range(1, len(value_losses) + 1), value_losses, marker="o", ms=3)
    b.set_xlabel("epoch")
    b.set_ylabel("MSE")
    b.set_title("value head on MC returns")
    b.grid(alpha=0.3)
    fig.suptitle(title)
    return png_bytes(fig)


def train_bc(
    train_config: TrainConfig, bc: BCConfig, trajectories: list[TrajectoryWithRew], run_dir: Path
) -> BCResult:
    """Clone ``trajectories`` into PPO's policy architecture; see the module doc.

    :param train_config: the PPO config fine-tuning will use (architecture, gamma, env
        overrides, evaluation episodes, seed).
    :param bc: BC settings.
    :param trajectories: validated demonstrations (``datasets.load.load_trajectories``).
    :param run_dir: where the artefacts go (must exist).
    """
    if not trajectories:
        raise ValueError("no demonstrations to clone")
    started = time.perf_counter()
    torch.manual_seed(train_config.train_seed_base)
    env = make_vec_env(train_config.scenario, 1, train_config.train_seed_base, **train_config.env_overrides)
    model = build_ppo(train_config, env)
    policy = model.policy
    if trajectories[0].obs.shape[1:] != env.observation_space.shape:
        raise ValueError(
            f"demonstrations have observations of shape {trajectories[0].obs.shape[1:]}, the env "
            f"{env.observation_space.shape}: the dataset was recorded with other env overrides"
        )
    n_transitions = sum(len(t.acts) for t in trajectories)
    trainer = BC(
        observation_space=env.observation_space,
        action_space=env.action_space,
        rng=np.random.default_rng(train_config.train_seed_base),
        policy=policy,
        demonstrations=trajectories,
        batch_size=bc.batch_size,
        optimizer_kwargs={"lr": bc.learning_rate},
        ent_weight=bc.ent_weight,
        l2_weight=bc.l2_weight,
        device=policy.device,
        custom_logger=imitation_logger(run_dir / "bc_log", ["csv"]),
    )
    log.info("BC on {:,} transitions from {} episodes, {} epochs", n_transitions, len(trajectories), bc.epochs)
    with torch_threads(train_config.torch_threads):
        trainer.train(n_epochs=bc.epochs, log_interval=max(1, n_transitions // bc.batch_size // 10),
                      progress_bar=False)
    bc_losses = _read_bc_log(run_dir / "bc_log" / "progress.csv")
    with torch_threads(train_config.torch_threads):
        value_losses = pretrain_value_head(
            policy, trajectories, train_config.ppo.gamma, bc.value_epochs, bc.value_learning_rate, bc.batch_size,
            train_config.train_seed_base,
        )
    atomic_write_json(run_dir / "value_pretrain.json", {"mse_per_epoch": value_losses})

    seeds = eval_episode_seeds(train_config.eval)[: bc.eval_episodes]
    learnt_log_std = policy.log_std.detach().cpu().tolist()
    evaluation = {"learnt_log_std": learnt_log_std}
    for mode, deterministic in (("deterministic", True), ("stochastic", False)):
        with torch_threads(train_config.torch_threads):
            records = evaluate_policy_episodes(
                model, train_config.scenario, seeds, n_envs=min(16, len(seeds)),
                env_overrides=train_config.env_overrides, deterministic=deterministic, policy_name=f"bc-{mode}",
            )
        evaluation[mode] = curve_point(records)
        log.info("BC policy, {} actions: success {:.2f}, collision {:.2f}", mode,
                 evaluation[mode]["success"], evaluation[mode]["collision"])
    if bc.finetune_log_std is not None:
        with torch.no_grad():
            policy.log_std.fill_(bc.finetune_log_std)
    evaluation["finetune_log_std"] = policy.log_std.detach().cpu().tolist()
    atomic_write_json(run_dir / "evaluation.json", evaluation)

    def save_state(tmp: Path) -> None:
        buf = io.BytesIO()
        torch.save(policy.state_dict(), buf)
        tmp.write_bytes(buf.getvalue())

    atomic_save(run_dir / "policy.pt", save_state)
    atomic_save(run_dir / "model.zip", lambda tmp: model.save(tmp))
    png = _loss_png(bc_losses, value_losses, f"BC, {train_config.scenario}, seed {train_config.seed}")
    atomic_save(run_dir / "bc_loss.png", lambda tmp: tmp.write_bytes(png))
    return BCResult(
        policy_path=run_dir / "policy.pt",
        model_path=run_dir / "model.zip",
        evaluation=evaluation,
        bc_losses=bc_losses,
        value_losses=value_losses,
        learnt_log_std=learnt_log_std,
        finetune_log_std=evaluation["finetune_log_std"],
        n_transitions=n_transitions,
        wall_time_s=time.perf_counter() - started,
        loss_png=png,
    )


def load_policy_state(path: Path) -> dict[str, torch.Tensor]:
    """The state_dict saved by :func:`train_bc`."""
    return torch.load(path, map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------ the stage


def seed_partition(scenario: str, seed: int) -> str:
    """The per-seed directory name of a scenario x seed stage: ``<scenario>-seed<seed>``."""
    return f"{scenario}-seed{seed}"


@dataclass(frozen=True)
class BCOutcome:
    """What the BC stage produced: the policy's reference, the training result and the
    manifest written next to it."""

    ref: BCPolicyRef
    result: BCResult
    manifest: dict[str, Any]


def run_bc(train_config: TrainConfig, bc: BCConfig, dataset: ValidatedDatasetRef, root: str | Path) -> BCOutcome:
    """The BC stage: clone the validated ``dataset`` into a new run directory
    ``<root>/bc_policies/<scenario>-seed<seed>/<run-id>/`` and write its manifest.

    :raises StageRefused: if the dataset is not validated, or was recorded with other env
        overrides than ``train_config`` trains with (its observations would not match).
    """
    if not dataset.validated:
        raise StageRefused(f"dataset {dataset.iter_dir} is {dataset.status}; a quarantined dataset is never used")
    recorded = read_manifest(dataset.iter_dir)
    if dict(recorded["env_overrides"]) != dict(train_config.env_overrides):
        raise StageRefused(f"dataset {dataset.iter_dir} was recorded with env overrides {recorded['env_overrides']}, "
                           f"this config trains with {train_config.env_overrides}: observations would not match")
    scenario, seed = train_config.scenario, train_config.seed
    started = time.time()
    run_dir = new_run_dir("bc_policies", seed_partition(scenario, seed), root=root)
    result = train_bc(train_config, bc, load_trajectories(dataset.iter_dir), run_dir)
    manifest = build_manifest(
        kind="bc_policy", partition=seed_partition(scenario, seed),
        config={"train": train_config.model_dump(), "bc": bc.model_dump()},
        seeds={"run_seed": seed, "torch_and_batching": train_config.train_seed_base}, artifact_dir=run_dir,
        started_at=started,
        extra={"dataset_iteration": dataset.iteration, "dataset_id": recorded["dataset_id"],
               "dataset_dir": str(dataset.iter_dir), "demo_transitions": result.n_transitions},
    )
    write_manifest(run_dir, manifest)
    ref = BCPolicyRef(run_dir=run_dir, policy_path=result.policy_path, scenario=scenario, seed=seed,
                      dataset_iteration=dataset.iteration, dataset_id=recorded["dataset_id"],
                      demo_transitions=result.n_transitions)
    return BCOutcome(ref, result, manifest)
