"""The expert stage: train PPO, validate it on fresh episodes, judge it against the bar.

:func:`run_expert` is the stage: it opens (or resumes) the scenario's run directory and
holds it while :func:`train_expert` writes into it. One run directory
(``output/experts/<scenario>/<run-id>/``) gets everything
:func:`~robosf_assets.training.ppo.train_ppo` writes plus::

    learning_curve.png          success and collision against env steps, with the bar
    selection.json              the candidate policies and their held-out selection rates
    selected_model.zip          the picked policy, the one validated (training.selection)
    validation.json             per-seed and pooled rates with CIs, metrics, verdict
    validation_episodes.jsonl   every validation episode (versioned episode schema)
    manifest.json               config, seeds, git revision, versions, files + sha256, wall time

:func:`run_expert` with ``source="shipped"`` adopts the expert that the repository ships for
the scenario (``robosf_assets/experts/<scenario>/``, written by
:mod:`robosf_assets.bench.ship_experts` from a full-profile run) instead of training one,
when there is one: :func:`adopt_shipped_expert` copies it into a normal run directory,
checks its checksums, the scenario file and the observations against the requested
config, and validates it again here on fresh episodes against the requested bar. The
quick profile does this (its default ``expert_source`` in
:data:`~robosf_assets.training.profiles.PROFILE_TABLE`): the default scenarios' experts
take millions of PPO steps, which no demo can afford. An adopted run directory holds::

    selected_model.zip          the shipped policy, the one validated here
    curve.jsonl                 the full-profile run's learning curve
    learning_curve.png          its plot
    shipped.json                what was shipped: source run, revisions, checksums, scenario fingerprint
    shipped_manifest.json       the full-profile run's manifest, unchanged
    shipped_validation.json     its validation on the machine that trained it
    validation.json             validation on this machine (fresh), with the verdict
    validation_episodes.jsonl   every episode of that validation
    manifest.json               expert_source "shipped", the shipped.json content, the verdict
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3 import PPO

from robosf_assets.artifacts import (
    atomic_save,
    atomic_write_json,
    atomic_write_text,
    MANIFEST_NAME,
    build_manifest,
    held_run_dir,
    read_json,
    resumable_run_dir,
    sha256_file,
    write_manifest,
)
from robosf_assets.benchmark.episodes import json_safe
from robosf_assets.benchmark.plots import learning_curve_png
from robosf_assets.logs import get_logger
from robosf_assets.refs import ExpertRef, StageRefused
from robosf_assets.training.curves import CURVE_NAME, promotion_step, read_curve
from robosf_assets.training.train_config import TrainConfig, eval_episode_seeds, train_env_seeds
from robosf_assets.training.evaluation import validate_policy
from robosf_assets.training.ppo import TrainResult, train_ppo
from robosf_assets.training.profiles import PROFILE_TABLE
from robosf_assets.training.selection import SELECTED_MODEL_NAME, select_policy

log = get_logger("training.expert")

CURVE_PNG = "learning_curve.png"
VALIDATION_JSON = "validation.json"
VALIDATION_EPISODES = "validation_episodes.jsonl"

EXPERT_SOURCES = ("train", "shipped")
"""Where the expert stage gets its expert: ``train`` one, or adopt the ``shipped`` one
(training when none is shipped for the scenario)."""
EXPERTS_DIR_ENV = "ROBOSF_EXPERTS_DIR"
"""Environment variable naming another shipped-expert store (tests; a private store)."""
SHIPPED_JSON = "shipped.json"
SHIPPED_FILES = (SELECTED_MODEL_NAME, MANIFEST_NAME, VALIDATION_JSON, CURVE_NAME, CURVE_PNG)
"""The files of a shipped expert besides ``shipped.json``, as a full-profile run wrote them."""
SHIPPED_MANIFEST = "shipped_manifest.json"
SHIPPED_VALIDATION = "shipped_validation.json"
_ADOPTED_NAMES = {MANIFEST_NAME: SHIPPED_MANIFEST, VALIDATION_JSON: SHIPPED_VALIDATION}
"""Where an adopted run keeps the shipped files that it writes afresh itself."""


@dataclass(frozen=True)
class ExpertOutcome:
    """What the expert stage produced; ``verdict`` says whether it may be promoted."""

    run_dir: Path
    train: TrainResult
    model_path: Path
    """The validated policy: the candidate picked on the held-out selection episodes
    (``selected_model.zip``; see :mod:`robosf_assets.training.selection`)."""
    validation: dict[str, Any]
    verdict: dict[str, Any]
    manifest: dict[str, Any]
    curve_png: bytes
    config: TrainConfig
    resumed: bool = False
    source: str = "trained"
    """``trained`` here, or ``shipped``: adopted by :func:`adopt_shipped_expert`."""
    shipped: dict[str, Any] | None = None
    """The adopted expert's ``shipped.json`` (source run, revisions, checksums)."""

    @property
    def promoted(self) -> bool:
        return bool(self.verdict["passed"])

    @property
    def model_sha256(self) -> str:
        return next(f["sha256"] for f in self.manifest["files"] if f["path"] == self.model_path.name)

    @property
    def ref(self) -> ExpertRef:
        """What the dataset stage needs of this expert."""
        return ExpertRef(
            run_dir=self.run_dir, model_path=self.model_path, model_sha256=self.model_sha256,
            promoted=self.promoted, scenario=self.config.scenario, env_overrides=dict(self.config.env_overrides),
            timesteps_used=self.train.timesteps_used,
        )


def run_expert(
    config: TrainConfig,
    root: str | Path | None = None,
    *,
    extra: dict | None = None,
    source: str = "train",
    store: str | Path | None = None,
) -> ExpertOutcome:
    """The expert stage: train, validate and judge an expert in the newest unfinished run
    directory of ``<root>/experts/<scenario>/`` with the same run key (resumed from its
    checkpoints), or in a new one; the directory is released however this ends.

    :param config: the validated training config.
    :param root: the output tree (default :func:`~robosf_assets.artifacts.output_root`).
    :param extra: more manifest fields (e.g. the Dagster run id).
    :param source: ``train``, or ``shipped``: adopt the scenario's shipped expert
        (:func:`adopt_shipped_expert`) when the store has one, else train as ``train`` does.
    :param store: the shipped-expert store (default :func:`shipped_experts_dir`).
    :raises ValueError: for an unknown ``source``.
    :raises ShippedExpertError: a shipped expert exists but does not fit ``config``.
    """
    if source not in EXPERT_SOURCES:
        raise ValueError(f"expert source {source!r}: choose one of {list(EXPERT_SOURCES)}")
    if source == "shipped":
        if has_shipped_expert(config.scenario, store):
            return adopt_shipped_expert(config, root, store=store, extra=extra)
        log.warning("expert_source shipped: no shipped expert for {} in {}; training one from scratch",
                    config.scenario, _store(store))
    with resumable_run_dir("experts", config.scenario, config.run_key(), root=root) as (run_dir, resumed):
        log.info("expert run directory {} ({})", run_dir, "resuming" if resumed else "new")
        return train_expert(config, run_dir, resumed=resumed, extra=extra)


def train_expert(config: TrainConfig, run_dir: Path, *, resumed: bool = False, extra: dict | None = None) -> ExpertOutcome:
    """Train, validate and judge an expert in ``run_dir`` (resuming from its checkpoints).

    :param config: the validated training config (budget, PPO, evaluation, bar, validation).
    :param run_dir: from :func:`~robosf_assets.artifacts.open_resumable_run_dir`; released here.
    :param resumed: whether the directory was reopened (recorded in the manifest).
    :param extra: more manifest fields (e.g. the Dagster run id).
    """
    started = time.time()
    with held_run_dir(run_dir):
        result = train_ppo(config, run_dir)
        # nominated on the curve, picked on held-out selection episodes, judged on the
        # validation episodes: neither choice biases the verdict
        selection = select_policy(config, run_dir, result)
        chosen = selection.model_path
        model = PPO.load(chosen, device="cpu")
        validation = _validate_into(run_dir, model, config)
        verdict = validation["verdict"]
        png = learning_curve_png(
            result.curve,
            title=f"expert PPO, {config.scenario}, seed {config.seed}",
            min_success=config.promotion.min_success,
            max_collision=config.promotion.max_collision,
        )
        atomic_save(run_dir / CURVE_PNG, lambda tmp: tmp.write_bytes(png), overwrite=True)
        manifest = build_manifest(
            kind="expert_policy",
            partition=config.scenario,
            config=config.model_dump(),
            seeds={
                "run_seed": config.seed,
                "training_worlds": train_env_seeds(config.seed, config.n_envs),
                "curve_evaluation_episodes": eval_episode_seeds(config.eval),
                "validation_seeds": config.validation.eval_seeds,
                "selection_episodes": selection.episode_seeds,
            },
            artifact_dir=run_dir,
            started_at=started,
            extra={
                "resumed": resumed,
                "expert_model": Path(chosen).name,
                "expert_model_timesteps": selection.timesteps,
                "selection_candidates": [c.timesteps for c in selection.candidates],
                "resumed_from": str(result.resumed_from) if result.resumed_from else None,
                "promoted": verdict["passed"],
                "verdict": verdict["message"],
                "timesteps_used": result.timesteps_used,
                "training_wall_time_s": result.wall_time_s,
                "env_steps_per_s": result.env_steps_per_s,
                "expert_source": "trained",
                **(extra or {}),
            },
        )
        write_manifest(run_dir, manifest)
    log.info("expert {} in {}: {}", config.scenario, run_dir, verdict["message"])
    return ExpertOutcome(run_dir, result, Path(chosen), validation, verdict, manifest, png, config, resumed)


# ------------------------------------------------------------------ shipped experts


class ShippedExpertError(StageRefused):
    """A shipped expert that cannot be adopted (a damaged file, another scenario version,
    other observations); the message names the mismatch."""


def shipped_experts_dir() -> Path:
    """The shipped-expert store: ``$ROBOSF_EXPERTS_DIR``, else ``robosf_assets/experts/``
    (package data, written by :mod:`robosf_assets.bench.ship_experts`)."""
    env = os.environ.get(EXPERTS_DIR_ENV)
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[1] / "experts"


def _store(store: str | Path | None) -> Path:
    return Path(store) if store is not None else shipped_experts_dir()


def shipped_expert_dir(scenario: str, store: str | Path | None = None) -> Path:
    """``<store>/<scenario>/`` (which may not exist)."""
    return _store(store) / scenario


def has_shipped_expert(scenario: str, store: str | Path | None = None) -> bool:
    """Whether the store ships an expert for ``scenario`` (its ``shipped.json`` exists)."""
    return (shipped_expert_dir(scenario, store) / SHIPPED_JSON).is_file()


def read_shipped(scenario: str, store: str | Path | None = None) -> dict[str, Any]:
    """The ``shipped.json`` of the scenario's shipped expert.

    :raises ShippedExpertError: none is shipped, or it is unreadable.
    """
    path = shipped_expert_dir(scenario, store) / SHIPPED_JSON
    try:
        shipped = read_json(path)
    except FileNotFoundError:
        raise ShippedExpertError(f"no shipped expert for {scenario}: {path} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ShippedExpertError(f"shipped expert {path} is unreadable: {err}") from None
    if not isinstance(shipped, dict) or not isinstance(shipped.get("files"), dict):
        raise ShippedExpertError(f"shipped expert {path} has no 'files' checksums")
    return shipped


def shipped_problems(directory: Path, shipped: dict[str, Any], names: dict[str, str] | None = None) -> list[str]:
    """One line per file of ``shipped["files"]`` that is missing in ``directory`` or has
    another sha256 (``names`` maps a shipped name to the name it has there)."""
    problems = []
    for name in SHIPPED_FILES:
        expected = shipped["files"].get(name)
        path = directory / (names or {}).get(name, name)
        if expected is None:
            problems.append(f"{name}: no checksum in {SHIPPED_JSON}")
        elif not path.is_file():
            problems.append(f"{path.name}: missing")
        elif (actual := sha256_file(path)) != expected:
            problems.append(f"{path.name}: sha256 {actual[:12]}... != shipped {expected[:12]}...")
    return problems


def default_expert_source(profile: str) -> str:
    """The profile's ``expert_source`` (:data:`~robosf_assets.training.profiles.PROFILE_TABLE`)."""
    return PROFILE_TABLE[profile]["stage"]["expert_source"]


def check_shipped_fits(config: TrainConfig, shipped: dict[str, Any]) -> None:
    """Raise :class:`ShippedExpertError` naming every way the shipped expert does not fit
    ``config``: another scenario, another version of its scenario file, other env overrides."""
    from robosf_assets.sim.scenario import get_scenario

    problems = []
    if shipped.get("scenario") != config.scenario:
        problems.append(f"it is the expert of scenario {shipped.get('scenario')!r}, not {config.scenario!r}")
    fingerprint = get_scenario(config.scenario).fingerprint()
    if shipped.get("scenario_fingerprint") != fingerprint:
        problems.append(f"scenario {config.scenario!r} changed since it was shipped (fingerprint "
                        f"{fingerprint[:12]}... now, {str(shipped.get('scenario_fingerprint'))[:12]}... shipped)")
    if dict(shipped.get("env_overrides") or {}) != dict(config.env_overrides):
        problems.append(f"it was trained with env_overrides {shipped.get('env_overrides')}, "
                        f"the config asks for {dict(config.env_overrides)}")
    if problems:
        raise ShippedExpertError(f"the shipped {config.scenario} expert does not fit this config: "
                                 + "; ".join(problems)
                                 + " (ship a matching full-profile expert, or use expert_source 'train')")


def _check_spaces(model: Any, config: TrainConfig) -> None:
    """The policy's observation and action spaces are the config's env's."""
    from robosf_assets.envs.env_config import EnvConfig
    from robosf_assets.envs.robot_env import ACTION_SPACE, observation_space

    env = EnvConfig.from_overrides(**config.env_overrides)
    want = observation_space(env.n_rays, env.frame_stack)
    if model.observation_space != want or model.action_space != ACTION_SPACE:
        raise ShippedExpertError(
            f"the shipped {config.scenario} policy observes {model.observation_space} and acts in "
            f"{model.action_space}; the config's env gives {want} and {ACTION_SPACE}"
        )


def _copy(src: Path, dst: Path) -> None:
    atomic_save(dst, lambda tmp: shutil.copyfile(src, tmp), overwrite=True)


def adopt_shipped_expert(
    config: TrainConfig,
    root: str | Path | None = None,
    *,
    store: str | Path | None = None,
    extra: dict | None = None,
) -> ExpertOutcome:
    """The expert stage from the scenario's shipped expert instead of training.

    Opens a normal expert run directory (``<root>/experts/<scenario>/<run-id>/``; an
    interrupted adoption of the same expert and config is resumed), copies the shipped
    files in and checks their sha256 against ``shipped.json``, checks that the expert fits
    ``config`` (:func:`check_shipped_fits`, and the policy's observation space), then
    validates it again on this machine with ``config.validation`` and judges it against
    ``config.promotion``, as :func:`train_expert` does after training. Its
    :attr:`ExpertOutcome.ref` is used downstream exactly like a trained expert's.

    :raises ShippedExpertError: none is shipped, a file is damaged, or it does not fit.
    """
    started = time.time()
    src = shipped_expert_dir(config.scenario, store)
    shipped = read_shipped(config.scenario, store)
    problems = shipped_problems(src, shipped)
    if problems:
        raise ShippedExpertError(f"shipped expert {src} is damaged (checksums against {SHIPPED_JSON}): "
                                 + "; ".join(problems))
    check_shipped_fits(config, shipped)
    key = {"adopt_shipped": shipped["files"][SELECTED_MODEL_NAME], "source_run": shipped.get("source_run"),
           **config.run_key()}
    with resumable_run_dir("experts", config.scenario, key, root=root) as (run_dir, resumed):
        log.info("expert {}: adopting the shipped expert of full-profile run {} in {}", config.scenario,
                 shipped.get("source_run"), run_dir)
        for name in SHIPPED_FILES:
            _copy(src / name, run_dir / _ADOPTED_NAMES.get(name, name))
        _copy(src / SHIPPED_JSON, run_dir / SHIPPED_JSON)
        # the copies are what is used: check them, not only the store
        problems = shipped_problems(run_dir, shipped, _ADOPTED_NAMES)
        if problems:
            raise ShippedExpertError(f"copies of shipped expert {src} in {run_dir} differ: " + "; ".join(problems))
        source = read_json(run_dir / SHIPPED_MANIFEST)
        model_path = run_dir / SELECTED_MODEL_NAME
        model = PPO.load(model_path, device="cpu")
        _check_spaces(model, config)
        validation = _validate_into(run_dir, model, config)
        verdict = validation["verdict"]
        curve = read_curve(run_dir / CURVE_NAME)
        source_config = source.get("config") or {}
        timesteps = int(source.get("timesteps_used") or (curve[-1]["timesteps"] if curve else 0))
        result = TrainResult(
            model_path=model_path, curve=curve, timesteps_used=timesteps,
            wall_time_s=float(source.get("training_wall_time_s") or 0.0),
            env_steps_per_s=float(source.get("env_steps_per_s") or 0.0),
            stopped_early=timesteps < int(source_config.get("total_timesteps") or timesteps + 1),
            resumed_from=None, promotion_reached_at=promotion_step(curve, config.promotion), run_dir=run_dir,
        )
        manifest = build_manifest(
            kind="expert_policy",
            partition=config.scenario,
            config=config.model_dump(),
            seeds={
                "run_seed": config.seed,
                "validation_seeds": config.validation.eval_seeds,
                "shipped_run_seeds": source.get("seeds"),
            },
            artifact_dir=run_dir,
            started_at=started,
            extra={
                "resumed": resumed,
                "expert_source": "shipped",
                "shipped": shipped,
                "expert_model": SELECTED_MODEL_NAME,
                "expert_model_timesteps": source.get("expert_model_timesteps"),
                "promoted": verdict["passed"],
                "verdict": verdict["message"],
                "timesteps_used": timesteps,
                "training_wall_time_s": result.wall_time_s,
                "env_steps_per_s": result.env_steps_per_s,
                **(extra or {}),
            },
        )
        write_manifest(run_dir, manifest)
    log.info("expert {} (shipped from full-profile run {}, revalidated here) in {}: {}", config.scenario,
             shipped.get("source_run"), run_dir, verdict["message"])
    return ExpertOutcome(run_dir, result, model_path, validation, verdict, manifest,
                         (run_dir / CURVE_PNG).read_bytes(), config, resumed, source="shipped", shipped=shipped)


def _validate_into(run_dir: Path, model: PPO, config: TrainConfig) -> dict[str, Any]:
    """Validate ``model`` as ``config`` says and write ``validation.json`` and its episodes;
    the validation summary without the episodes.

    Files written late are replaced on a retry: until manifest.json commits the run nothing
    here is final, and a run killed between them must not trap its retries.
    """
    validation = validate_policy(model, config, policy_name="expert")
    _write_jsonl(run_dir / VALIDATION_EPISODES, validation.pop("episodes"))
    atomic_write_json(run_dir / VALIDATION_JSON, validation, overwrite=True)
    return validation


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Episode records as JSON Lines (as ``write_episodes_jsonl`` writes them), atomically
    replacing a leftover of an interrupted attempt."""
    text = "".join(json.dumps(json_safe(r), sort_keys=True, allow_nan=False) + "\n" for r in records)
    atomic_write_text(path, text, overwrite=True)


def verify_model(model_path: Path, expected_sha256: str) -> None:
    """Raise if the expert's model changed since it was validated."""
    actual = sha256_file(model_path)
    if actual != expected_sha256:
        raise ValueError(f"{model_path} changed since validation (sha256 {actual} != {expected_sha256})")
