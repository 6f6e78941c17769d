import hashlib

import numpy as np
import pytest

from robosf_assets.datasets.schema import (
    ARRAY_SPECS,
    MANIFEST_DIGEST_KEY,
    array_sha256,
    episode_bounds,
    manifest_digest,
    pack_episodes,
    write_npz,
)


def _episodes(lengths, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    obs = [rng.random((t + 1, dim), dtype=np.float32) for t in lengths]
    acts = [rng.uniform(-1, 1, (t, 2)).astype(np.float32) for t in lengths]
    rews = [rng.random(t, dtype=np.float32) for t in lengths]
    return obs, acts, rews, [True] * len(lengths), [False] * len(lengths)


def test_episode_bounds():
    starts, obs_starts = episode_bounds([3, 2, 4])
    assert starts.tolist() == [0, 3, 5]
    assert obs_starts.tolist() == [0, 4, 7]
    assert starts.dtype == np.int64


def test_pack_episodes_layout_and_dtypes():
    arrays = pack_episodes(*_episodes([3, 2, 4]))
    assert set(arrays) == set(ARRAY_SPECS)
    for name, spec in ARRAY_SPECS.items():
        assert arrays[name].dtype == spec.dtype, name
        assert arrays[name].ndim == spec.ndim, name
    assert arrays["observations"].shape == (9 + 3, 3)
    assert arrays["actions"].shape == (9, 2)
    assert arrays["episode_lengths"].tolist() == [3, 2, 4]


def test_pack_episodes_rejects_misaligned_episode():
    obs, acts, rews, term, trunc = _episodes([3, 2])
    obs[1] = obs[1][:-1]  # no terminal observation
    with pytest.raises(ValueError, match="episode 1"):
        pack_episodes(obs, acts, rews, term, trunc)


def test_write_npz_is_byte_identical_and_loadable(tmp_path):
    arrays = pack_episodes(*_episodes([5, 7]))
    write_npz(tmp_path / "a.npz", arrays)
    write_npz(tmp_path / "b.npz", arrays)
    a, b = (tmp_path / "a.npz").read_bytes(), (tmp_path / "b.npz").read_bytes()
    assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest()
    with np.load(tmp_path / "a.npz", allow_pickle=False) as npz:
        for name, arr in arrays.items():
            np.testing.assert_array_equal(npz[name], arr)
            assert npz[name].dtype == arr.dtype


def test_array_sha256_sees_dtype_shape_and_values():
    a = np.arange(6, dtype=np.float32)
    assert array_sha256(a) == array_sha256(a.copy())
    assert array_sha256(a) != array_sha256(a.reshape(2, 3))
    assert array_sha256(a) != array_sha256(a.astype(np.float64))
    b = a.copy()
    b[3] = 7
    assert array_sha256(a) != array_sha256(b)


def test_manifest_digest_detects_edits_and_ignores_itself():
    m = {"n_episodes": 200, "files": [{"path": "x", "sha256": "ab"}]}
    d = manifest_digest(m)
    assert manifest_digest({**m, MANIFEST_DIGEST_KEY: d}) == d
    assert manifest_digest({**m, "n_episodes": 201}) != d
