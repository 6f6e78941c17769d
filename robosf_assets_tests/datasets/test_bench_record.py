from robosf_assets.bench import record as bench


def test_bench_runs_and_reports_both_bars(capsys):
    code = bench.main(["--episodes", "8", "--n-envs", "4"])
    out = capsys.readouterr().out
    assert code in (0, 1)  # the bar verdict depends on the machine; the report must be complete
    assert "record random policy" in out and "record ppo policy" in out
    assert "validate ppo dataset (8 episodes" in out and "validated" in out
    assert "bars: recording >= 5,000/s" in out
