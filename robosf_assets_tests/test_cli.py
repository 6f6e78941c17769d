"""The command line's argument handling (the pipeline itself is tested in defs/)."""

import pytest

from robosf_assets import cli


@pytest.mark.parametrize(("env", "cores", "n_scenarios", "expected"), [
    (None, 2, 3, 2),     # one chain per core, at most 2 by default
    (None, 16, 3, 2),
    (None, 1, 3, 1),
    (None, 2, 1, 1),     # never more workers than scenarios
    ("3", 2, 3, 3),      # ROBOSF_WORKERS wins
    ("0", 2, 3, 1),      # and is kept at >= 1
])
def test_default_workers(monkeypatch, env, cores, n_scenarios, expected):
    if env is None:
        monkeypatch.delenv("ROBOSF_WORKERS", raising=False)
    else:
        monkeypatch.setenv("ROBOSF_WORKERS", env)
    monkeypatch.setattr(cli.os, "cpu_count", lambda: cores)
    assert cli.default_workers(n_scenarios) == expected


def test_unknown_profile_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--profile", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err
