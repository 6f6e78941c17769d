"""Tests for robosf_assets.training.curves (the curve file format) and the assembly and
early-stop logic of robosf_assets.training.callbacks. No training here: test_ppo.py runs
the callbacks end to end."""

import subprocess
import sys

import pytest

from robosf_assets.training.callbacks import (
    CapLogStd,
    Checkpointer,
    CurveEvaluator,
    ProgressLogger,
    RunState,
    StopWhenBarHolds,
    training_callbacks,
)
from robosf_assets.training.train_config import TrainConfig
from robosf_assets.training.curves import CURVE_NAME, CurveLog, curve_text, read_curve


def tiny(**changes) -> TrainConfig:
    fields = {
        "scenario": "crossing",
        "seed": 1,
        "total_timesteps": 512,
        "n_envs": 4,
        "ppo": {"n_steps": 64, "batch_size": 128, "n_epochs": 2, "net_arch": [32, 32]},
        "eval": {"eval_every_steps": 256, "n_eval_episodes": 4, "n_eval_envs": 4},
        "promotion": {"min_success": 0.9, "max_collision": 0.1, "consecutive_evals": 2},
        "early_stop": True,
        "early_stop_margin": 0.0,
        "device": "cpu",
    }
    fields.update(changes)
    return TrainConfig.model_validate(fields)


def row(step: int, success: float, collision: float) -> dict:
    return {"timesteps": step, "success": success, "collision": collision, "mean_return": 0.0,
            "n_episodes": 4}


def test_curve_module_and_report_import_no_torch() -> None:
    code = (
        "import sys, robosf_assets.training.curves, robosf_assets.benchmark.report; "
        "bad = [m for m in ('torch', 'stable_baselines3') if m in sys.modules]; "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_curve_log_round_trip_and_torn_rows(tmp_path) -> None:
    log = CurveLog(tmp_path / CURVE_NAME)
    rows = [row(0, 0.5, 0.25), row(256, 1.0, 0.0)]
    for r in rows:
        log.append(r)
    assert log.path.read_text() == curve_text(rows) and read_curve(log.path) == rows
    with open(log.path, "a") as fh:
        fh.write('{"timesteps": 51')  # a kill mid-append
    assert read_curve(log.path) == rows
    log.reset_to(rows[:1])
    assert log.path.read_text() == curve_text(rows[:1])
    log.path.write_text('{"timesteps": 0\n' + curve_text(rows))  # damage before the last line
    with pytest.raises(ValueError, match=":1: invalid curve row"):
        read_curve(log.path)
    assert read_curve(tmp_path / "missing.jsonl") == []


def test_training_callbacks_order_and_extras(tmp_path) -> None:
    class Extra(ProgressLogger):
        pass

    extra = Extra(tiny(), RunState([]))
    built = training_callbacks(tiny(), tmp_path, RunState([]), None, [extra]).callbacks
    assert [type(c) for c in built] == [
        CurveEvaluator, StopWhenBarHolds, Checkpointer, ProgressLogger, Extra
    ]
    built = training_callbacks(tiny(early_stop=False), tmp_path, RunState([]), None, extra).callbacks
    assert [type(c) for c in built] == [CurveEvaluator, Checkpointer, ProgressLogger, Extra]
    capped = tiny(early_stop=False, ppo={**tiny().ppo.model_dump(), "log_std_max": -1.0})
    built = training_callbacks(capped, tmp_path, RunState([]), None).callbacks
    assert [type(c) for c in built] == [CapLogStd, CurveEvaluator, Checkpointer, ProgressLogger]
    assert built[0].cap == -1.0


def test_stop_when_bar_holds_judges_only_new_rows() -> None:
    # resumed with two rows meeting the bar: they are not re-judged (train_ppo handles that case)
    state = RunState([row(0, 1.0, 0.0), row(256, 1.0, 0.0)])
    stop = StopWhenBarHolds(tiny(), state)
    stop._on_rollout_start()
    assert not state.stopped_early and stop._on_step()
    state.curve.append(row(512, 0.5, 0.0))  # breaks the streak
    stop._on_rollout_start()
    state.curve.append(row(768, 0.95, 0.05))
    stop._on_rollout_start()
    assert not state.stopped_early
    state.curve.append(row(1024, 0.9, 0.1))  # the bar is inclusive: second in a row
    stop._on_rollout_start()
    assert state.stopped_early and not stop._on_step()
