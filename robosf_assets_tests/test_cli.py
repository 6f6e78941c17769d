"""The command line's argument handling (the pipeline itself is tested in defs/)."""

import json

import pytest

from robosf_assets import cli
from robosf_assets_tests.defs.conftest import tiny_stage_config


@pytest.mark.parametrize(("env", "cores", "expected"), [
    (None, 2, 2),     # one worker per core, at most 2 by default
    (None, 16, 2),
    (None, 1, 1),
    ("3", 2, 3),      # ROBOSF_WORKERS wins
    ("0", 2, 1),      # and is kept at >= 1
])
def test_default_workers(monkeypatch, env, cores, expected):
    if env is None:
        monkeypatch.delenv("ROBOSF_WORKERS", raising=False)
    else:
        monkeypatch.setenv("ROBOSF_WORKERS", env)
    monkeypatch.setattr(cli.os, "cpu_count", lambda: cores)
    assert cli.default_workers() == expected


def test_unknown_profile_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--profile", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err


def test_pipeline_on_two_workers_materialises_every_stage_on_one_instance(tmp_path, monkeypatch, capsys):
    import dagster as dg

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROBOSF_OUTPUT_DIR", str(tmp_path / "output"))
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_stage_config()))
    code = cli.main(["pipeline", "--scenario", "crossing", "corridor", "--seeds", "0", "1", "--profile", "quick",
                     "--workers", "2", "--config", str(config)])
    assert code == 0
    out = capsys.readouterr().out
    for scenario in ("crossing", "corridor"):
        assert f"{scenario}: report" in out
        assert len(list((tmp_path / "output" / "reports" / scenario).glob("*/report.md"))) == 1
    assert "all scenarios:" in out
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        runs = instance.get_runs()
        # stage 1 x 2, stage 2 x (2 scenarios x 2 seeds), stage 3 x 2, summary
        assert len(runs) == 2 + 4 + 2 + 1
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)


def test_config_naming_an_unknown_asset_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"expert_polcy": {"total_timesteps": 10}}))
    assert cli.main(["pipeline", "--scenario", "crossing", "--config", str(config)]) == 2
    assert not (tmp_path / "home").exists()  # refused before any work
