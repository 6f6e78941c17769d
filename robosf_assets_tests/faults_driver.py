"""Fault injection driver for ``test_faults.py``: run a stage in forked children and
SIGKILL them at random times or at named points, then let a last child finish the work.

Run as ``python -m robosf_assets_tests.faults_driver <stage> <root> <rounds> <seed>
[<point>...]``. The parent imports everything and warms the simulator once, then forks
one child per attempt (cheap: no interpreter start, no torch import per round). It
prints one JSON line: what every attempt did (``killed``, ``ok`` or ``error: ...``).

Stages:

- ``expert``: :func:`open_resumable_run_dir` + :func:`train_expert` on a tiny config.
- ``rotate``: :func:`robosf_assets.datasets.archive.rotate` of a scenario directory
  prepared by the test (``<root>/datasets/<scenario>``, archives in ``<root>/archive``).

Named points kill the child right after a given write, once each, before random kills:
``after:<file name>`` (any atomic write committing that name, e.g.
``after:validation_episodes.jsonl``) and ``torn_curve`` (half a curve row written, then
killed).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

from robosf_assets import artifacts
from robosf_assets.artifacts import atomic as atomic_files

ROLLOUT = 256


def tiny_expert_config():
    from robosf_assets.training.train_config import TrainConfig

    return TrainConfig.model_validate(
        {
            "scenario": "crossing",
            "seed": 3,
            "total_timesteps": 2 * ROLLOUT,
            "n_envs": 4,
            "ppo": {"n_steps": 64, "batch_size": 128, "n_epochs": 1, "net_arch": [16, 16]},
            "eval": {"eval_every_steps": ROLLOUT, "n_eval_episodes": 2, "n_eval_envs": 2},
            "validation": {"eval_seeds": [0, 1, 2], "episodes_per_seed": 1, "n_envs": 1},
            "promotion": {"min_success": 0.0, "max_collision": 1.0, "consecutive_evals": 5},
            "checkpoint_every_steps": ROLLOUT,
            "early_stop": False,
            "env_overrides": {"n_rays": 16, "horizon": 40, "n_peds": 4},
            "device": "cpu",
            "progress_interval_s": 1000.0,
        }
    )


def run_expert(root: Path) -> None:
    from robosf_assets.training.expert import train_expert

    config = tiny_expert_config()
    run_dir, resumed = artifacts.open_resumable_run_dir("experts", "crossing", config.run_key(), root=root)
    train_expert(config, run_dir, resumed=resumed)


def run_rotate(root: Path) -> None:
    from robosf_assets.datasets.archive import rotate

    actions = rotate(root / "datasets" / "crossing", root / "archive", keep=1)
    failed = [a for a in actions if a.failed]
    if failed:
        raise RuntimeError("; ".join(f"{a.iteration}: {a.detail}" for a in failed))


STAGES = {"expert": run_expert, "rotate": run_rotate}


COMMITTED = "committed;"
"""What a child writes to its pipe each time it commits a manifest."""


def _after_commit(name: str, action) -> None:
    """In the child: call ``action()`` right after every atomic write that commits a file
    called ``name`` (every atomic write commits through ``commit_temp_file``). Hooks stack:
    one installed later runs after the earlier ones."""
    real = atomic_files.commit_temp_file

    def commit(tmp, path, overwrite):
        real(tmp, path, overwrite)
        if Path(path).name == name:
            action()

    atomic_files.commit_temp_file = commit


def _arm_point(point: str) -> None:
    """In the child: SIGKILL this process at ``point``."""

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    if point.startswith("after:"):
        _after_commit(point.split(":", 1)[1], die)
    elif point == "torn_curve":
        from robosf_assets.training.curves import CurveLog

        real_append = CurveLog.append
        calls = {"n": 0}

        def append(self, row):
            calls["n"] += 1
            if calls["n"] == 2:  # the second row of this attempt: half of it, then death
                text = json.dumps(row, sort_keys=True)
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(text[: len(text) // 2])
                die()
            real_append(self, row)

        CurveLog.append = append
    else:
        raise SystemExit(f"unknown fault point {point!r}")


def _attempt(stage, root: Path, point: str | None, kill_after: float | None) -> dict:
    """One forked attempt: ``{"result": "ok" | "killed" | "error: ...", "committed": n}``
    where ``n`` counts the manifests the attempt committed before it ended."""
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(out_r)
            # tell the parent at once whenever a manifest is committed, so that a kill landing
            # between that commit and the child's return still counts as a finished run
            _after_commit(artifacts.MANIFEST_NAME, lambda: os.write(out_w, COMMITTED.encode()))
            if point:  # installed after the report: a kill "after:" a manifest is still reported
                _arm_point(point)
            stage(root)
            msg = "ok"
        except BaseException as err:  # noqa: BLE001 - reported to the test
            msg = f"error: {type(err).__name__}: {err}"
            traceback.print_exc()
            code = 1
        os.write(out_w, msg.encode())
        os._exit(code)
    os.close(out_w)
    reaped = False
    if kill_after is not None:
        deadline = time.monotonic() + kill_after
        while time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG)[0]:
                reaped = True
                break
            time.sleep(0.005)
        else:
            os.kill(pid, signal.SIGKILL)
    if not reaped:
        os.waitpid(pid, 0)
    with os.fdopen(out_r, "rb") as fh:
        msg = fh.read().decode()
    committed = msg.count(COMMITTED)
    return {"result": msg.replace(COMMITTED, "") or "killed", "committed": committed}


def main(argv: list[str]) -> None:
    name, root, rounds, seed, *points = argv
    stage, root, rng = STAGES[name], Path(root), random.Random(int(seed))
    if name == "expert":  # import and warm up once (numba cache, torch's optimiser, plots)
        import torch

        from robosf_assets.benchmark.plots import learning_curve_png
        from robosf_assets.envs import make_vec_env
        from robosf_assets.training import expert  # noqa: F401

        torch.set_num_threads(1)
        make_vec_env("crossing", 2, 0, n_rays=16, horizon=40, n_peds=4).reset()
        torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        learning_curve_png([{"timesteps": 0, "success": 0.0, "collision": 0.0}], title="warm-up")
    results = []
    scale = 0.0
    for point in points:
        t0 = time.monotonic()
        results.append({"point": point, **_attempt(stage, root, point, None)})
        if point == f"after:{artifacts.MANIFEST_NAME}":  # a whole run, killed once committed
            scale = time.monotonic() - t0
    if not scale:  # a first, unkilled attempt on a scratch copy measures the work
        scratch = root.parent / f"{root.name}-timing"
        if root.exists():
            shutil.copytree(root, scratch)
        t0 = time.monotonic()
        _attempt(stage, scratch, None, None)
        scale = time.monotonic() - t0
        shutil.rmtree(scratch, ignore_errors=True)
    for _ in range(int(rounds)):
        t = rng.uniform(0.0, scale)
        results.append({"kill_after_s": round(t, 3), **_attempt(stage, root, None, t)})
    results.append({"final": True, **_attempt(stage, root, None, None)})
    print(json.dumps({"scale_s": scale, "attempts": results}))


if __name__ == "__main__":
    main(sys.argv[1:])
