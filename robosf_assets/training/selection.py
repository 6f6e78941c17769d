"""Which trained policy to promote: nominated on the learning curve, picked on held-out episodes.

Why. The learning curve evaluates every snapshot on the *same* fixed episodes. Taking the
best of 25-50 such evaluations picks the luckiest one as much as the best policy: on a
fresh clone, the crossing expert's best curve row was 1.00 / 0.00 at 962,560 steps (the
maximum of 25 evaluations of the same 100 episodes), and validation on fresh episodes
then found 0.930 / 0.070. The curve's maximum is biased upwards, and the more evaluations,
the larger the bias.

What. Selection is split from nomination:

1. *Nominate* on the curve: the ``validation.selection_candidates`` rows with the best
   worst-margin to the bar (:func:`~robosf_assets.training.ppo.top_rows`; their policies
   are saved during training) and the final policy.
2. *Pick* on a held-out selection set: each candidate plays the same
   ``validation.selection_episodes`` episodes (by default twice the validation episodes
   per seed: 200), seeded ``[1.9 * 10**6, 2 * 10**6)``
   (:func:`~robosf_assets.training.train_config.selection_episode_seeds`), disjoint from the
   training worlds, the curve episodes and the validation episodes; the candidate with the
   best worst-margin there wins (the earlier one on a tie).
3. *Judge* the pick on the validation episodes (``validate_policy``), which neither step
   has seen: the promotion verdict is unbiased.

A lucky spike on the curve is nominated but loses on the selection set to a policy whose
curve rows were good because it is good. The selection among a few candidates is itself
a maximum, but over 3-4 policies on episodes that decide nothing else, and the verdict
does not reuse them.

Why not a running mean over the last k curve evaluations? On the quick crossing expert
(2026-12-02) the best 3-evaluation window was 40,960-122,880 steps (0.99, 0.96, 0.89): a
window averages a stretch of training, not one policy, and its last policy (0.89 / 0.11)
was the stretch's worst. Policies 40k steps apart differ; only evaluating the candidate
itself on fresh episodes says how good it is.

With ``selection_episodes = 0`` nothing is evaluated and the best curve row's policy is
validated (the old behaviour). Files (written before the stage's manifest; a retry
replaces them)::

    selection.json        candidates, their curve and held-out rates, the pick
    selected_model.zip    the picked policy (a copy of its snapshot or of model.zip)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from robosf_assets.artifacts import atomic_save, atomic_write_json
from robosf_assets.logs import get_logger
from robosf_assets.training.train_config import PromotionBar, TrainConfig, selection_episode_seeds
from robosf_assets.training.callbacks import BEST_DIR, checkpoint_stem
from robosf_assets.training.curves import bar_score, top_rows
from robosf_assets.training.ppo import TrainResult

__all__ = [
    "SELECTED_MODEL_NAME",
    "SELECTION_JSON",
    "Candidate",
    "SelectionOutcome",
    "choose",
    "nominate",
    "select_policy",
]

log = get_logger("training.selection")

SELECTED_MODEL_NAME = "selected_model.zip"
SELECTION_JSON = "selection.json"


@dataclass
class Candidate:
    """One policy up for selection.

    :param timesteps: env steps the policy was trained for.
    :param source: ``"curve"`` (a nominated curve row's snapshot) or ``"final"``.
    :param path: the policy's model zip.
    :param curve_success: its curve evaluation's success (``None`` if never evaluated).
    :param curve_collision: its curve evaluation's collision.
    :param heldout: the selection set's ``curve_point`` (success, collision, mean_return,
        n_episodes), filled by :func:`select_policy`.
    """

    timesteps: int
    source: str
    path: Path
    curve_success: float | None
    curve_collision: float | None
    heldout: dict[str, Any] | None = None


def nominate(
    curve: Sequence[Mapping[str, Any]], run_dir: Path, final_model: Path, final_timesteps: int,
    bar: PromotionBar, n: int,
) -> list[Candidate]:
    """The nominees: the ``n`` best curve rows whose snapshots exist, and the final policy
    (left out when its step is already a nominee: the same policy), in step order."""
    out = []
    for row in top_rows(curve, bar, n):
        path = run_dir / BEST_DIR / f"{checkpoint_stem(int(row['timesteps']))}.zip"
        if path.is_file():
            out.append(Candidate(int(row["timesteps"]), "curve", path, row["success"],
                                 row["collision"]))
        else:
            log.warning("nominated curve row at {:,} steps has no snapshot {}", row["timesteps"], path)
    if all(c.timesteps != final_timesteps for c in out):
        last = next((r for r in reversed(curve) if int(r["timesteps"]) == final_timesteps), None)
        out.append(Candidate(final_timesteps, "final", final_model,
                             None if last is None else last["success"],
                             None if last is None else last["collision"]))
    return sorted(out, key=lambda c: c.timesteps)


def choose(scores: Sequence[Mapping[str, Any]], bar: PromotionBar) -> int:
    """Index of the held-out point (``success``, ``collision``) with the best worst-margin to
    the bar (:func:`~robosf_assets.training.ppo.bar_score`); the first one on a tie."""
    if not scores:
        raise ValueError("no candidates to choose from")
    best = 0
    for i, point in enumerate(scores):
        if bar_score(point, bar) > bar_score(scores[best], bar):
            best = i
    return best


@dataclass
class SelectionOutcome:
    """What :func:`select_policy` picked.

    :param model_path: the policy to validate (``selected_model.zip``, or the best curve
        row's / final model when selection is off).
    :param timesteps: its training steps.
    :param candidates: every candidate with its held-out rates (empty when off).
    :param chosen: index of the pick in ``candidates`` (``None`` when off).
    :param episode_seeds: first and last selection episode seed (``None`` when off).
    :param wall_time_s: time spent evaluating.
    """

    model_path: Path
    timesteps: int
    candidates: list[Candidate]
    chosen: int | None
    episode_seeds: tuple[int, int] | None
    wall_time_s: float

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["model_path"] = self.model_path.name
        for c in out["candidates"]:
            c["path"] = Path(c["path"]).name
        return out


def select_policy(config: TrainConfig, run_dir: Path, result: TrainResult) -> SelectionOutcome:
    """Nominate, play the selection episodes, pick; write ``selection.json`` and
    ``selected_model.zip`` into ``run_dir`` (see the module doc)."""
    from stable_baselines3 import PPO

    from robosf_assets.training.evaluation import curve_point, evaluate_policy_episodes

    started = time.perf_counter()
    spec = config.validation
    if spec.n_selection_episodes == 0:
        path = result.best_model_path or result.model_path
        steps = result.best_timesteps if result.best_model_path else result.timesteps_used
        outcome = SelectionOutcome(path, int(steps), [], None, None, 0.0)
        atomic_write_json(run_dir / SELECTION_JSON, outcome.to_json(), overwrite=True)
        return outcome
    # an early-stopped run collected one vector step after its last evaluation without
    # training on it: its final policy is the last curve row's
    final_step = result.curve[-1]["timesteps"] if result.stopped_early and result.curve else result.timesteps_used
    candidates = nominate(result.curve, run_dir, result.model_path, int(final_step),
                          config.promotion, spec.selection_candidates)
    seeds = selection_episode_seeds(spec.n_selection_episodes)
    for c in candidates:
        model = PPO.load(c.path, device="cpu")
        records = evaluate_policy_episodes(
            model, config.scenario, seeds, n_envs=min(spec.n_envs, len(seeds)),
            env_overrides=config.env_overrides, deterministic=config.eval.deterministic,
            policy_name=f"candidate-{c.timesteps}",
        )
        c.heldout = curve_point(records)
        log.info("selection {}: candidate at {:,} steps ({}): held-out success {:.3f} collision {:.3f}"
                 " (curve {} / {})", config.scenario, c.timesteps, c.source, c.heldout["success"],
                 c.heldout["collision"], c.curve_success, c.curve_collision)
    chosen = choose([c.heldout for c in candidates], config.promotion)  # type: ignore[misc]
    pick = candidates[chosen]
    data = pick.path.read_bytes()
    path = atomic_save(run_dir / SELECTED_MODEL_NAME, lambda p: p.write_bytes(data), overwrite=True)
    outcome = SelectionOutcome(path, pick.timesteps, candidates, chosen, (seeds[0], seeds[-1]),
                               round(time.perf_counter() - started, 3))
    atomic_write_json(run_dir / SELECTION_JSON, outcome.to_json(), overwrite=True)
    log.info("selection {}: picked the policy at {:,} steps of {} candidates", config.scenario,
             pick.timesteps, len(candidates))
    return outcome
