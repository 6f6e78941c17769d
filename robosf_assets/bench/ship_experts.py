"""Ship full-profile experts with the package:
``python -m robosf_assets.bench.ship_experts --from <output root> [--scenarios ...] [--replace]``.

The default scenarios' experts take millions of PPO steps, more than ``make demo`` can
spend, so the quick profile adopts experts that the full profile trained
(:func:`robosf_assets.training.expert.adopt_shipped_expert`, which validates them again).
This command puts them where it finds them: for each scenario it takes the newest
finished expert run under ``<root>/experts/<scenario>/`` that the full profile trained
(not one that adopted a shipped expert) and refuses it unless it passed validation, its
files still match its manifest, and it was trained on the scenario file as it is now.
It then writes ``robosf_assets/experts/<scenario>/`` (or ``$ROBOSF_EXPERTS_DIR``, or
``--store``) as one directory rename::

    selected_model.zip   the validated policy
    manifest.json        the run's manifest, unchanged
    validation.json      its validation
    curve.jsonl          its learning curve
    learning_curve.png   its plot
    shipped.json         scenario, source run, git revisions, sha256 of each file,
                         the scenario's fingerprint, the env_overrides it was trained with

An expert already shipped for the scenario is kept (the same one: nothing to do; another
one: refused) unless ``--replace``. Exit status 0 when every scenario was shipped or was
already, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robosf_assets.artifacts import (
    MANIFEST_NAME,
    RUN_KEY_NAME,
    atomic_write_json,
    fsync_dir,
    git_revision,
    iso_utc,
    read_json,
    sha256_file,
    verify_manifest,
)
from robosf_assets.logs import configure_logging, get_logger
from robosf_assets.sim.scenario import DEFAULT_SCENARIOS, get_scenario
from robosf_assets.training.expert import (
    SHIPPED_FILES,
    SHIPPED_JSON,
    VALIDATION_JSON,
    ShippedExpertError,
    shipped_expert_dir,
    shipped_experts_dir,
)
from robosf_assets.training.selection import SELECTED_MODEL_NAME
from robosf_assets.training.train_config import PROFILES, profile_config

log = get_logger("bench.ship_experts")

SHIP_PROFILE = "full"
_NOT_THE_CONFIG = ("progress_interval_s", "device", "torch_threads")
"""TrainConfig fields that do not change what a run trains (left out when the profile
of a run without a recorded ``profile`` is inferred from its config)."""


class ShipRefused(ShippedExpertError):
    """An expert run that may not be shipped; the message says why."""


@dataclass(frozen=True)
class Shipped:
    scenario: str
    store_dir: Path
    source_run: Path
    status: str
    """``shipped``, ``replaced`` or ``already shipped``."""


def run_profile(manifest: dict[str, Any]) -> str | None:
    """The profile an expert run used: the manifest's ``profile`` (the Dagster asset
    records it), else the profile whose config it is, field for field (the bench commands
    train from ``profile_config`` without recording the name); ``None`` for a custom config."""
    if manifest.get("profile"):
        return str(manifest["profile"])
    config = manifest.get("config") or {}
    if "scenario" not in config:
        return None

    def plain(c: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in c.items() if k not in _NOT_THE_CONFIG}, sort_keys=True)

    for name in PROFILES:
        try:
            expected = profile_config(name, config["scenario"], int(config.get("seed", 0))).model_dump(mode="json")
        except (KeyError, ValueError):
            continue
        if plain(expected) == plain(config):
            return name
    return None


def refusal(run_dir: Path, scenario: str) -> str | None:
    """Why the finished expert run ``run_dir`` may not be shipped, or ``None``."""
    try:
        manifest = read_json(run_dir / MANIFEST_NAME)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return f"its manifest is unreadable: {err}"
    if manifest.get("kind") != "expert_policy" or manifest.get("partition") != scenario:
        return f"it is a {manifest.get('kind')} of {manifest.get('partition')}, not an expert of {scenario}"
    if manifest.get("expert_source") == "shipped":
        return "it adopted a shipped expert (ship the full-profile run it came from)"
    profile = run_profile(manifest)
    if profile != SHIP_PROFILE:
        return f"it was trained with the {profile or 'custom'} profile's config, not the {SHIP_PROFILE} profile's"
    try:
        validation = read_json(run_dir / VALIDATION_JSON)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return f"its {VALIDATION_JSON} is unreadable: {err}"
    if not (manifest.get("promoted") and validation.get("verdict", {}).get("passed")):
        return f"it did not pass validation ({manifest.get('verdict') or validation.get('verdict', {}).get('message')})"
    problems = verify_manifest(run_dir)
    if problems:
        return "its files no longer match its manifest: " + "; ".join(problems)
    missing = [n for n in SHIPPED_FILES if n != SELECTED_MODEL_NAME and not (run_dir / n).is_file()]
    if not (run_dir / manifest.get("expert_model", SELECTED_MODEL_NAME)).is_file():
        missing.insert(0, manifest.get("expert_model", SELECTED_MODEL_NAME))
    if missing:
        return f"it lacks {missing}"
    fingerprint = get_scenario(scenario).fingerprint()
    try:
        trained_on = read_json(run_dir / RUN_KEY_NAME).get("scenario_sha256")
    except (OSError, ValueError, UnicodeDecodeError):
        trained_on = None
    if trained_on != fingerprint:
        return (f"it was trained on another version of the scenario file (fingerprint "
                f"{str(trained_on)[:12]}..., now {fingerprint[:12]}...)")
    return None


def newest_shippable(root: Path, scenario: str) -> Path:
    """The newest finished full-profile expert run of ``scenario`` under ``root``.

    Runs that adopted a shipped expert or used another profile are passed over; the newest
    full-profile run itself must pass :func:`refusal` (an older one is never shipped in
    place of a newer one that failed).

    :raises ShipRefused: naming each run looked at and why it was not taken.
    """
    parent = root / "experts" / scenario
    runs = sorted((p for p in parent.iterdir() if (p / MANIFEST_NAME).is_file()), reverse=True) \
        if parent.is_dir() else []
    if not runs:
        raise ShipRefused(f"{scenario}: no finished expert run under {parent}")
    passed_over = []
    for run_dir in runs:
        try:
            manifest = read_json(run_dir / MANIFEST_NAME)
        except (OSError, ValueError, UnicodeDecodeError):
            manifest = {}
        if manifest.get("expert_source") == "shipped":
            passed_over.append(f"{run_dir.name} (adopted a shipped expert)")
            continue
        if (profile := run_profile(manifest)) != SHIP_PROFILE:
            passed_over.append(f"{run_dir.name} ({profile or 'custom'} profile)")
            continue
        why = refusal(run_dir, scenario)
        if why is None:
            return run_dir
        raise ShipRefused(f"{scenario}: the newest full-profile expert run {run_dir} may not be shipped: {why}")
    raise ShipRefused(f"{scenario}: no full-profile expert run under {parent}; passed over: "
                      + "; ".join(passed_over))


def shipped_json(run_dir: Path, scenario: str, files: dict[str, str]) -> dict[str, Any]:
    """The ``shipped.json`` of ``run_dir`` (``files``: name -> sha256 of the shipped copy)."""
    manifest = read_json(run_dir / MANIFEST_NAME)
    return {
        "scenario": scenario,
        "source_run": run_dir.name,
        "source_profile": SHIP_PROFILE,
        "source_git_revision": manifest.get("git_revision"),
        "shipped_git_revision": git_revision(),
        "shipped_at": iso_utc(time.time()),
        "scenario_fingerprint": get_scenario(scenario).fingerprint(),
        "env_overrides": (manifest.get("config") or {}).get("env_overrides", {}),
        "timesteps_used": manifest.get("timesteps_used"),
        "expert_model_timesteps": manifest.get("expert_model_timesteps"),
        "verdict": manifest.get("verdict"),
        "files": files,
    }


def ship(run_dir: Path, scenario: str, store: Path | None = None, *, replace: bool = False) -> Shipped:
    """Copy the expert of ``run_dir`` into ``<store>/<scenario>/`` as one directory rename.

    :raises ShipRefused: ``run_dir`` may not be shipped (:func:`refusal`), or another
        expert is shipped for ``scenario`` and ``replace`` is off.
    """
    why = refusal(run_dir, scenario)
    if why is not None:
        raise ShipRefused(f"{scenario}: {run_dir} may not be shipped: {why}")
    manifest = read_json(run_dir / MANIFEST_NAME)
    sources = {name: run_dir / name for name in SHIPPED_FILES}
    sources[SELECTED_MODEL_NAME] = run_dir / manifest.get("expert_model", SELECTED_MODEL_NAME)
    target = shipped_expert_dir(scenario, store)
    replacing = False
    if (target / SHIPPED_JSON).is_file():
        current = read_json(target / SHIPPED_JSON)
        if (current.get("source_run") == run_dir.name
                and current.get("files", {}).get(SELECTED_MODEL_NAME) == sha256_file(sources[SELECTED_MODEL_NAME])):
            return Shipped(scenario, target, run_dir, "already shipped")
        if not replace:
            raise ShipRefused(f"{scenario}: {target} already ships the expert of run {current.get('source_run')}; "
                              f"pass --replace to ship {run_dir.name} in its place")
        replacing = True
    elif target.exists() and any(target.iterdir()):
        if not replace:
            raise ShipRefused(f"{scenario}: {target} holds files but no {SHIPPED_JSON}; pass --replace to overwrite")
        replacing = True
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{scenario}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        for name, src in sources.items():
            shutil.copyfile(src, tmp / name)
        files = {name: sha256_file(tmp / name) for name in SHIPPED_FILES}
        expected = {f["path"]: f["sha256"] for f in manifest["files"]}
        for name, src in sources.items():
            if name != MANIFEST_NAME and files[name] != expected.get(src.name):
                raise ShipRefused(f"{scenario}: the copy of {src} differs from its manifest's sha256")
        atomic_write_json(tmp / SHIPPED_JSON, shipped_json(run_dir, scenario, files))
        for child in tmp.iterdir():
            with open(child, "rb") as f:
                os.fsync(f.fileno())
        old = target.parent / f".tmp-old-{scenario}-{os.getpid()}"
        if target.exists():
            os.rename(target, old)
        os.rename(tmp, target)
        fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("shipped the {} expert of run {} into {}", scenario, run_dir, target)
    return Shipped(scenario, target, run_dir, "replaced" if replacing else "shipped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m robosf_assets.bench.ship_experts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="root", type=Path, required=True,
                        help="the output root whose experts/<scenario>/ holds the full-profile runs")
    parser.add_argument("--scenarios", nargs="+", default=list(DEFAULT_SCENARIOS))
    parser.add_argument("--store", type=Path, default=None,
                        help="where to ship (default $ROBOSF_EXPERTS_DIR, else robosf_assets/experts/)")
    parser.add_argument("--replace", action="store_true", help="replace an expert shipped from another run")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    store = args.store or shipped_experts_dir()
    ok = True
    for scenario in args.scenarios:
        try:
            done = ship(newest_shippable(args.root, scenario), scenario, store, replace=args.replace)
        except ShipRefused as err:
            sys.stdout.write(f"refused: {err}\n")
            ok = False
            continue
        sys.stdout.write(f"{scenario}: {done.status} from {done.source_run} -> {done.store_dir}\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
