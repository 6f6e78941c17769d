import re
import numpy as np
import pytest

from robosf_assets.artifacts import list_iterations, read_json, verify_manifest
from robosf_assets.benchmark.episodes import read_episodes_jsonl
from robosf_assets.datasets.load import load_arrays
from robosf_assets.datasets.record import record_dataset
from robosf_assets.datasets.schema import (
    ARRAY_SPECS,
    EPISODES_NAME,
    MANIFEST_DIGEST_KEY,
    REQUIRED_MANIFEST_FIELDS,
    TRAJECTORIES_NAME,
    manifest_digest,
)
from robosf_assets.envs import make_robot_env
from robosf_assets_tests.datasets import (
    SCENARIO,
    SOURCE,
    TINY_EPISODES,
    TINY_OVERRIDES,
    goal_seeking_policy,
    record_tiny,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return record_tiny(tmp_path_factory.mktemp("rec") / SCENARIO)


def test_iteration_layout_and_manifest(dataset):
    assert dataset.name == "iter-0001"
    assert sorted(p.name for p in dataset.iterdir()) == sorted(
        [TRAJECTORIES_NAME, EPISODES_NAME, "manifest.json"]
    )
    m = read_json(dataset / "manifest.json")
    missing = [k for k in REQUIRED_MANIFEST_FIELDS if k not in m]
    assert not missing
    assert m["status"] == "recorded"
    assert m["iteration"] == 1 and m["scenario"] == SCENARIO and m["partition"] == SCENARIO
    assert m["source"] == SOURCE
    assert m["env_overrides"] == TINY_OVERRIDES
    assert m["seeds"]["episode_seeds"] == list(range(3_000_100, 3_000_100 + TINY_EPISODES))
    assert m["n_episodes"] == TINY_EPISODES
    assert set(m["arrays"]) == set(ARRAY_SPECS)
    assert m["arrays"]["actions"]["shape"] == [m["n_transitions"], 2]
    assert m["scenario_coverage"][SCENARIO]["episodes"] == TINY_EPISODES
    assert m["bytes_total"] == sum(f["bytes"] for f in m["files"])
    assert {f["path"] for f in m["files"]} == {TRAJECTORIES_NAME, EPISODES_NAME}
    assert m[MANIFEST_DIGEST_KEY] == manifest_digest(m)
    assert verify_manifest(dataset) == []


def test_episodes_jsonl_matches_arrays(dataset):
    records = read_episodes_jsonl(dataset / EPISODES_NAME)
    a = load_arrays(dataset)
    assert [r["seed"] for r in records] == list(range(3_000_100, 3_000_100 + TINY_EPISODES))
    assert [r["length"] for r in records] == a["episode_lengths"].tolist()
    for r, s, t in zip(records, a["episode_starts"], a["episode_lengths"], strict=True):
        assert r["return"] == pytest.approx(float(a["rewards"][s : s + t].sum(dtype=np.float64)))
        assert r["steps"] == r["length"]
    assert all(ep["outcome"] in {"goal", "pedestrian", "obstacle", "timeout"} for ep in records)


def test_same_seeds_same_bytes_whatever_n_envs(dataset, tmp_path):
    again = record_tiny(tmp_path / SCENARIO, n_envs=2)
    m1, m2 = read_json(dataset / "manifest.json"), read_json(again / "manifest.json")
    assert m1["content_sha256"] == m2["content_sha256"]
    f1 = {f["path"]: f["sha256"] for f in m1["files"]}
    f2 = {f["path"]: f["sha256"] for f in m2["files"]}
    assert f1[TRAJECTORIES_NAME] == f2[TRAJECTORIES_NAME]  # the NPZ file itself is byte-identical
    assert m1["dataset_id"] != m2["dataset_id"]


def test_an_sb3_policy_records_the_same_bytes_for_the_same_n_envs(tmp_path):
    """What record.py promises for a batched torch policy: same n_envs, same bytes."""
    from robosf_assets.envs import make_vec_env
    from robosf_assets.envs.rollout import sb3_policy
    from robosf_assets.training.train_config import TrainConfig
    from robosf_assets.training.ppo import build_ppo

    cfg = TrainConfig(scenario=SCENARIO, n_envs=2, ppo={"n_steps": 64, "batch_size": 128, "net_arch": [16, 16]},
                      env_overrides=TINY_OVERRIDES, device="cpu")
    policy = sb3_policy(build_ppo(cfg, make_vec_env(SCENARIO, 2, 0, **TINY_OVERRIDES)), deterministic=True)
    a, b = (record_tiny(tmp_path / name / SCENARIO, n_envs=3, n_episodes=4, policy=policy) for name in "ab")
    assert read_json(a / "manifest.json")["recording"]["n_envs"] == 3
    assert (a / TRAJECTORIES_NAME).read_bytes() == (b / TRAJECTORIES_NAME).read_bytes()


def test_replay_reproduces_recorded_observations(dataset):
    """Playback relies on it: seed + actions reproduce every recorded observation exactly."""
    a = load_arrays(dataset)
    for e, seed in enumerate(range(3_000_100, 3_000_100 + TINY_EPISODES)):
        t, s, o = (int(a[k][e]) for k in ("episode_lengths", "episode_starts", "obs_starts"))
        env = make_robot_env(SCENARIO, seed=seed, **TINY_OVERRIDES)
        obs = [env.reset()[0]]
        for k in range(t):
            ob, _, terminated, truncated, _ = env.step(a["actions"][s + k])
            obs.append(ob)
        np.testing.assert_array_equal(np.asarray(obs), a["observations"][o : o + t + 1])
        assert terminated == bool(a["terminated"][e]) and truncated == bool(a["truncated"][e])


def test_bad_arguments_fail_before_any_directory(tmp_path):
    parent = tmp_path / SCENARIO
    with pytest.raises(ValueError, match="model_sha256"):
        record_dataset(
            goal_seeking_policy,
            SCENARIO,
            parent,
            n_episodes=2,
            seed_base=0,
            source={"run_dir": "x"},
        )
    with pytest.raises(TypeError, match="unknown environment override"):
        record_dataset(
            goal_seeking_policy,
            SCENARIO,
            parent,
            n_episodes=2,
            seed_base=3_000_000,
            source=SOURCE,
            env_overrides={"n_rayz": 8},
        )
    assert list_iterations(parent) == []


@pytest.mark.parametrize(
    "seed_base, clash",
    [
        (0, "overlap training worlds [0, 1,000,000)"),
        (1_000_000, "overlap curve evaluation episodes [1,000,000, 1,900,000)"),
        (2_999_999, "overlap validation episodes [2,000,000, 3,000,000)"),
    ],
)
def test_dataset_seeds_must_not_replay_other_stages_episodes(tmp_path, seed_base, clash):
    """Issue 13 item 7: the error names the dataset's seeds and the range they overlap."""
    parent = tmp_path / SCENARIO
    with pytest.raises(ValueError, match=rf"dataset episodes \(seed_base .*\) \[.*\) {re.escape(clash)}.*"
                                         r"must stay in \[3,000,000, \.\.\.\)"):
        record_dataset(goal_seeking_policy, SCENARIO, parent, n_episodes=2, seed_base=seed_base, source=SOURCE)
    assert not parent.exists() or list_iterations(parent) == []


def test_failing_policy_leaves_no_incomplete_iteration(tmp_path):
    def broken(obs):
        raise RuntimeError("policy exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        record_tiny(tmp_path / SCENARIO, policy=broken)
    assert list_iterations(tmp_path / SCENARIO) == []
