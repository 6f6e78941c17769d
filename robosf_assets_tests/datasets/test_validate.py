"""Every bad input ends in 'quarantined' with a clear reason: never an exception, never lost data."""

import json
import shutil
import zipfile

import numpy as np
import pytest

from robosf_assets.artifacts import dumps_json, read_json, sha256_file
from robosf_assets.datasets.load import dataset_status, integrity_report_paths, load_arrays
from robosf_assets.datasets.schema import (
    MANIFEST_DIGEST_KEY,
    TRAJECTORIES_NAME,
    array_sha256,
    manifest_digest,
    write_npz,
)
from robosf_assets.datasets.validate import (
    check_episode_count,
    check_size_cap,
    validate_dataset,
    write_integrity_report,
)
from robosf_assets.envs import make_robot_env
from robosf_assets_tests.datasets import (
    SCENARIO,
    TINY_EPISODES,
    TINY_OVERRIDES,
    record_tiny,
    snapshot,
)

MIN = TINY_EPISODES


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return record_tiny(tmp_path_factory.mktemp("val") / SCENARIO)


@pytest.fixture
def copy(pristine, tmp_path):
    dest = tmp_path / SCENARIO / pristine.name
    shutil.copytree(pristine, dest)
    return dest


def _rewrite_npz(iter_dir, **changes):
    """Replace arrays in trajectories.npz (simulating bad data that kept its manifest)."""
    arrays = load_arrays(iter_dir)
    arrays.update(changes)
    path = iter_dir / TRAJECTORIES_NAME
    path.unlink()
    write_npz(path, arrays)


def _reseal(iter_dir):
    """Rewrite the manifest so it agrees with the (modified) files: digests, sizes, arrays."""
    path = iter_dir / "manifest.json"
    m = json.loads(path.read_text())
    for f in m["files"]:
        f["sha256"] = sha256_file(iter_dir / f["path"])
        f["bytes"] = (iter_dir / f["path"]).stat().st_size
    for name, arr in load_arrays(iter_dir).items():
        m["arrays"][name]["sha256"] = array_sha256(arr)
    m[MANIFEST_DIGEST_KEY] = manifest_digest(m)
    path.unlink()
    path.write_text(dumps_json(m))


def _quarantined(iter_dir, *fragments, **kwargs):
    before = snapshot(iter_dir)
    report = validate_dataset(iter_dir, min_episodes=kwargs.pop("min_episodes", MIN), **kwargs)
    assert report.status == "quarantined"
    text = "\n".join(report.reasons)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in reasons:\n{text}"
    path = write_integrity_report(iter_dir, report)
    after = snapshot(iter_dir)
    assert after.pop(path.name)  # the report is the only new file...
    assert after == before  # ...and nothing else changed or disappeared
    assert dataset_status(iter_dir) == "quarantined"
    return report


def test_good_dataset_validates(copy):
    before = snapshot(copy)
    report = validate_dataset(copy, min_episodes=MIN)
    assert report.status == "validated", report.reasons
    assert report.reasons == []
    assert all(c.passed for c in report.checks.values()), report.checks
    assert report.counts["episodes"] == TINY_EPISODES
    assert report.counts["transitions"] == sum(load_arrays(copy)["episode_lengths"])
    assert report.dataset_id == read_json(copy / "manifest.json")["dataset_id"]
    assert snapshot(copy) == before  # validation itself writes nothing


def test_explicit_observation_space_is_used(copy):
    space = make_robot_env(SCENARIO, 0, **TINY_OVERRIDES).observation_space
    assert validate_dataset(copy, min_episodes=MIN, obs_space=space).passed
    tight = type(space)(low=space.low, high=space.low + 1e-3, dtype=np.float32)
    report = validate_dataset(copy, min_episodes=MIN, obs_space=tight)
    assert report.failed_checks() == ["observation_range"]


def test_truncated_npz(copy):
    path = copy / TRAJECTORIES_NAME
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _quarantined(
        copy,
        "npz: trajectories.npz is truncated or corrupt",
        "checksums: trajectories.npz: size mismatch",
        "episode_count: unknown",
    )


def test_corrupt_npz_random_bytes(copy):
    path = copy / TRAJECTORIES_NAME
    size = path.stat().st_size
    path.write_bytes(np.random.default_rng(0).bytes(size))
    _quarantined(copy, "npz: trajectories.npz is truncated or corrupt", "checksum mismatch")


def test_corrupt_bytes_inside_the_observations_member(copy):
    """The zip directory is intact; the damage only shows when the member is decompressed."""
    path = copy / TRAJECTORIES_NAME
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("observations.npy")
    data = bytearray(path.read_bytes())
    mid = info.header_offset + 100 + info.compress_size // 2
    data[mid : mid + 32] = bytes(32)
    path.write_bytes(bytes(data))
    report = _quarantined(
        copy,
        "checksums: trajectories.npz: checksum mismatch",
        "npz: array 'observations' is unreadable (truncated or corrupt member)",
    )
    assert report.checks["npz"].passed is False


def test_nan_observations(copy):
    obs = load_arrays(copy)["observations"].copy()
    obs[5, 2] = np.nan
    obs[7, 0] = np.inf
    _rewrite_npz(copy, observations=obs)
    _quarantined(
        copy,
        "finite: observations hold 2 NaN/inf values (first in row 5, episode 0)",
        "checksums: trajectories.npz",
        "content: array 'observations' differs",
    )


def test_nan_recorded_with_a_consistent_manifest(copy):
    """NaN produced at recording time: checksums agree, the value checks still catch it."""
    obs = load_arrays(copy)["observations"].copy()
    obs[9, 1] = np.nan
    _rewrite_npz(copy, observations=obs)
    _reseal(copy)
    report = _quarantined(
        copy, "finite: observations hold 1 NaN/inf values (first in row 9, episode 0)"
    )
    assert report.failed_checks() == ["finite"]


def test_mismatched_lengths(copy):
    a = load_arrays(copy)
    _rewrite_npz(copy, rewards=a["rewards"][:-3], episode_lengths=a["episode_lengths"] + 1)
    _quarantined(
        copy,
        "alignment: rewards has",
        "alignment: episode_lengths sum to",
        "episodes_jsonl: 6 records disagree",
    )


def test_actions_out_of_range(copy):
    acts = load_arrays(copy)["actions"].copy()
    acts[3, 1] = 1.5
    _rewrite_npz(copy, actions=acts)
    _quarantined(copy, "action_range: 1 action values outside [-1.0, 1.0] (first: row 3, column 1")


def test_observations_out_of_range(copy):
    obs = load_arrays(copy)["observations"].copy()
    obs[4, 0] = 3.0  # a lidar value must lie in [0, 1]
    _rewrite_npz(copy, observations=obs)
    _quarantined(
        copy,
        "observation_range: 1 observation values outside the observation space (first: row 4, "
        "feature 0",
    )


def test_wrong_dtype_and_missing_array(copy):
    a = load_arrays(copy)
    del a["obs_starts"]
    a["actions"] = a["actions"].astype(np.float64)
    path = copy / TRAJECTORIES_NAME
    path.unlink()
    write_npz(path, a)
    _quarantined(copy, "npz: array 'obs_starts' is missing")
    a["obs_starts"] = load_arrays(copy, ("episode_starts",))["episode_starts"] + np.arange(
        TINY_EPISODES
    )
    path.unlink()
    write_npz(path, a)
    _quarantined(copy, "dtypes: actions has dtype float64, expected float32")


def test_missing_manifest(copy):
    (copy / "manifest.json").unlink()
    report = _quarantined(copy, "manifest: manifest.json is missing", "checksums: cannot verify")
    assert report.checks["metadata"].passed is None  # skipped: the manifest reason covers it


def test_unparseable_manifest(copy):
    (copy / "manifest.json").write_text('{"files": [')
    _quarantined(copy, "manifest: manifest.json unreadable")


def test_edited_manifest_field(copy):
    path = copy / "manifest.json"
    m = json.loads(path.read_text())
    m["n_episodes"] = 250
    path.write_text(json.dumps(m))
    _quarantined(
        copy,
        "manifest: manifest_sha256 does not match",
        "metadata: manifest n_episodes 250, arrays hold 6",
    )


def test_edited_manifest_checksum(copy):
    path = copy / "manifest.json"
    m = json.loads(path.read_text())
    for f in m["files"]:
        if f["path"] == "episodes.jsonl":
            f["sha256"] = "f" * 64
    path.write_text(json.dumps(m))
    _quarantined(
        copy, "checksums: episodes.jsonl: checksum mismatch", "manifest_sha256 does not match"
    )


def test_incomplete_metadata(copy):
    path = copy / "manifest.json"
    m = json.loads(path.read_text())
    del m["scenario_coverage"]
    m["source"] = {"run_dir": "x"}
    path.write_text(json.dumps(m))
    _quarantined(
        copy,
        "metadata: manifest lacks required fields ['scenario_coverage']",
        "metadata: source lacks ['model_sha256']",
    )


def test_over_the_size_cap(copy):
    report = _quarantined(
        copy, "size_cap: dataset is", "over the cap of 1,000 bytes", size_cap_bytes=1000
    )
    assert report.failed_checks() == ["size_cap"]


def test_too_few_episodes(copy):
    report = _quarantined(
        copy, "episode_count: 6 episodes, fewer than the minimum 200", min_episodes=200
    )
    assert report.failed_checks() == ["episode_count"]


def test_every_reason_is_reported_not_just_the_first(copy):
    obs = load_arrays(copy)["observations"].copy()
    obs[0, 0] = np.nan
    _rewrite_npz(copy, observations=obs)
    report = _quarantined(copy, min_episodes=100, size_cap_bytes=10)
    assert {"finite", "checksums", "content", "episode_count", "size_cap"} <= set(
        report.failed_checks()
    )


def test_missing_directory_is_a_reason(tmp_path):
    report = validate_dataset(tmp_path / "iter-0009")
    assert report.status == "quarantined"
    assert "does not exist" in report.reasons[0]


def test_validating_a_deleted_iteration_creates_nothing(copy):
    shutil.rmtree(copy)  # deleted (or archived) between recording and validation
    report = validate_dataset(copy, min_episodes=MIN)
    with pytest.raises(FileNotFoundError, match="does not exist.*no directory created"):
        write_integrity_report(copy, report)
    assert not copy.exists()


def test_standalone_checks(copy):
    assert check_size_cap(copy, 10**9).passed
    assert not check_size_cap(copy, 10).passed
    assert check_episode_count(copy, MIN).value == TINY_EPISODES
    assert not check_episode_count(copy, MIN + 1).passed
    (copy / TRAJECTORIES_NAME).write_bytes(b"garbage")
    result = check_episode_count(copy, MIN)
    assert result.passed is False and "cannot count episodes" in result.reasons[0]


def test_reports_are_never_overwritten(copy):
    first = write_integrity_report(copy, validate_dataset(copy, min_episodes=MIN))
    second = write_integrity_report(copy, validate_dataset(copy, min_episodes=10_000))
    assert (first.name, second.name) == ("integrity.json", "integrity-0002.json")
    assert [p.name for p in integrity_report_paths(copy)] == [
        "integrity.json",
        "integrity-0002.json",
    ]
    assert read_json(first)["status"] == "validated"
    assert dataset_status(copy) == "quarantined"  # the latest report wins
