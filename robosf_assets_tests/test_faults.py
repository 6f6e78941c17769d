"""Fault injection: SIGKILL stages at random moments and at named points, then retry.

Each test runs :mod:`robosf_assets_tests.faults_driver` once: it imports and warms up in
one process and forks a child per attempt, so many kills cost no interpreter or torch
start-up. Every attempt must end killed or completed (never an error caused by an
earlier attempt's leftovers), the last attempt must complete, and the tree must hold
only committed, verifiable artefacts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robosf_assets.artifacts import (
    ABANDONED_NAME,
    MANIFEST_NAME,
    is_temp_name,
    open_resumable_run_dir,
    release_run_dir,
    verify_manifest,
)
from robosf_assets.training.ppo import CURVE_NAME, RunDirDamaged, read_curve, train_ppo
from robosf_assets_tests.faults_driver import ROLLOUT, tiny_expert_config

REPO = Path(__file__).resolve().parent.parent


def drive(stage: str, root: Path, rounds: int, seed: int, *points: str) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "robosf_assets_tests.faults_driver", stage, str(root), str(rounds), str(seed), *points],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    attempts = json.loads(proc.stdout.strip().splitlines()[-1])["attempts"]
    bad = [a for a in attempts if a["result"] not in ("ok", "killed")]
    assert not bad, f"attempts failed on their own leftovers: {bad}\n{proc.stderr[-3000:]}"
    assert attempts[-1]["result"] == "ok"
    return attempts


def test_expert_stage_killed_anywhere_is_completed_by_a_retry(tmp_path):
    root = tmp_path / "out"
    points = (
        f"after:{MANIFEST_NAME}",  # committed, then killed before returning: a new run follows
        "torn_curve",  # half a curve row, then killed
        "after:step-0000000256.zip",  # checkpoint model written, its record not
        "after:validation_episodes.jsonl",  # the late files, one by one (issue 13 item 1)
        "after:validation.json",
        "after:learning_curve.png",
    )
    attempts = drive("expert", root, 5, 13, *points)
    # runs whose manifest was committed, reported by the attempt at the commit itself: the one
    # killed after its manifest, every "ok", and any random kill between commit and return
    completed = sum(a["committed"] for a in attempts)
    assert completed >= sum(a["result"] == "ok" for a in attempts) + 1
    runs = sorted((root / "experts" / "crossing").iterdir())
    finished = [r for r in runs if (r / MANIFEST_NAME).is_file()]
    assert not [r for r in runs if (r / ABANDONED_NAME).exists()]
    # every attempt after a completed run starts a fresh directory; the last one finished it
    assert len(finished) == completed and finished == runs
    for run in finished:
        assert verify_manifest(run) == [], run
        rows = read_curve(run / CURVE_NAME)
        steps = [r["timesteps"] for r in rows]
        assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 512
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        assert (run / CURVE_NAME).read_text() == text  # no torn or stale row survived
        assert not [p for p in run.rglob("*") if is_temp_name(p.name)]


@pytest.fixture(scope="module")
def one_rollout_run(tmp_path_factory):
    """A run killed right after its first checkpoint (2 curve rows, checkpoint at 256)."""
    config = tiny_expert_config().model_copy(update={"total_timesteps": ROLLOUT})
    run_dir = tmp_path_factory.mktemp("run")
    train_ppo(config, run_dir)
    return run_dir


def _copy(run_dir, tmp_path):
    import shutil

    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def test_torn_last_curve_row_is_dropped_before_resuming(one_rollout_run, tmp_path):
    """Exactly as many complete rows as the checkpoint recorded, then a torn line: the
    retry must not append after it (issue 13 item 4)."""
    run_dir = _copy(one_rollout_run, tmp_path)
    rows = read_curve(run_dir / CURVE_NAME)
    assert len(rows) == 2
    with open(run_dir / CURVE_NAME, "a") as fh:
        fh.write('{"timesteps": 512, "succ')
    result = train_ppo(tiny_expert_config(), run_dir)
    assert [r["timesteps"] for r in read_curve(run_dir / CURVE_NAME)] == [0, 256, 512]
    assert read_curve(run_dir / CURVE_NAME) == result.curve and result.curve[:2] == rows


def test_rows_past_the_checkpoint_are_dropped(one_rollout_run, tmp_path):
    run_dir = _copy(one_rollout_run, tmp_path)
    rows = read_curve(run_dir / CURVE_NAME)
    with open(run_dir / CURVE_NAME, "a") as fh:
        fh.write(json.dumps({**rows[-1], "timesteps": 9999}) + "\n")
    result = train_ppo(tiny_expert_config(), run_dir)
    assert [r["timesteps"] for r in result.curve] == [0, 256, 512]


def test_damage_no_checkpoint_survives_abandons_the_run_dir_and_the_retry_starts_fresh(tmp_path):
    config = tiny_expert_config().model_copy(update={"total_timesteps": ROLLOUT})
    run_dir, resumed = open_resumable_run_dir("experts", "crossing", config.run_key(), root=tmp_path)
    train_ppo(config, run_dir)
    release_run_dir(run_dir)
    lines = (run_dir / CURVE_NAME).read_text().splitlines()
    (run_dir / CURVE_NAME).write_text(lines[0][:10] + "\n" + lines[1] + "\n")  # a middle row damaged
    again, resumed = open_resumable_run_dir("experts", "crossing", config.run_key(), root=tmp_path)
    assert resumed and again == run_dir
    with pytest.raises(RunDirDamaged, match="damaged before its last line.*abandoned"):
        train_ppo(config, run_dir)
    release_run_dir(run_dir)
    assert (run_dir / ABANDONED_NAME).is_file() and (run_dir / "checkpoints").is_dir()  # kept
    fresh, resumed = open_resumable_run_dir("experts", "crossing", config.run_key(), root=tmp_path)
    assert not resumed and fresh != run_dir
    release_run_dir(fresh)


def test_rotation_killed_anywhere_loses_nothing_and_leaves_no_orphans(tmp_path):
    import shutil

    from robosf_assets.artifacts import list_iterations
    from robosf_assets.datasets.archive import archives_of, restore_iteration, verify_archive
    from robosf_assets.datasets.validate import write_integrity_report
    from robosf_assets_tests.datasets import record_tiny, snapshot

    root = tmp_path / "out"
    scen = root / "datasets" / "crossing"
    template = record_tiny(tmp_path / "tpl" / "crossing")
    snaps = {}
    for n in range(1, 7):
        dest = scen / f"iter-{n:04d}"
        shutil.copytree(template, dest)
        write_integrity_report(dest, {"status": "validated", "copy": n})
        snaps[dest.name] = snapshot(dest)
    drive("rotate", root, 12, 7)
    assert [p.name for p in list_iterations(scen)] == ["iter-0006"]
    assert not [p for p in scen.iterdir() if p.name.startswith(".")]  # no .deleting-*, no temps
    folder = root / "archive" / "crossing"
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]
    for n in range(1, 6):
        name = f"iter-{n:04d}"
        archives = archives_of(folder, name)
        assert len(archives) == 1 and verify_archive(archives[0]) == []
        assert snapshot(restore_iteration(archives[0], tmp_path / "restored" / name)) == snaps[name]
