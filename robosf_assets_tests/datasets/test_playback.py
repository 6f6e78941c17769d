import pytest
from PIL import Image

from robosf_assets import replay as cli
from robosf_assets.datasets.load import DatasetError
from robosf_assets.datasets.playback import render_episode, replay_episode
from robosf_assets_tests.datasets import SCENARIO, TINY_EPISODES, TINY_OVERRIDES, record_tiny


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return record_tiny(tmp_path_factory.mktemp("play") / SCENARIO)


def test_replay_matches_the_recording(dataset):
    for e in range(TINY_EPISODES):
        r = replay_episode(dataset, e)
        assert r.matches_recording and r.max_obs_error == 0.0
        assert r.peds.shape[1] == TINY_OVERRIDES["n_peds"]
        assert r.robot.shape[0] == r.peds.shape[0]


def test_render_writes_png_and_gif(dataset, tmp_path):
    out = render_episode(dataset, 1, tmp_path / "ep1.png", gif=True)
    with Image.open(out.png) as img:
        assert img.format == "PNG" and img.size[0] > 300
    with Image.open(out.gif) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(out.replay.robot)  # 41 steps, stride 1
    assert out.gif.stat().st_size < 500_000
    render_episode(dataset, 1, tmp_path / "ep1.png")  # re-rendering replaces the view


def test_bad_episode_index(dataset, tmp_path):
    with pytest.raises(DatasetError, match="out of range"):
        render_episode(dataset, TINY_EPISODES, tmp_path / "x.png")


def test_cli(dataset, tmp_path, capsys):
    out = tmp_path / "cli.png"
    assert cli.main([str(dataset), "--episode", "0", "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().out
    # a scenario directory resolves to its newest complete iteration
    assert cli.main([str(dataset.parent), "--episode", "2", "--out", str(tmp_path / "s.png")]) == 0
    assert cli.main([str(dataset), "--episode", "99", "--out", str(tmp_path / "bad.png")]) == 2
