"""The SB3 callbacks of a PPO run, one job each, assembled by :func:`training_callbacks`.

- :class:`PolicyAverage` (with ``ppo.policy_average_decay``) keeps an exponential moving
  average of the policy's weights; the evaluator, the nominee snapshots, the checkpoints
  (beside the zip) and the final model then see the average;
- :class:`CurveEvaluator` plays the fixed evaluation episodes when due, appends a curve
  row (:mod:`robosf_assets.training.curves`) and runs its on-evaluation hooks;
- :class:`SaveNominees`, an on-evaluation hook, snapshots under ``best/`` every row among
  the selection nominees so far;
- :class:`StopWhenBarHolds` stops training once the promotion bar held for k evaluations;
- :class:`Checkpointer` saves and commits ``checkpoints/step-*.zip`` + ``.json``;
- :class:`ProgressLogger` writes a progress line every ``progress_interval_s``.

They share one :class:`RunState` (the curve rows, the clock, the stop flag, the last
checkpoint), which :func:`~robosf_assets.training.ppo.train_ppo` reads when training ends.
Within each SB3 hook they run in the order above, so at a rollout boundary the evaluation
(and its nominee snapshot) comes first, then the early-stop test on that row, then the
checkpoint, which records the row.

Schedule. Evaluations and checkpoints happen at rollout boundaries, right after a PPO
update, so the policy evaluated at ``timesteps`` has been trained on exactly that many
env steps. An evaluation is due every ``eval.eval_every_steps`` (the first boundary at or
after each multiple; every ``eval.dense_eval_every_steps`` instead during a dense phase
up to ``eval.dense_eval_until_steps``), the first one at step 0 (the jumpstart), and a
last one when training ends (unless training stopped early: the last row then already
judged the final policy). A checkpoint is due every ``checkpoint_every_steps`` and when
training ends.

Early stop. The run stops once the last ``promotion.consecutive_evals`` evaluations all
have success >= ``min_success + early_stop_margin`` and collision <= ``max_collision -
early_stop_margin``. SB3 can only stop from inside a rollout, so a stopped run has
collected one extra vector step (``n_envs`` env steps) that it never trained on.

Best model and nominees. PPO with a constant learning rate often peaks and then drifts
(the crossing expert was at success 0.96-0.99 over 40k-240k steps and 0.89 at 2M). Each
evaluation is scored by its worst margin to the promotion bar
(:func:`~robosf_assets.training.curves.bar_score`). Whenever a row is among the
``validation.selection_candidates`` best rows so far
(:func:`~robosf_assets.training.curves.top_rows`) its policy is saved under ``best/``. The
best of many noisy evaluations of the same episodes is biased upwards, so these rows only
*nominate* candidates: :mod:`robosf_assets.training.selection` picks among them on
held-out episodes. Snapshots are never deleted, so after a resume every nominee of the
kept curve rows still has its file.

Timing. The wall-clock columns count from the start of the call (plus the time recorded
in the checkpoint a run resumed from); evaluation, snapshot and checkpoint time is
overhead, left out of the training throughput.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from robosf_assets.artifacts import atomic_save, atomic_write_json, read_json
from robosf_assets.logs import format_duration, get_logger
from robosf_assets.training.train_config import TrainConfig, eval_episode_seeds
from robosf_assets.training.curves import CURVE_NAME, CurveLog, top_rows, trailing_streak
from robosf_assets.training.evaluation import curve_point, evaluate_policy_episodes

__all__ = [
    "BEST_DIR",
    "CHECKPOINT_DIR",
    "CapLogStd",
    "Checkpoint",
    "Checkpointer",
    "CurveEvaluator",
    "EvaluationHook",
    "PolicyAverage",
    "ProgressLogger",
    "RunState",
    "SaveNominees",
    "StopWhenBarHolds",
    "checkpoint_stem",
    "checkpoints",
    "latest_checkpoint",
    "training_callbacks",
]

log = get_logger("training.ppo")  # the run's lines keep the logger name they always had

CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"


# --------------------------------------------------------------------- shared state


@dataclass
class RunState:
    """What the callbacks of one run share.

    :param curve: the curve rows so far (those kept from a checkpoint first); appended to.
    :param wall_offset_s: wall time recorded by the checkpoint a run resumed from.
    :param overhead_offset_s: overhead recorded by that checkpoint.
    :param started: ``time.perf_counter()`` at the start of this call.
    :param overhead: evaluation, snapshot and checkpoint seconds of this call.
    :param stopped_early: set when :class:`StopWhenBarHolds` stopped the run.
    :param last_checkpoint: the newest checkpoint zip committed or resumed from.
    """

    curve: list[dict[str, Any]]
    wall_offset_s: float = 0.0
    overhead_offset_s: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    overhead: float = 0.0
    stopped_early: bool = False
    last_checkpoint: Path | None = None

    def wall_time_s(self) -> float:
        """Wall time of the run, earlier calls included."""
        return self.wall_offset_s + time.perf_counter() - self.started

    def overhead_s(self) -> float:
        """Evaluation and checkpoint time of the run, earlier calls included."""
        return self.overhead_offset_s + self.overhead

    def env_steps_per_s(self, timesteps: int) -> float | None:
        """Training throughput so far, without overhead; ``None`` before any step."""
        train_time = self.wall_time_s() - self.overhead_s()
        return timesteps / train_time if timesteps > 0 and train_time > 0 else None


EvaluationHook = Callable[[BaseAlgorithm, dict[str, Any]], None]
"""Called by :class:`CurveEvaluator` with the model and each new row (already in the curve)."""


# ----------------------------------------------------------------------- weight average


AVERAGE_SUFFIX = ".avg.pt"
"""A checkpoint's averaged policy weights: ``checkpoints/step-*.avg.pt`` beside its zip."""


class PolicyAverage(BaseCallback):
    """Exponential moving average of the policy's weights, ``avg <- d * avg + (1 - d) *
    weights`` after every PPO update (Polyak averaging; Nikishin et al. 2018, "Improving
    stability in deep reinforcement learning with weight averaging").

    SB3 calls ``_on_rollout_end`` only when a rollout was collected in full, and PPO then
    updates; the average takes the new weights at the next rollout boundary or at the end
    of training, so a run stopped early (no update after its last rollout) and a resumed run
    (its first boundary follows no update) never count one update twice.
    :meth:`averaged` puts the average into the policy for what is done inside it (the
    evaluation and its snapshot, the final save) and restores PPO's weights after.

    :param decay: ``d``, in [0, 1).
    :param initial: the average to start from (a checkpoint's); ``None``: the policy's
        weights at the start of training.
    """

    def __init__(self, decay: float, initial: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__(verbose=0)
        self.decay = decay
        self.average = initial
        self._pending = False

    def _on_training_start(self) -> None:
        if self.average is None:
            self.average = {k: v.detach().clone() for k, v in self.model.policy.state_dict().items()}
        elif self.average.keys() != self.model.policy.state_dict().keys():
            raise ValueError("the averaged weights do not fit this policy (different tensors)")

    def _on_rollout_end(self) -> None:
        self._pending = True

    def _update(self) -> None:
        if not self._pending:
            return
        self._pending = False
        with torch.no_grad():
            for key, value in self.model.policy.state_dict().items():
                if value.dtype.is_floating_point:
                    self.average[key].mul_(self.decay).add_(value, alpha=1.0 - self.decay)
                else:  # counters and the like follow the weights
                    self.average[key].copy_(value)

    def _on_rollout_start(self) -> None:
        self._update()

    def _on_training_end(self) -> None:
        self._update()

    def _on_step(self) -> bool:
        return True

    @contextlib.contextmanager
    def averaged(self, model: BaseAlgorithm | None = None) -> Iterator[None]:
        """Within the block ``model``'s policy (default: the training model's) holds the average."""
        policy = (model or self.model).policy
        if self.average is None:
            raise RuntimeError("PolicyAverage.averaged() before training started")
        own = {k: v.detach().clone() for k, v in policy.state_dict().items()}
        policy.load_state_dict(self.average)
        try:
            yield
        finally:
            policy.load_state_dict(own)

    def save(self, path: Path) -> None:
        """Write the average atomically (beside a checkpoint's zip)."""
        atomic_save(path, lambda p: torch.save(self.average, p), overwrite=True)


def load_average(zip_path: Path) -> dict[str, torch.Tensor]:
    """The averaged weights saved beside the checkpoint ``zip_path``; a missing or unreadable
    file raises ``FileNotFoundError`` / ``ValueError`` naming it."""
    path = zip_path.with_name(zip_path.stem + AVERAGE_SUFFIX)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the checkpoint's averaged policy weights are missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged file: torch raises several kinds
        raise ValueError(f"{path}: cannot read the averaged policy weights: {err}") from None


# ----------------------------------------------------------------------- evaluation


class CurveEvaluator(BaseCallback):
    """Evaluates on the schedule (see the module doc) and appends each row to the curve
    and to ``run_dir/curve.jsonl``; then runs ``on_evaluation`` hooks in order.

    :param config: the run config (``eval`` schedule, ``scenario``).
    :param run_dir: the run directory.
    :param state: the shared :class:`RunState`.
    :param eval_env: the evaluation worlds.
    :param on_evaluation: hooks called after each row is recorded.
    :param average: evaluate (and run the hooks on) this averaged policy instead of PPO's.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        state: RunState,
        eval_env: VecEnv,
        on_evaluation: Sequence[EvaluationHook] = (),
        average: PolicyAverage | None = None,
    ) -> None:
        super().__init__(verbose=0)
        self.average = average
        self.config = config
        self.state = state
        self.eval_env = eval_env
        self.eval_seeds = eval_episode_seeds(config.eval)
        self.curve_log = CurveLog(run_dir / CURVE_NAME)
        self.on_evaluation = list(on_evaluation)
        curve = state.curve
        self._next_eval = 0 if not curve else config.eval.next_eval_after(curve[-1]["timesteps"])

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps >= self._next_eval:
            self.evaluate()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        curve = self.state.curve
        steps = self.model.num_timesteps
        # after an early stop the last row already judged this policy (see the module doc)
        if not self.state.stopped_early and (not curve or curve[-1]["timesteps"] != steps):
            self.evaluate()
        self.logger.dump(steps)

    def evaluate(self) -> dict[str, Any]:
        """Play the fixed evaluation episodes, record a curve row, log it, run the hooks;
        with a :class:`PolicyAverage`, all of it on the averaged policy."""
        view = self.average.averaged() if self.average is not None else contextlib.nullcontext()
        with view:
            return self._evaluate()

    def _evaluate(self) -> dict[str, Any]:
        steps = int(self.model.num_timesteps)
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
        self.state.overhead += eval_s
        rate = self.state.env_steps_per_s(steps)
        row = {
            "timesteps": steps,
            **point,
            "wall_time_s": round(self.state.wall_time_s(), 3),
            "env_steps_per_s": None if rate is None else round(rate, 1),
            "eval_s": round(eval_s, 3),
        }
        self.curve_log.append(row)
        self.state.curve.append(row)
        for hook in self.on_evaluation:
            hook(self.model, row)
        self._next_eval = self.config.eval.next_eval_after(steps)
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


class SaveNominees:
    """On-evaluation hook: saves ``best/step-*.zip`` when the new row is among the
    ``config.validation.selection_candidates`` best rows so far (:func:`top_rows`)."""

    def __init__(self, config: TrainConfig, run_dir: Path, state: RunState) -> None:
        self.bar = config.promotion
        self.n = config.validation.selection_candidates
        self.folder = run_dir / BEST_DIR
        self.state = state

    def __call__(self, model: BaseAlgorithm, row: dict[str, Any]) -> None:
        if not any(r is row for r in top_rows(self.state.curve, self.bar, self.n)):
            return
        t0 = time.perf_counter()
        path = self.folder / f"{checkpoint_stem(int(row['timesteps']))}.zip"
        atomic_save(path, lambda p: model.save(p), overwrite=True)
        self.state.overhead += time.perf_counter() - t0


# ----------------------------------------------------------------------- early stop


class StopWhenBarHolds(BaseCallback):
    """Stops training after an evaluation that ends a streak of
    ``promotion.consecutive_evals`` rows meeting the bar tightened by ``early_stop_margin``.

    Place it after the :class:`CurveEvaluator`: it judges the rows that evaluator added at
    this rollout boundary."""

    def __init__(self, config: TrainConfig, state: RunState) -> None:
        super().__init__(verbose=0)
        self.bar = config.promotion
        self.margin = config.early_stop_margin
        self.state = state
        self._judged = len(state.curve)

    def _on_rollout_start(self) -> None:
        if len(self.state.curve) == self._judged:
            return
        self._judged = len(self.state.curve)
        if trailing_streak(self.state.curve, self.bar, self.margin) >= self.bar.consecutive_evals:
            self.state.stopped_early = True

    def _on_step(self) -> bool:
        return not self.state.stopped_early


# ----------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A committed checkpoint: the model zip and its JSON record."""

    model_path: Path
    meta: dict[str, Any]

    @property
    def timesteps(self) -> int:
        return int(self.meta["timesteps"])


def checkpoint_stem(timesteps: int) -> str:
    """File stem of a checkpoint or snapshot at ``timesteps``: ``step-0000040960``."""
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


class Checkpointer(BaseCallback):
    """Saves the model every ``checkpoint_every_steps`` (at the first rollout boundary at or
    after each multiple) and when training ends. A checkpoint is committed by its JSON
    record ``{timesteps, curve_rows, wall_time_s, overhead_s, created_at, config}``,
    written after the zip (and after the averaged weights, ``step-*.avg.pt``, with a
    :class:`PolicyAverage`); one already committed at the same step is kept as it is."""

    def __init__(
        self, config: TrainConfig, run_dir: Path, state: RunState, average: PolicyAverage | None = None
    ) -> None:
        super().__init__(verbose=0)
        self.average = average
        self.config = config
        self.folder = run_dir / CHECKPOINT_DIR
        self.state = state
        self._next = 0

    def _on_training_start(self) -> None:
        every = self.config.checkpoint_every_steps
        self._next = (self.model.num_timesteps // every + 1) * every

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps >= self._next:
            self.checkpoint()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.checkpoint()

    def checkpoint(self) -> Path:
        """Save the model and commit it with a JSON record (idempotent per timestep)."""
        steps = int(self.model.num_timesteps)
        t0 = time.perf_counter()
        stem = checkpoint_stem(steps)
        zip_path, meta_path = self.folder / f"{stem}.zip", self.folder / f"{stem}.json"
        if not meta_path.exists():
            atomic_save(zip_path, lambda p: self.model.save(p), overwrite=True)
            if self.average is not None:
                self.average.save(zip_path.with_name(stem + AVERAGE_SUFFIX))
            self.state.overhead += time.perf_counter() - t0
            meta = {
                "timesteps": steps,
                "curve_rows": len(self.state.curve),
                "wall_time_s": round(self.state.wall_time_s(), 3),
                "overhead_s": round(self.state.overhead_s(), 3),
                "created_at": time.time(),
                "config": self.config.model_dump(mode="json"),
            }
            atomic_write_json(meta_path, meta)
            log.info(
                "checkpoint {} ({:,} steps, {} curve rows)", zip_path, steps, len(self.state.curve)
            )
        self.state.last_checkpoint = zip_path
        every = self.config.checkpoint_every_steps
        self._next = (steps // every + 1) * every
        return zip_path


# ------------------------------------------------------------------------- progress


class ProgressLogger(BaseCallback):
    """A line with steps, rate, ETA and the last evaluation every ``progress_interval_s``
    (rates count from the start of training, not from set-up)."""

    def __init__(self, config: TrainConfig, state: RunState) -> None:
        super().__init__(verbose=0)
        self.config = config
        self.state = state
        self._start_steps = 0
        self._t0 = self._last = state.started

    def _on_training_start(self) -> None:
        self._start_steps = self.model.num_timesteps
        self._t0 = self._last = time.perf_counter()

    def _on_step(self) -> bool:
        now = time.perf_counter()
        if now - self._last >= self.config.progress_interval_s:
            self._last = now
            self._log(now)
        return True

    def _log(self, now: float) -> None:
        total = self.config.total_timesteps
        steps = self.model.num_timesteps
        elapsed = now - self._t0
        rate = (steps - self._start_steps) / elapsed if elapsed > 0 else 0.0
        eta = format_duration(max(total - steps, 0) / rate) if rate > 0 else "?"
        last = self.state.curve[-1] if self.state.curve else None
        tail = (
            f" | last eval @ {last['timesteps']:,}: success {last['success']:.2f} "
            f"collision {last['collision']:.2f}"
            if last
            else ""
        )
        log.info(
            "ppo {} seed {}: {:,}/{:,} steps ({:.1f}%) {:,.0f} steps/s ETA {}{}",
            self.config.scenario,
            self.config.seed,
            steps,
            total,
            100.0 * steps / total,
            rate,
            eta,
            tail,
        )


class CapLogStd(BaseCallback):
    """Clamps the policy's action ``log_std`` to at most ``cap`` before every rollout, so
    that the noise the rollout samples with, and every snapshot saved at a rollout
    boundary, stay within the cap."""

    def __init__(self, cap: float) -> None:
        super().__init__(verbose=0)
        self.cap = cap

    def _clamp(self) -> None:
        with torch.no_grad():
            self.model.policy.log_std.clamp_(max=self.cap)

    def _on_rollout_start(self) -> None:
        self._clamp()

    def _on_training_end(self) -> None:
        self._clamp()  # the last update ran after the last rollout: the saved model obeys too

    def _on_step(self) -> bool:
        return True


# ------------------------------------------------------------------------- assembly


def training_callbacks(
    config: TrainConfig,
    run_dir: Path,
    state: RunState,
    eval_env: VecEnv,
    extra: BaseCallback | Sequence[BaseCallback] | None = None,
    average: PolicyAverage | None = None,
    evaluation_hooks: Sequence[EvaluationHook] = (),
) -> CallbackList:
    """The run's callbacks in their order: the noise cap (with ``config.ppo.log_std_max``),
    the weight average (``average``, built by the caller, which saves the final model
    through it), the evaluator (with the nominee snapshots), the
    early stop (with ``config.early_stop``), checkpointer, progress logger, then ``extra``
    (e.g. the fine-tuning mechanisms of :mod:`robosf_assets.training.finetune`); the
    evaluator runs ``evaluation_hooks`` after its nominee snapshot."""
    extra_list = [extra] if isinstance(extra, BaseCallback) else list(extra or [])
    evaluator = CurveEvaluator(
        config, run_dir, state, eval_env, on_evaluation=[SaveNominees(config, run_dir, state), *evaluation_hooks],
        average=average,
    )
    stop = [StopWhenBarHolds(config, state)] if config.early_stop else []
    cap = [] if config.ppo.log_std_max is None else [CapLogStd(config.ppo.log_std_max)]
    return CallbackList([
        *cap,
        *([] if average is None else [average]),
        evaluator,
        *stop,
        Checkpointer(config, run_dir, state, average),
        ProgressLogger(config, state),
        *extra_list,
    ])
