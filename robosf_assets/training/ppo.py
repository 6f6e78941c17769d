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
      best/step-0000040960.zip    snapshot at each evaluation that beat every earlier one
      model.zip                   the final model (atomic)
      best_model.zip              the best evaluated model (atomic; see "Best model")
      training.json               the TrainResult summary and config (atomic)

Schedule. Evaluations and checkpoints happen at rollout boundaries, right after a PPO
update, so the policy evaluated at ``timesteps`` has been trained on exactly that many
env steps. An evaluation is due every ``eval.eval_every_steps`` (the first boundary at or
after each multiple; every ``eval.dense_eval_every_steps`` instead during a dense phase
up to ``eval.dense_eval_until_steps``), the first one at step 0 (the jumpstart), and a last one when
training ends. Training runs in whole rollouts of ``ppo.n_steps * n_envs`` steps, so the
budget is rounded up to a multiple of that.

Early stop. With ``early_stop`` the run stops once the last ``promotion.consecutive_evals``
evaluations all have success >= ``min_success + early_stop_margin`` and collision <=
``max_collision - early_stop_margin``. SB3 can only stop from inside a rollout, so a
stopped run has collected one extra vector step (``n_envs`` env steps) that it never
trained on; ``timesteps_used`` counts them.

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
from the wall-clock columns); several torch threads may reorder float sums. CUDA is used
when present with ``device="auto"`` and is not bitwise reproducible.

Best model and nominees. PPO with a constant learning rate often peaks and then drifts
(the crossing expert was at success 0.96-0.99 over 40k-240k steps and 0.89 at 2M). Each
evaluation is scored by its worst margin to the promotion bar, ``min(success -
min_success, max_collision - collision)`` (:func:`bar_score`). Whenever a row is among the
``validation.selection_candidates`` best rows so far (:func:`top_rows`) its policy is
saved under ``best/``; at the end the best row's one is copied to ``best_model.zip``. The
best of many noisy evaluations of the same episodes is biased upwards (a lucky spike beats
a stable plateau), so these rows only *nominate* candidates: the expert stage picks among
them and the final policy on held-out selection episodes
(:mod:`robosf_assets.training.selection`) and judges the pick on separate validation
episodes. Snapshots are never deleted, so after a resume every nominee of the kept curve
rows still has its file.

Timing. ``wall_time_s`` is the time of the training calls up to now (a resumed run adds
the time recorded in its checkpoint; work after that checkpoint is lost and not counted).
``env_steps_per_s`` is training throughput, rollouts plus updates, without the time spent
evaluating and checkpointing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from robosf_assets.artifacts import (
    MANIFEST_NAME,
    abandon_run_dir,
    atomic_save,
    atomic_write_json,
    atomic_write_text,
    read_json,
    remove_temp_files,
)
from robosf_assets.benchmark.efficiency import time_to_threshold
from robosf_assets.envs import make_vec_env
from robosf_assets.logging import format_duration, get_logger
from robosf_assets.training.config import PromotionBar, TrainConfig, eval_episode_seeds
from robosf_assets.training.evaluation import curve_point, evaluate_policy_episodes

__all__ = [
    "CHECKPOINT_DIR",
    "CURVE_NAME",
    "MODEL_NAME",
    "RESULT_NAME",
    "BEST_DIR",
    "BEST_MODEL_NAME",
    "TB_DIR",
    "Checkpoint",
    "RunDirDamaged",
    "TrainResult",
    "TrainingMonitor",
    "bar_met",
    "bar_score",
    "best_row",
    "build_ppo",
    "checkpoints",
    "top_rows",
    "latest_checkpoint",
    "promotion_step",
    "read_curve",
    "train_ppo",
    "trailing_streak",
]

log = get_logger("training.ppo")

CURVE_NAME = "curve.jsonl"
MODEL_NAME = "model.zip"
RESULT_NAME = "training.json"
CHECKPOINT_DIR = "checkpoints"
TB_DIR = "tb"
BEST_DIR = "best"
BEST_MODEL_NAME = "best_model.zip"

# Config fields a resumed run must share with its checkpoint.
_RESUME_MUST_MATCH = ("scenario", "seed", "n_envs", "ppo", "eval", "env_overrides")


@dataclass
class TrainResult:
    """What :func:`train_ppo` reports.

    :param model_path: ``run_dir/model.zip``.
    :param curve: learning-curve rows (see :class:`TrainingMonitor`), step 0 first.
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
        device=config.device,
        verbose=0,
    )


def bar_met(row: Mapping[str, Any], bar: PromotionBar, margin: float = 0.0) -> bool:
    """Whether one curve row meets the bar tightened by ``margin`` on both rates."""
    return (
        row["success"] >= bar.min_success + margin
        and row["collision"] <= bar.max_collision - margin
    )


def trailing_streak(
    curve: Sequence[Mapping[str, Any]], bar: PromotionBar, margin: float = 0.0
) -> int:
    """Number of evaluations at the end of ``curve`` that meet the bar in a row."""
    n = 0
    for row in reversed(curve):
        if not bar_met(row, bar, margin):
            break
        n += 1
    return n


def bar_score(row: Mapping[str, Any], bar: PromotionBar) -> float:
    """Worst margin of a curve row to the bar: >= 0 exactly when the row meets it."""
    return min(row["success"] - bar.min_success, bar.max_collision - row["collision"])


def best_row(curve: Sequence[Mapping[str, Any]], bar: PromotionBar) -> Mapping[str, Any] | None:
    """The earliest curve row with the highest :func:`bar_score`, or ``None`` for no rows.

    The maximum of many noisy evaluations of the same episodes is biased upwards: this row
    only nominates a candidate (:func:`top_rows`); the held-out selection set picks the
    policy (:mod:`robosf_assets.training.selection`)."""
    best = None
    for row in curve:
        if best is None or bar_score(row, bar) > bar_score(best, bar):
            best = row
    return best


def top_rows(
    curve: Sequence[Mapping[str, Any]], bar: PromotionBar, n: int
) -> list[Mapping[str, Any]]:
    """The ``n`` curve rows with the highest :func:`bar_score` (the earlier row wins a tie),
    in curve order: the candidates nominated for held-out selection."""
    ranked = sorted(range(len(curve)), key=lambda i: (-bar_score(curve[i], bar), i))
    return [curve[i] for i in sorted(ranked[:n])]


def promotion_step(curve: Sequence[Mapping[str, Any]], bar: PromotionBar) -> int | None:
    """First step of ``bar.consecutive_evals`` evaluations in a row meeting the bar, or ``None``."""
    if not curve:
        return None
    result = time_to_threshold(
        [r["timesteps"] for r in curve],
        [r["success"] for r in curve],
        target=bar.min_success,
        collision=[r["collision"] for r in curve],
        max_collision=bar.max_collision,
        k=bar.consecutive_evals,
    )
    return None if result.censored else result.steps


def read_curve(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a ``curve.jsonl``; a torn last line (a kill mid-write) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                log.warning("{}: ignoring a torn last line", path)
                break
            raise ValueError(f"{path}:{i + 1}: invalid curve row") from None
    return rows


class _CurveLog:
    """Append-only JSONL: each row is written, flushed and fsynced before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, row: Mapping[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, sort_keys=True, allow_nan=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def reset_to(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Replace the file by exactly ``rows`` (atomic)."""
        atomic_write_text(self.path, _curve_text(rows), overwrite=True)


@dataclass(frozen=True)
class Checkpoint:
    """A committed checkpoint: the model zip and its JSON record."""

    model_path: Path
    meta: dict[str, Any]

    @property
    def timesteps(self) -> int:
        return int(self.meta["timesteps"])


def _checkpoint_stem(timesteps: int) -> str:
    return f"step-{timesteps:010d}"


def checkpoints(run_dir: str | os.PathLike[str]) -> list[Checkpoint]:
    """Committed checkpoints in ``run_dir/checkpoints`` (JSON and zip both present), newest
    first. A record that cannot be read (damaged on disk) is skipped with a warning."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found: list[Checkpoint] = []
    for meta_path in folder.glob("step-*.json"):
        zip_path = meta_path.with_suffix(".zip")
        if not zip_path.is_file():
            continue
        try:
            meta = read_json(meta_path)
            int(meta["timesteps"]), int(meta["curve_rows"])
        except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError) as err:
            log.warning("{}: ignoring an unreadable checkpoint record: {}", meta_path, err)
            continue
        found.append(Checkpoint(zip_path, meta))
    return sorted(found, key=lambda c: c.timesteps, reverse=True)


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Checkpoint | None:
    """The newest committed checkpoint in ``run_dir/checkpoints`` (JSON and zip both present)."""
    found = checkpoints(run_dir)
    return found[0] if found else None


def _check_resume_compatible(config: TrainConfig, meta: Mapping[str, Any], where: Path) -> None:
    saved = meta.get("config", {})
    current = config.model_dump(mode="json")
    differ = [k for k in _RESUME_MUST_MATCH if saved.get(k) != current.get(k)]
    if differ:
        raise ValueError(
            f"cannot resume from {where}: config field(s) {differ} differ from the checkpoint's; "
            "use a new run directory for a different run"
        )


# ------------------------------------------------------------------------- callback


class TrainingMonitor(BaseCallback):
    """Evaluates, checkpoints, logs progress and stops early (see the module doc).

    Curve row keys: ``timesteps``, ``success``, ``collision``, ``mean_return``,
    ``n_episodes``, ``wall_time_s`` (cumulative), ``env_steps_per_s`` (training throughput
    so far, ``None`` at step 0) and ``eval_s`` (this evaluation's duration).
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        curve: list[dict[str, Any]],
        eval_env: VecEnv,
        offsets: Mapping[str, float] | None = None,
        started: float | None = None,
    ) -> None:
        super().__init__(verbose=0)
        self.config = config
        self.run_dir = run_dir
        self.curve = curve
        self.eval_env = eval_env
        self.eval_seeds = eval_episode_seeds(config.eval)
        self.curve_log = _CurveLog(run_dir / CURVE_NAME)
        offsets = offsets or {}
        self._wall0 = float(offsets.get("wall_time_s", 0.0))
        self._overhead0 = float(offsets.get("overhead_s", 0.0))
        self._overhead = 0.0
        self._started = time.perf_counter() if started is None else started
        self.stopped_early = False
        self._stop = False
        self.last_checkpoint: Path | None = None
        self._start_steps = 0
        self._last_progress = self._progress_t0 = self._started
        self._next_eval = 0 if not curve else config.eval.next_eval_after(curve[-1]["timesteps"])
        self._next_ckpt = 0

    # ---- bookkeeping
    def wall_time_s(self) -> float:
        return self._wall0 + time.perf_counter() - self._started

    def overhead_s(self) -> float:
        return self._overhead0 + self._overhead

    def env_steps_per_s(self) -> float | None:
        train_time = self.wall_time_s() - self.overhead_s()
        return (
            self.num_timesteps / train_time if self.num_timesteps > 0 and train_time > 0 else None
        )

    # ---- SB3 hooks
    def _on_training_start(self) -> None:
        self.num_timesteps = self.model.num_timesteps
        self._start_steps = self.num_timesteps
        # progress rates and the first progress line count from here, not from set-up
        self._progress_t0 = self._last_progress = time.perf_counter()
        every = self.config.checkpoint_every_steps
        self._next_ckpt = (self.num_timesteps // every + 1) * every

    def _on_rollout_start(self) -> None:
        self.num_timesteps = self.model.num_timesteps
        if self.num_timesteps >= self._next_eval:
            self.evaluate()
            if self.config.early_stop and self._bar_streak_reached():
                self.stopped_early = True
                self._stop = True
        if self.num_timesteps >= self._next_ckpt:
            self.checkpoint()

    def _on_step(self) -> bool:
        now = time.perf_counter()
        if now - self._last_progress >= self.config.progress_interval_s:
            self._last_progress = now
            self._log_progress(now)
        return not self._stop

    def _on_training_end(self) -> None:
        self.num_timesteps = self.model.num_timesteps
        # after an early stop the last row already judged this policy (see the module doc)
        if not self.stopped_early and (
            not self.curve or self.curve[-1]["timesteps"] != self.num_timesteps
        ):
            self.evaluate()
        self.logger.dump(self.num_timesteps)
        self.checkpoint()

    # ---- work
    def _bar_streak_reached(self) -> bool:
        k = self.config.promotion.consecutive_evals
        return (
            trailing_streak(self.curve, self.config.promotion, self.config.early_stop_margin) >= k
        )

    def evaluate(self) -> dict[str, Any]:
        """Play the fixed evaluation episodes, append a curve row and log it."""
        t0 = time.perf_counter()
        records = evaluate_policy_episodes(
            self.model,
            self.config.scenario,
            self.eval_seeds,
            deterministic=self.config.eval.deterministic,
            env=self.eval_env,
        )
        point = curve_point(records)
        eval_s = time.perf_counter() - t0
        self._overhead += eval_s
        rate = self.env_steps_per_s()
        row = {
            "timesteps": int(self.num_timesteps),
            **point,
            "wall_time_s": round(self.wall_time_s(), 3),
            "env_steps_per_s": None if rate is None else round(rate, 1),
            "eval_s": round(eval_s, 3),
        }
        self.curve_log.append(row)
        self.curve.append(row)
        # a snapshot of every row that is among the nominees so far (never deleted, so a
        # resumed run still has the files of its kept rows' nominees)
        if any(r is row for r in top_rows(
            self.curve, self.config.promotion, self.config.validation.selection_candidates
        )):
            self._save_best()
        self._next_eval = self.config.eval.next_eval_after(self.num_timesteps)
        for key in ("success", "collision", "mean_return"):
            self.logger.record(f"eval/{key}", point[key])
        log.info(
            "eval {} seed {} @ {:,} steps: success {:.3f} collision {:.3f} return {:.2f} "
            "({} episodes, {:.1f}s){}",
            self.config.scenario,
            self.config.seed,
            row["timesteps"],
            row["success"],
            row["collision"],
            row["mean_return"],
            row["n_episodes"],
            eval_s,
            "" if rate is None else f", training {rate:,.0f} env-steps/s",
        )
        return row

    def _save_best(self) -> None:
        t0 = time.perf_counter()
        path = self.run_dir / BEST_DIR / f"{_checkpoint_stem(self.num_timesteps)}.zip"
        atomic_save(path, lambda p: self.model.save(p), overwrite=True)
        self._overhead += time.perf_counter() - t0

    def checkpoint(self) -> Path:
        """Save the model and commit it with a JSON record (idempotent per timestep)."""
        t0 = time.perf_counter()
        stem = _checkpoint_stem(self.num_timesteps)
        folder = self.run_dir / CHECKPOINT_DIR
        zip_path, meta_path = folder / f"{stem}.zip", folder / f"{stem}.json"
        if not meta_path.exists():
            atomic_save(zip_path, lambda p: self.model.save(p), overwrite=True)
            self._overhead += time.perf_counter() - t0
            meta = {
                "timesteps": int(self.num_timesteps),
                "curve_rows": len(self.curve),
                "wall_time_s": round(self.wall_time_s(), 3),
                "overhead_s": round(self.overhead_s(), 3),
                "created_at": time.time(),
                "config": self.config.model_dump(mode="json"),
            }
            atomic_write_json(meta_path, meta)
            log.info(
                "checkpoint {} ({:,} steps, {} curve rows)",
                zip_path,
                self.num_timesteps,
                len(self.curve),
            )
        self.last_checkpoint = zip_path
        every = self.config.checkpoint_every_steps
        self._next_ckpt = (self.num_timesteps // every + 1) * every
        return zip_path

    def _log_progress(self, now: float) -> None:
        total = self.config.total_timesteps
        done = self.num_timesteps - self._start_steps
        elapsed = now - self._progress_t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = format_duration(max(total - self.num_timesteps, 0) / rate) if rate > 0 else "?"
        last = self.curve[-1] if self.curve else None
        tail = (
            (
                f" | last eval @ {last['timesteps']:,}: success {last['success']:.2f} "
                f"collision {last['collision']:.2f}"
            )
            if last
            else ""
        )
        log.info(
            "ppo {} seed {}: {:,}/{:,} steps ({:.1f}%) {:,.0f} steps/s ETA {}{}",
            self.config.scenario,
            self.config.seed,
            self.num_timesteps,
            total,
            100.0 * self.num_timesteps / total,
            rate,
            eta,
            tail,
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


def _curve_text(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in rows)


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
    curve_log = _CurveLog(run_dir / CURVE_NAME)
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
    if curve_log.path.read_bytes() != _curve_text(keep).encode("utf-8"):
        curve_log.reset_to(keep)
    return ckpt, keep


def _publish_best(
    run_dir: Path, curve: Sequence[Mapping[str, Any]], bar: PromotionBar
) -> tuple[Path | None, int | None]:
    """Copy the best curve row's snapshot to ``best_model.zip``; ``(None, None)`` if none."""
    row = best_row(curve, bar)
    if row is None:
        return None, None
    snapshot = run_dir / BEST_DIR / f"{_checkpoint_stem(int(row['timesteps']))}.zip"
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
) -> TrainResult:
    """Train (or resume training) a PPO policy into ``run_dir``; see the module doc.

    :param config: the validated run config.
    :param run_dir: the run's directory (created if missing). If it holds a checkpoint the
        run resumes from the newest one.
    :param init_policy_state: a ``policy.state_dict()`` to start from (e.g. BC); every key
        must match :func:`build_ppo`'s policy. Ignored when resuming (the checkpoint wins).
    :param callbacks: extra SB3 callbacks, run after the built-in :class:`TrainingMonitor`.
    :return: the :class:`TrainResult`; ``run_dir/model.zip`` and ``training.json`` are written.
    """
    run_dir = Path(run_dir)
    started = time.perf_counter()
    ckpt, curve = _prepare_run_dir(config, run_dir)
    previous_threads = torch.get_num_threads()
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    try:
        overrides = dict(config.env_overrides)
        env = make_vec_env(config.scenario, config.n_envs, config.train_seed_base, **overrides)
        eval_env = make_vec_env(
            config.scenario,
            min(config.eval.n_eval_envs, config.eval.n_eval_episodes),
            config.eval.eval_seed_base,
            **overrides,
        )
        tb_dir = run_dir / TB_DIR
        if ckpt is None:
            model = build_ppo(config, env, tensorboard_log=tb_dir)
            if init_policy_state is not None:
                _load_init_state(model, init_policy_state)
                log.info(
                    "PPO starts from the given policy state ({} tensors)", len(init_policy_state)
                )
            offsets: dict[str, float] = {}
        else:
            model = PPO.load(ckpt.model_path, env=env, device=config.device)
            model.tensorboard_log = str(tb_dir)
            if init_policy_state is not None:
                log.warning("resuming from {}: init_policy_state is ignored", ckpt.model_path)
            offsets = {
                "wall_time_s": float(ckpt.meta["wall_time_s"]),
                "overhead_s": float(ckpt.meta["overhead_s"]),
            }
            log.info(
                "resuming {} seed {} from {} at {:,} steps",
                config.scenario,
                config.seed,
                ckpt.model_path,
                model.num_timesteps,
            )
        monitor = TrainingMonitor(config, run_dir, curve, eval_env, offsets, started=started)
        extra = [callbacks] if isinstance(callbacks, BaseCallback) else list(callbacks or [])
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
            monitor.stopped_early = (
                already_promoted and model.num_timesteps < config.total_timesteps
            )
            monitor.last_checkpoint = ckpt.model_path if ckpt else None
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
                callback=CallbackList([monitor, *extra]),
                reset_num_timesteps=ckpt is None,
                tb_log_name="PPO",
            )
        model_path = atomic_save(
            run_dir / MODEL_NAME, lambda p: model.save(p), overwrite=True
        )  # nothing in an unfinished run directory is final (_prepare_run_dir)
        best_path, best_steps = _publish_best(run_dir, monitor.curve, config.promotion)
        wall = monitor.wall_time_s()
        result = TrainResult(
            model_path=model_path,
            curve=list(monitor.curve),
            timesteps_used=int(model.num_timesteps),
            wall_time_s=round(wall, 3),
            env_steps_per_s=round(model.num_timesteps / max(wall - monitor.overhead_s(), 1e-9), 1),
            stopped_early=monitor.stopped_early,
            resumed_from=ckpt.model_path if ckpt else None,
            promotion_reached_at=promotion_step(monitor.curve, config.promotion),
            last_checkpoint=monitor.last_checkpoint,
            best_model_path=best_path,
            best_timesteps=best_steps,
            eval_time_s=round(monitor.overhead_s(), 3),
            run_dir=run_dir,
        )
        atomic_write_json(
            run_dir / RESULT_NAME, {**result.summary(), "config": config}, overwrite=True
        )
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
    finally:
        torch.set_num_threads(previous_threads)
