"""PPO training on the batched crowd-navigation env, with evaluation, checkpoints and resume.

PPO: Schulman et al. 2017, "Proximal Policy Optimization Algorithms", via
Stable-Baselines3's ``PPO`` (``MlpPolicy``) on :func:`robosf_assets.envs.make_vec_env`.

Everything a run produces lives in its ``run_dir``::

    run_dir/
      curve.jsonl                 one row per evaluation (step 0 included), appended + fsynced
      checkpoints/
        step-0000100000.zip       SB3 model (atomic)
        step-0000100000.json      {timesteps, curve_rows, wall_time_s, overhead_s, config}
      tb/PPO_1/                   TensorBoard event files (SB3 metrics plus eval/*)
      best/step-0000040960.zip    snapshot at each evaluation among the selection nominees
      model.zip                   the final model (atomic)
      best_model.zip              the best evaluated model (atomic; see "Best model")
      training.json               the TrainResult summary and config (atomic)

During training the SB3 callbacks of :mod:`robosf_assets.training.callbacks` evaluate
(the schedule), snapshot nominees, stop early, checkpoint and log progress, one job each;
the curve file format is :mod:`robosf_assets.training.curves`. Training runs in whole
rollouts of ``ppo.n_steps * n_envs`` steps, so the budget is rounded up to a multiple of
that. A run stopped early (``early_stop``) has collected one extra vector step it never
trained on; ``timesteps_used`` counts it.

Resume. A checkpoint is committed by its JSON file, written after the model. When
``run_dir/checkpoints`` holds one, :func:`train_ppo` loads the newest (``PPO.load`` with
the env, keeping ``num_timesteps``, ``reset_num_timesteps=False``), cuts ``curve.jsonl``
back to the rows that existed at the checkpoint, and trains on to ``total_timesteps``. The
config must match the checkpoint's on everything that shapes the run (scenario, seed,
n_envs, PPO hyperparameters, evaluation set, env overrides); budget, early stopping and
checkpoint spacing may change. A resumed run is not bitwise identical to an uninterrupted
one: SB3 reseeds torch and the training worlds on load.

Determinism. SB3 is seeded with ``seed * 1000`` (torch, numpy, ``random``, action space)
and the training worlds are seeded ``seed * 1000 + i`` (SB3's ``VecEnv.seed`` adds ``i``).
Evaluations reseed every episode from its own seed and use the mean action. With
``torch_threads = 1`` on CPU two runs with the same config give identical curves (apart
from the wall-clock columns); several torch threads may reorder float sums. With
``device="auto"`` CUDA is used only when it pays (:func:`resolve_device`); CUDA runs are not
bitwise reproducible.

Best model. At the end the best-scoring curve row's snapshot (:func:`best_row`) is copied
to ``best_model.zip``. It is only one nominee: the expert stage picks among the nominees
and the final policy on held-out selection episodes (:mod:`robosf_assets.training.selection`)
and judges the pick on separate validation episodes.

Timing. ``wall_time_s`` is the time of the training calls up to now (a resumed run adds
the time recorded in its checkpoint; work after that checkpoint is lost and not counted).
``env_steps_per_s`` is training throughput, rollouts plus updates, without the time spent
evaluating and checkpointing.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from robosf_assets.artifacts import (
    MANIFEST_NAME,
    abandon_run_dir,
    atomic_save,
    atomic_write_json,
    remove_temp_files,
)
from robosf_assets.envs import make_vec_env
from robosf_assets.logs import format_duration, get_logger
from robosf_assets.threads import torch_threads
from robosf_assets.training.device import resolve_device
from robosf_assets.training.callbacks import (
    BEST_DIR, CHECKPOINT_DIR, Checkpoint, EvaluationHook, PolicyAverage, RunState, checkpoint_stem, checkpoints,
    latest_checkpoint, load_average, training_callbacks,
)
from robosf_assets.training.train_config import PromotionBar, TrainConfig
from robosf_assets.training.curves import (
    CURVE_NAME, CurveLog, bar_met, bar_score, best_row, curve_text, promotion_step, read_curve,
    top_rows, trailing_streak,
)

__all__ = [  # the curve and checkpoint names are re-exported from where they live
    "BEST_DIR", "BEST_MODEL_NAME", "CHECKPOINT_DIR", "CURVE_NAME", "MODEL_NAME", "RESULT_NAME",
    "TB_DIR", "Checkpoint", "RunDirDamaged", "TrainResult", "bar_met", "bar_score", "best_row",
    "build_ppo", "checkpoints", "latest_checkpoint", "promotion_step", "read_curve", "top_rows",
    "train_ppo", "trailing_streak",
]

log = get_logger("training.ppo")

MODEL_NAME = "model.zip"
RESULT_NAME = "training.json"
TB_DIR = "tb"
BEST_MODEL_NAME = "best_model.zip"

# Config fields a resumed run must share with its checkpoint.
_RESUME_MUST_MATCH = ("scenario", "seed", "n_envs", "ppo", "eval", "env_overrides")


@dataclass
class TrainResult:
    """What :func:`train_ppo` reports.

    :param model_path: ``run_dir/model.zip``.
    :param curve: learning-curve rows (:mod:`robosf_assets.training.curves`), step 0 first.
    :param timesteps_used: env steps the model has consumed (``model.num_timesteps``).
    :param wall_time_s: wall time of training, evaluations included (see module doc).
    :param env_steps_per_s: training throughput without evaluation/checkpoint time.
    :param stopped_early: the promotion bar held for k evaluations and training stopped.
    :param resumed_from: checkpoint zip this call resumed from, or ``None``.
    :param promotion_reached_at: first step of k consecutive evaluations meeting the bar
        (:func:`~robosf_assets.benchmark.efficiency.time_to_threshold`), or ``None``.
    :param last_checkpoint: newest checkpoint zip (the final one).
    :param best_model_path: ``run_dir/best_model.zip``, the policy of the best-scoring
        curve row (:func:`bar_score`), one of the nominees the expert stage's held-out
        selection picks from (:mod:`robosf_assets.training.selection`); its curve score
        is biased upwards, so it is not promoted on it.
    :param best_timesteps: timesteps of that row.
    :param eval_time_s: wall time spent in curve evaluations and checkpoints.
    :param run_dir: the run directory.
    """

    model_path: Path
    curve: list[dict[str, Any]]
    timesteps_used: int
    wall_time_s: float
    env_steps_per_s: float
    stopped_early: bool
    resumed_from: Path | None
    promotion_reached_at: int | None
    last_checkpoint: Path | None = None
    best_model_path: Path | None = None
    best_timesteps: int | None = None
    eval_time_s: float = 0.0
    run_dir: Path | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary without the curve (for ``training.json`` and metadata)."""
        out = asdict(self)
        out.pop("curve")
        out["curve_rows"] = len(self.curve)
        out["final_eval"] = self.curve[-1] if self.curve else None
        return out


# ---------------------------------------------------------------------- small pieces


class LinearSchedule:
    """Learning rate from ``start`` (progress remaining 1) to ``end`` (progress remaining 0).

    With ``horizon`` (env steps) longer than the run's ``total`` steps, the decay is the one
    a run of ``horizon`` steps would follow, cut off at ``total``: the first ``total`` steps
    of the longer run, bit for bit (the step is recovered from SB3's progress and the
    progress recomputed exactly as SB3 computes it for ``horizon``).

    A class rather than a closure so saved models reload without cloudpickle surprises.
    """

    def __init__(self, start: float, end: float, total: int | None = None, horizon: int | None = None) -> None:
        self.start = start
        self.end = end
        self.total = total
        self.horizon = horizon

    def __call__(self, progress_remaining: float) -> float:
        total, horizon = getattr(self, "total", None), getattr(self, "horizon", None)
        if horizon is not None and total is not None and horizon != total:
            step = round((1.0 - progress_remaining) * total)
            progress_remaining = max(0.0, 1.0 - float(step) / float(horizon))
        return self.end + (self.start - self.end) * progress_remaining


def learning_rate_schedule(
    start: float, end: float | None, total: int | None = None, horizon: int | None = None
) -> float | LinearSchedule:
    """A constant rate, or a linear decay to ``end`` over the run, or over ``horizon`` steps
    of which the run's ``total`` are taken (SB3 calls it with the progress remaining)."""
    return start if end is None else LinearSchedule(start, end, total, horizon)


def build_ppo(
    config: TrainConfig, env: VecEnv, *, tensorboard_log: str | os.PathLike[str] | None = None
) -> PPO:
    """An untrained SB3 PPO with ``config``'s hyperparameters and architecture on ``env``.

    BC and fine-tuning stages build their policy through this so state dicts match. SB3 is
    seeded with ``config.train_seed_base``, which also reseeds ``env`` to ``seed * 1000 + i``
    at its next reset.
    """
    hp = config.ppo
    return PPO(
        "MlpPolicy",
        env,
        learning_rate=learning_rate_schedule(
            hp.learning_rate, hp.learning_rate_final, config.total_timesteps, hp.learning_rate_horizon
        ),
        n_steps=hp.n_steps,
        batch_size=hp.batch_size,
        n_epochs=hp.n_epochs,
        gamma=hp.gamma,
        gae_lambda=hp.gae_lambda,
        clip_range=hp.clip_range,
        ent_coef=hp.ent_coef,
        vf_coef=hp.vf_coef,
        max_grad_norm=hp.max_grad_norm,
        policy_kwargs={
            "net_arch": {"pi": list(hp.net_arch), "vf": list(hp.net_arch)},
            "log_std_init": hp.log_std_init,
        },
        tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
        seed=config.train_seed_base,
        device=resolve_device(config.device, hp.batch_size),
        verbose=0,
    )


def _check_resume_compatible(config: TrainConfig, meta: Mapping[str, Any], where: Path) -> None:
    saved = meta.get("config", {})
    current = config.model_dump(mode="json")
    differ = [k for k in _RESUME_MUST_MATCH if saved.get(k) != current.get(k)]
    if differ:
        raise ValueError(
            f"cannot resume from {where}: config field(s) {differ} differ from the checkpoint's; "
            "use a new run directory for a different run"
        )


# -------------------------------------------------------------------------- training


class RunDirDamaged(ValueError):
    """A run directory cannot be resumed; it has been marked abandoned (see
    :func:`~robosf_assets.artifacts.abandon_run_dir`), so a retry starts a fresh one."""


def _damaged(run_dir: Path, reason: str) -> RunDirDamaged:
    abandon_run_dir(run_dir, reason)
    return RunDirDamaged(
        f"{run_dir}: {reason}; the directory is marked abandoned and kept for inspection, "
        "a retry starts a fresh run directory"
    )


def _prepare_run_dir(
    config: TrainConfig, run_dir: Path
) -> tuple[Checkpoint | None, list[dict[str, Any]]]:
    """Find the checkpoint to resume from and the curve rows that belong to it.

    ``curve.jsonl`` is then exactly those rows: a torn last line (a kill mid-append) and
    every row written after the checkpoint are dropped before anything is appended. A
    curve shorter than its newest checkpoint falls back to an older checkpoint it covers;
    damage that no checkpoint survives raises :class:`RunDirDamaged`.
    """
    if (run_dir / MANIFEST_NAME).exists():
        raise FileExistsError(
            f"{run_dir} is a finished run ({MANIFEST_NAME} present) and is never trained into "
            "again; train into a new run directory"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    for leftover in remove_temp_files(run_dir):  # writes a killed attempt never committed
        log.info("removed {}, left by an interrupted write", leftover)
    curve_log = CurveLog(run_dir / CURVE_NAME)
    try:
        rows = read_curve(curve_log.path)
    except (ValueError, UnicodeDecodeError) as err:
        raise _damaged(run_dir, f"{curve_log.path} is damaged before its last line ({err})") from None
    found = checkpoints(run_dir)
    if not found:
        if (run_dir / MODEL_NAME).exists():
            log.warning(
                "{}: {} is left from an interrupted run without checkpoint; training afresh",
                run_dir,
                MODEL_NAME,
            )
        if rows:
            log.warning(
                "{}: discarding {} curve rows of an interrupted run without checkpoint",
                curve_log.path,
                len(rows),
            )
        if curve_log.path.exists() and curve_log.path.stat().st_size:
            curve_log.reset_to([])
        return None, []
    ckpt = next((c for c in found if int(c.meta["curve_rows"]) <= len(rows)), None)
    if ckpt is None:
        raise _damaged(
            run_dir,
            f"{curve_log.path} has {len(rows)} rows but every checkpoint recorded more "
            f"(newest {found[0].model_path.name}: {int(found[0].meta['curve_rows'])})",
        )
    if ckpt is not found[0]:
        log.warning(
            "{}: {} rows only; resuming from the older checkpoint {} they cover",
            curve_log.path,
            len(rows),
            ckpt.model_path.name,
        )
    _check_resume_compatible(config, ckpt.meta, ckpt.model_path)
    keep = rows[: int(ckpt.meta["curve_rows"])]
    if keep and int(keep[-1]["timesteps"]) > ckpt.timesteps:
        raise _damaged(
            run_dir,
            f"{curve_log.path} row {len(keep)} is at {keep[-1]['timesteps']} steps, after "
            f"checkpoint {ckpt.model_path.name}",
        )
    if len(rows) > len(keep):
        log.info(
            "{}: dropping {} curve rows written after checkpoint {}",
            curve_log.path,
            len(rows) - len(keep),
            ckpt.model_path.name,
        )
    # rewrite unless the file is exactly the kept rows (a torn tail counts as a difference)
    if curve_log.path.read_bytes() != curve_text(keep).encode("utf-8"):
        curve_log.reset_to(keep)
    return ckpt, keep


def _publish_best(
    run_dir: Path, curve: Sequence[Mapping[str, Any]], bar: PromotionBar
) -> tuple[Path | None, int | None]:
    """Copy the best curve row's snapshot to ``best_model.zip``; ``(None, None)`` if none."""
    row = best_row(curve, bar)
    if row is None:
        return None, None
    snapshot = run_dir / BEST_DIR / f"{checkpoint_stem(int(row['timesteps']))}.zip"
    if not snapshot.is_file():
        log.warning("best curve row at {:,} steps has no snapshot {}", row["timesteps"], snapshot)
        return None, None
    data = snapshot.read_bytes()
    path = atomic_save(run_dir / BEST_MODEL_NAME, lambda p: p.write_bytes(data), overwrite=True)
    return path, int(row["timesteps"])


def _load_init_state(model: PPO, state: Mapping[str, Any]) -> None:
    try:
        model.policy.load_state_dict(dict(state), strict=True)
    except RuntimeError as err:
        raise ValueError(
            "init_policy_state does not match the PPO policy built from config.ppo (net_arch, "
            f"env observation size); build the pre-trained policy with build_ppo: {err}"
        ) from err


def train_ppo(
    config: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    init_policy_state: Mapping[str, Any] | None = None,
    callbacks: BaseCallback | Sequence[BaseCallback] | None = None,
    evaluation_hooks: Sequence[EvaluationHook] = (),
) -> TrainResult:
    """Train (or resume training) a PPO policy into ``run_dir``; see the module doc.

    :param config: the validated run config.
    :param run_dir: the run's directory (created if missing). If it holds a checkpoint the
        run resumes from the newest one.
    :param init_policy_state: a ``policy.state_dict()`` to start from (e.g. BC); every key
        must match :func:`build_ppo`'s policy. Ignored when resuming (the checkpoint wins).
    :param callbacks: extra SB3 callbacks, run after the run's own
        (:func:`~robosf_assets.training.callbacks.training_callbacks`).
    :param evaluation_hooks: called with the model and each new curve row, after the nominee
        snapshot (e.g. ``bench.calibrate --probe-average``).
    :return: the :class:`TrainResult`; ``run_dir/model.zip`` and ``training.json`` are written.
    """
    run_dir = Path(run_dir)
    started = time.perf_counter()
    ckpt, curve = _prepare_run_dir(config, run_dir)
    with torch_threads(config.torch_threads):
        return _train(config, run_dir, ckpt, curve, started, init_policy_state, callbacks, evaluation_hooks)


def _build_model(
    config: TrainConfig,
    run_dir: Path,
    env: VecEnv,
    ckpt: Checkpoint | None,
    init_policy_state: Mapping[str, Any] | None,
) -> PPO:
    """A fresh PPO (from ``init_policy_state`` if given) or the checkpoint's, on ``env``."""
    tb_dir = run_dir / TB_DIR
    if ckpt is None:
        model = build_ppo(config, env, tensorboard_log=tb_dir)
        if init_policy_state is not None:
            _load_init_state(model, init_policy_state)
            log.info("PPO starts from the given policy state ({} tensors)", len(init_policy_state))
        return model
    model = PPO.load(ckpt.model_path, env=env, device=resolve_device(config.device, config.ppo.batch_size))
    model.tensorboard_log = str(tb_dir)
    if init_policy_state is not None:
        log.warning("resuming from {}: init_policy_state is ignored", ckpt.model_path)
    log.info(
        "resuming {} seed {} from {} at {:,} steps",
        config.scenario,
        config.seed,
        ckpt.model_path,
        model.num_timesteps,
    )
    return model


def _policy_average(config: TrainConfig, ckpt: Checkpoint | None) -> PolicyAverage | None:
    """The run's weight average (``ppo.policy_average_decay``), resumed from the checkpoint's."""
    decay = config.ppo.policy_average_decay
    if decay is None:
        return None
    if ckpt is None:
        return PolicyAverage(decay)
    try:
        return PolicyAverage(decay, load_average(ckpt.model_path))
    except (FileNotFoundError, ValueError) as err:
        raise _damaged(ckpt.model_path.parent.parent, str(err)) from None


def _train(
    config: TrainConfig,
    run_dir: Path,
    ckpt: Checkpoint | None,
    curve: list[dict[str, Any]],
    started: float,
    init_policy_state: Mapping[str, Any] | None,
    callbacks: BaseCallback | Sequence[BaseCallback] | None,
    evaluation_hooks: Sequence[EvaluationHook],
) -> TrainResult:
    overrides = dict(config.env_overrides)
    env = make_vec_env(config.scenario, config.n_envs, config.train_seed_base, **overrides)
    eval_env = make_vec_env(
        config.scenario,
        min(config.eval.n_eval_envs, config.eval.n_eval_episodes),
        config.eval.eval_seed_base,
        **overrides,
    )
    model = _build_model(config, run_dir, env, ckpt, init_policy_state)
    state = RunState(curve, started=started)
    if ckpt is not None:
        state.wall_offset_s = float(ckpt.meta["wall_time_s"])
        state.overhead_offset_s = float(ckpt.meta["overhead_s"])
    average = _policy_average(config, ckpt)
    run_callbacks = training_callbacks(config, run_dir, state, eval_env, callbacks, average, evaluation_hooks)
    already_promoted = (
        ckpt is not None
        and config.early_stop
        and trailing_streak(curve, config.promotion, config.early_stop_margin)
        >= config.promotion.consecutive_evals
    )
    remaining = config.total_timesteps - model.num_timesteps
    if already_promoted or remaining <= 0:
        log.info(
            "nothing to train: {:,} steps done of {:,}{}",
            model.num_timesteps,
            config.total_timesteps,
            " and the promotion bar already held" if already_promoted else "",
        )
        # a retry of a run that stopped early reports it again
        state.stopped_early = already_promoted and model.num_timesteps < config.total_timesteps
        state.last_checkpoint = ckpt.model_path if ckpt else None
    else:
        log.info(
            "training PPO on {} seed {}: {:,} steps ({} envs, rollout {:,}, device {}, "
            "torch threads {})",
            config.scenario,
            config.seed,
            remaining,
            config.n_envs,
            config.rollout_size,
            model.device,
            torch.get_num_threads(),
        )
        model.learn(
            total_timesteps=remaining,
            callback=run_callbacks,
            reset_num_timesteps=ckpt is None,
            tb_log_name="PPO",
        )
    final_view = contextlib.nullcontext() if average is None else average.averaged(model)
    with final_view:  # with a weight average, the final model is the average
        model_path = atomic_save(
            run_dir / MODEL_NAME, lambda p: model.save(p), overwrite=True
        )  # nothing in an unfinished run directory is final (_prepare_run_dir)
    best_path, best_steps = _publish_best(run_dir, state.curve, config.promotion)
    wall = state.wall_time_s()
    result = TrainResult(
        model_path=model_path,
        curve=list(state.curve),
        timesteps_used=int(model.num_timesteps),
        wall_time_s=round(wall, 3),
        env_steps_per_s=round(model.num_timesteps / max(wall - state.overhead_s(), 1e-9), 1),
        stopped_early=state.stopped_early,
        resumed_from=ckpt.model_path if ckpt else None,
        promotion_reached_at=promotion_step(state.curve, config.promotion),
        last_checkpoint=state.last_checkpoint,
        best_model_path=best_path,
        best_timesteps=best_steps,
        eval_time_s=round(state.overhead_s(), 3),
        run_dir=run_dir,
    )
    atomic_write_json(run_dir / RESULT_NAME, {**result.summary(), "config": config}, overwrite=True)
    log.info(
        "PPO {} seed {} done: {:,} steps in {} ({:,.0f} env-steps/s training){}{}",
        config.scenario,
        config.seed,
        result.timesteps_used,
        format_duration(result.wall_time_s),
        result.env_steps_per_s,
        ", stopped early" if result.stopped_early else "",
        f", resumed from {ckpt.model_path.name}" if ckpt else "",
    )
    return result
