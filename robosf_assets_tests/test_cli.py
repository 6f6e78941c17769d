"""The command line: argument checks, and the whole graph as one backfill on a real daemon.

``test_a_failed_expert_stops_only_its_scenario`` runs what ``make demo`` runs (on tiny
budgets, two scenarios, one seed): the CLI starts ``dagster-daemon`` on a fresh SQLite
instance, submits the backfill through GraphQL, follows it and prints the outcome. One
scenario gets an impossible promotion bar, so its expert fails the blocking check: its
chain stops, the other scenario's goes on to its report, and the output says why.
``test_ctrl_c_cancels_the_backfill`` interrupts the same command in a subprocess.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robosf_assets import cli
from robosf_assets_tests.defs.conftest import tiny_stage_config

REPO = Path(__file__).resolve().parents[1]


def test_unknown_profile_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--profile", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_unknown_scenario_gets_a_friendly_error_listing_the_known_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["pipeline", "--scenario", "crossing", "plaza"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown scenario 'plaza'; known scenarios: " in err and "crossing" in err and "corridor" in err
    assert "Traceback" not in err and "DagsterUnknownPartitionError" not in err
    assert not (tmp_path / "home").exists()  # refused before any work


def test_unknown_seed_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit):
        cli.main(["pipeline", "--scenario", "crossing", "--seeds", "0", "7"])
    assert "unknown seed(s) [7]" in capsys.readouterr().err


def test_config_naming_an_unknown_asset_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"expert_polcy": {"total_timesteps": 10}}))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["pipeline", "--scenario", "crossing", "--config", str(config)])
    assert exit_info.value.code == 2 and "unknown assets ['expert_polcy']" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(("env", "cores", "expected"), [(None, 2, 2), (None, 16, 16), ("3", 2, 3), ("0", 2, 1)])
def test_training_slots_default_to_one_per_core(monkeypatch, env, cores, expected):
    if env is None:
        monkeypatch.delenv("ROBOSF_TRAINING_SLOTS", raising=False)
    else:
        monkeypatch.setenv("ROBOSF_TRAINING_SLOTS", env)
    monkeypatch.setattr(cli.os, "cpu_count", lambda: cores)
    assert cli.default_training_slots() == expected


def _failing_corridor_config(path: Path) -> Path:
    config = tiny_stage_config()
    # nobody meets this bar: corridor's expert fails the blocking check, crossing's passes (bar 0)
    config["expert_policy"]["scenario_overrides"] = {"corridor": {"min_success": 1.0, "max_collision": 0.0}}
    path.write_text(json.dumps(config))
    return path


def test_a_failed_expert_stops_only_its_scenario(tmp_path, monkeypatch, capsys):
    import dagster as dg

    from robosf_assets.defs import backfill as bf

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROBOSF_OUTPUT_DIR", str(tmp_path / "output"))
    config = _failing_corridor_config(tmp_path / "tiny.json")
    code = cli.main(["pipeline", "--scenario", "crossing", "corridor", "--seeds", "0", "--config", str(config),
                     "--training-slots", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "crossing: report " in out and "all scenarios: " in out
    (stopped,) = [line for line in out.splitlines() if line.startswith("  corridor: stopped")]
    assert "check expert_promotion_bar failed" in stopped and "not run: arms, report" in stopped
    assert "/runs/b/" in out
    assert len(list((tmp_path / "output" / "reports" / "crossing").glob("*/report.md"))) == 1
    assert not (tmp_path / "output" / "reports" / "corridor").exists()
    assert not (tmp_path / "output" / "datasets" / "corridor").exists()
    assert not list((tmp_path / "output").glob("baseline_policies/corridor-*"))

    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        (backfill,) = instance.get_backfills()
        assert backfill.status.value == "COMPLETED_FAILED"
        runs = bf.backfill_runs(instance, backfill.backfill_id)
        by_partition = {(bf.stage_of(r), r.tags.get("dagster/partition")): r.status for r in runs}
        # crossing went through every stage; corridor stopped at its expert; nothing was retried
        assert by_partition == {
            ("expert+dataset", "crossing"): dg.DagsterRunStatus.SUCCESS,
            ("expert+dataset", "corridor"): dg.DagsterRunStatus.FAILURE,
            ("arms", "crossing|0"): dg.DagsterRunStatus.SUCCESS,
            ("report", "crossing"): dg.DagsterRunStatus.SUCCESS,
        }
        # the summary followed as its own run (the backfill skips it once a scenario failed)
        (summary,) = instance.get_runs(filters=dg.RunsFilter(tags={"robosf/after_backfill": backfill.backfill_id}))
        assert summary.status == dg.DagsterRunStatus.SUCCESS
        # the training pool held one slot: no two training runs overlapped
        spans = sorted((rec.start_time, rec.end_time) for rec in instance.get_run_records(
            filters=dg.RunsFilter(run_ids=[r.run_id for r in runs if bf.stage_of(r) in ("expert+dataset", "arms")])))
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), spans
        # the daemon the command started is gone
        assert not instance.get_daemon_heartbeats()


def test_ctrl_c_cancels_the_backfill(tmp_path):
    import dagster as dg

    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "ROBOSF_OUTPUT_DIR": str(tmp_path / "output"),
           "PYTHONUNBUFFERED": "1"}
    config = tmp_path / "slow.json"
    stage = tiny_stage_config()
    # still training when Ctrl-C comes: no early stop (the tiny bar, 0.00 / 1.00, holds at once)
    stage["expert_policy"].update(total_timesteps=200_000, early_stop=False)
    config.write_text(json.dumps(stage))
    log = tmp_path / "cli.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "robosf_assets.cli", "pipeline", "--scenario", "crossing",
                                 "--seeds", "0", "--config", str(config)], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                # a suite started in the background inherits SIGINT ignored, and
                                # Python then installs no KeyboardInterrupt handler: restore it
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while "1 running" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=240) == cli.CANCELLED, log.read_text(errors="replace")[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text(errors="replace")
    assert "Ctrl-C: cancelling the backfill" in text and "CANCELED" in text
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        (backfill,) = instance.get_backfills()
        assert backfill.status.value == "CANCELED"
        runs = instance.get_runs()
        assert runs and all(r.is_finished for r in runs)
        assert {r.status for r in runs} <= {dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE}
        assert not instance.get_daemon_heartbeats()
