"""bench.calibrate --probe-average: the paired evaluation of a run's weights and their averages."""

import json

from robosf_assets.bench import calibrate


def test_probe_pairs_each_curve_row_with_its_weight_averages(tmp_path) -> None:
    argv = ["--scenario", "crossing", "--steps", "4096", "--n-envs", "16", "--eval-every", "1024",
            "--eval-episodes", "4", "--no-early-stop", "--checkpoint-every", "100000",
            "--set", "n_rays=16", "--probe-average", "0", "0.5",
            "--out-dir", str(tmp_path / "out"), "--run-root", str(tmp_path / "runs"), "--name", "p"]
    assert calibrate.main(argv) == 0
    out = tmp_path / "out" / "p"
    curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    probe = [json.loads(line) for line in (out / "average_probe.jsonl").read_text().splitlines()]
    assert [r["timesteps"] for r in probe] == [r["timesteps"] for r in curve] == [0, 1024, 2048, 3072, 4096]
    keys = ("success", "collision", "mean_return")
    for row, point in zip(probe, curve):
        assert row["weights"] == {k: point[k] for k in keys}  # the same policy on the same episodes
        assert row["average 0"] == row["weights"]  # decay 0: the latest weights
    assert probe[0]["average 0.5"] == probe[0]["weights"]  # nothing trained yet
    assert any(r["average 0.5"] != r["weights"] for r in probe[1:])
    assert json.loads((out / "summary.json").read_text())["average_probe"] == [0.0, 0.5]
