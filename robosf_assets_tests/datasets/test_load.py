import numpy as np
import pytest
from imitation.data.types import TrajectoryWithRew

from robosf_assets.datasets.load import (
    DatasetError,
    dataset_status,
    iter_episodes,
    latest_validated,
    load_arrays,
    load_trajectories,
    read_integrity_report,
)
from robosf_assets.datasets.validate import validate_dataset, write_integrity_report
from robosf_assets_tests.datasets import SCENARIO, TINY_EPISODES, record_tiny


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    iter_dir = record_tiny(tmp_path_factory.mktemp("load") / SCENARIO)
    assert dataset_status(iter_dir) == "recorded"
    write_integrity_report(iter_dir, validate_dataset(iter_dir, min_episodes=TINY_EPISODES))
    return iter_dir


def test_status_follows_the_latest_report(validated, tmp_path):
    assert dataset_status(validated) == "validated"
    assert dataset_status(tmp_path) == "incomplete"
    assert latest_validated(validated.parent) == validated


def test_trajectories_have_imitation_shapes(validated):
    a = load_arrays(validated)
    trajs = load_trajectories(validated)
    assert len(trajs) == TINY_EPISODES
    dim = a["observations"].shape[1]
    for e, tr in enumerate(trajs):
        t = int(a["episode_lengths"][e])
        assert isinstance(tr, TrajectoryWithRew)
        assert tr.obs.shape == (t + 1, dim) and tr.obs.dtype == np.float32
        assert tr.acts.shape == (t, 2) and tr.acts.dtype == np.float32
        assert tr.rews.shape == (t,) and tr.rews.dtype == np.float32
        assert tr.infos is None
        assert tr.terminal == bool(a["terminated"][e])
    # every observation row is used exactly once
    assert sum(len(tr.obs) for tr in trajs) == len(a["observations"])


def test_streaming_yields_the_same_episodes(validated):
    loaded = load_trajectories(validated)
    streamed = list(iter_episodes(validated))
    assert len(streamed) == len(loaded)
    for a, b in zip(loaded, streamed, strict=True):
        assert a == b  # imitation's equality: obs, acts, rews, infos, terminal


def test_unvalidated_dataset_is_refused_unless_asked(tmp_path):
    iter_dir = record_tiny(tmp_path / SCENARIO)
    with pytest.raises(DatasetError, match="not 'validated'"):
        load_trajectories(iter_dir)
    with pytest.raises(DatasetError, match="not 'validated'"):
        next(iter_episodes(iter_dir))
    assert len(load_trajectories(iter_dir, require_validated=False)) == TINY_EPISODES
    # a quarantined report is named in the refusal
    write_integrity_report(iter_dir, validate_dataset(iter_dir, min_episodes=1000))
    assert dataset_status(iter_dir) == "quarantined"
    with pytest.raises(DatasetError, match="episode_count"):
        load_trajectories(iter_dir)


def test_unreadable_report_counts_as_quarantined(tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "integrity.json").write_text("{not json")
    assert read_integrity_report(tmp_path)["status"] == "quarantined"
    assert dataset_status(tmp_path) == "quarantined"


def _validated_copy(validated, tmp_path):
    import shutil

    return shutil.copytree(validated, tmp_path / SCENARIO / validated.name)


def test_npz_rewritten_after_validation_is_refused(validated, tmp_path):
    """Stale trust (issue 13 item 6): NaN observations written over a validated dataset."""
    from robosf_assets.datasets.schema import TRAJECTORIES_NAME, write_npz

    it = _validated_copy(validated, tmp_path)
    arrays = load_arrays(it)
    arrays["observations"] = arrays["observations"].copy()
    arrays["observations"][3, 1] = np.nan
    (it / TRAJECTORIES_NAME).unlink()
    write_npz(it / TRAJECTORIES_NAME, arrays)
    assert dataset_status(it) == "validated"  # the old report still says so...
    for read in (load_trajectories, lambda p: list(iter_episodes(p))):
        with pytest.raises(DatasetError, match="changed since it was validated: trajectories.npz: "):
            read(it)  # ...but the bytes it judged are gone
    assert np.isnan(load_trajectories(it, require_validated=False)[0].obs).any()  # inspection still works


def test_edited_manifest_or_a_report_of_other_data_is_refused(validated, tmp_path):
    import json

    it = _validated_copy(validated, tmp_path / "a")
    m = json.loads((it / "manifest.json").read_text())
    m["n_episodes"] += 1
    (it / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DatasetError, match="manifest.json was edited"):
        load_trajectories(it)
    other = _validated_copy(validated, tmp_path / "b")
    write_integrity_report(other, {"status": "validated", "dataset_id": "someone-else", "content_sha256": "0"})
    with pytest.raises(DatasetError, match="judged dataset_id 'someone-else'"):
        load_trajectories(other)
