"""Tests for robosf_assets.artifacts: atomic writes, run/iteration dirs, locks, manifests."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from robosf_assets import artifacts as A
from robosf_assets.artifacts import layout


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if A.is_temp_name(p.name))


# ------------------------------------------------------------------ output_root


def test_output_root_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("ROBOSF_OUTPUT_DIR", str(tmp_path / "elsewhere"))
    assert A.output_root() == tmp_path / "elsewhere"


def test_output_root_default_is_repo_output(monkeypatch):
    monkeypatch.delenv("ROBOSF_OUTPUT_DIR", raising=False)
    package_dir = Path(A.__file__).resolve().parent.parent  # robosf_assets/
    assert A.output_root() == package_dir.parent / "output"


# --------------------------------------------------------------- atomic writes


def test_sha256_file_matches_hashlib(tmp_path):
    import hashlib

    data = bytes(range(256)) * 5000  # > 1 MiB chunk, exercises streaming
    p = tmp_path / "blob.bin"
    p.write_bytes(data)
    assert A.sha256_file(p) == hashlib.sha256(data).hexdigest()


def test_atomic_write_bytes_and_text(tmp_path):
    A.atomic_write_bytes(tmp_path / "sub" / "a.bin", b"\x00\x01")
    A.atomic_write_text(tmp_path / "b.txt", "héllo")
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []


def test_atomic_save_writer_raises_leaves_nothing(tmp_path):
    target = tmp_path / "model.zip"

    def writer(tmp: Path) -> None:
        tmp.write_bytes(b"half a model")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        A.atomic_save(target, writer)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_save_cleans_suffix_added_by_library_and_explains(tmp_path):
    # np.savez appends ".npz" when the name lacks it: the file lands beside the temp path.
    target = tmp_path / "arrays"
    with pytest.raises(RuntimeError, match="did not create a regular file"):
        A.atomic_save(target, lambda p: np.savez(p, x=np.arange(3)))
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_save_with_numpy_writer(tmp_path):
    target = A.atomic_save(tmp_path / "arrays.npz", lambda p: np.savez(p, x=np.arange(3)))
    with np.load(target) as z:
        np.testing.assert_array_equal(z["x"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz"]


def test_refuses_overwrite_unless_asked(tmp_path):
    target = tmp_path / "a.txt"
    A.atomic_write_text(target, "first")
    called = []
    with pytest.raises(FileExistsError, match="a.txt"):
        A.atomic_save(target, lambda p: called.append(p))
    with pytest.raises(FileExistsError, match="a.txt"):
        A.atomic_write_text(target, "second")
    assert called == []  # refused before doing the work
    assert target.read_text() == "first"
    A.atomic_write_text(target, "second", overwrite=True)
    assert target.read_text() == "second"
    assert _leftovers(tmp_path) == []


def test_concurrent_writers_exactly_one_wins(tmp_path):
    target = tmp_path / "race.txt"
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def writer_for(i: int):
        def write(p: Path) -> None:
            p.write_text(f"writer {i}")
            barrier.wait()  # all temp files written before anyone commits

        return write

    def run(i: int) -> None:
        try:
            A.atomic_save(target, writer_for(i))
            outcomes.append(f"ok {i}")
        except FileExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o.startswith("ok")]
    assert len(winners) == 1 and outcomes.count("refused") == 5
    assert target.read_text() == f"writer {winners[0].split()[1]}"
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------------ JSON


def test_atomic_write_json_handles_numpy_path_nan(tmp_path):
    obj = {
        "b": np.float32(1.5),
        "a": np.int64(3),
        "arr": np.array([[1.0, np.nan], [np.inf, 2.0]]),
        "path": Path("x") / "y.npz",
        "nan": float("nan"),
        "flag": np.bool_(True),
        "nested": ({"z": 1},),
    }
    p = A.atomic_write_json(tmp_path / "o.json", obj)
    text = p.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert text.index('"a"') < text.index('"arr"') < text.index('"b"')  # sorted keys
    assert text.endswith("\n") and '\n  "a": 3' in text  # indent 2
    assert A.read_json(p) == {
        "a": 3,
        "arr": [[1.0, None], [None, 2.0]],
        "b": 1.5,
        "flag": True,
        "nan": None,
        "nested": [{"z": 1}],
        "path": "x/y.npz",
    }


def test_to_jsonable_rejects_unknown_type_with_location():
    with pytest.raises(TypeError, match=r"object at \$\.cfg\.bad"):
        A.to_jsonable({"cfg": {"bad": object()}})


def test_read_json_names_file_on_invalid_json(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"a": 1,,}')
    with pytest.raises(ValueError, match=r"broken\.json: invalid JSON at line 1"):
        A.read_json(p)


# ------------------------------------------------------- run / iteration dirs


def test_new_run_dir_layout_and_exclusive(tmp_path):
    d = A.new_run_dir("expert_policy", "corridor", root=tmp_path)
    assert d.parent == tmp_path / "expert_policy" / "corridor" and d.is_dir()
    assert len(d.name) == len("20261126T071500Z-3fa2")
    assert d.name[8] == "T" and d.name[15] == "Z" and d.name[16] == "-"
    fixed = A.new_run_dir("expert_policy", "corridor", run_id="r1", root=tmp_path)
    assert fixed.name == "r1"
    with pytest.raises(FileExistsError):
        A.new_run_dir("expert_policy", "corridor", run_id="r1", root=tmp_path)


def test_new_run_dir_uses_output_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ROBOSF_OUTPUT_DIR", str(tmp_path))
    d = A.new_run_dir("bc_policy", "corridor", run_id="abc")
    assert d == tmp_path / "bc_policy" / "corridor" / "abc"


def test_new_run_dir_retries_on_collision(monkeypatch, tmp_path):
    ids = iter(["20260101T000000Z-aaaa", "20260101T000000Z-aaaa", "20260101T000000Z-bbbb"])
    monkeypatch.setattr(layout, "new_run_id", lambda: next(ids))
    first = A.new_run_dir("k", "p", root=tmp_path)
    second = A.new_run_dir("k", "p", root=tmp_path)
    assert (first.name, second.name) == ("20260101T000000Z-aaaa", "20260101T000000Z-bbbb")


@pytest.mark.parametrize("bad", ["", "..", ".hidden", "a/b", "a\\b"])
def test_new_run_dir_rejects_unsafe_components(tmp_path, bad):
    with pytest.raises(ValueError, match="partition"):
        A.new_run_dir("k", bad, root=tmp_path)


def test_next_iteration_dir_sequence(tmp_path):
    parent = tmp_path / "ds"
    assert A.next_iteration_dir(parent).name == "iter-0001"
    assert A.next_iteration_dir(parent).name == "iter-0002"
    (parent / "iter-0007").mkdir()
    assert A.next_iteration_dir(parent).name == "iter-0008"


def test_next_iteration_dir_concurrent_threads_distinct(tmp_path):
    n = 8
    barrier = threading.Barrier(n)
    got: list[Path] = []
    lock = threading.Lock()

    def claim() -> None:
        barrier.wait()
        for _ in range(3):
            d = A.next_iteration_dir(tmp_path)
            with lock:
                got.append(d)

    threads = [threading.Thread(target=claim) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = sorted(p.name for p in got)
    assert names == [f"iter-{i:04d}" for i in range(1, 3 * n + 1)]


def test_list_iterations_sorted_ignores_junk(tmp_path):
    for name in ["iter-0010", "iter-0002", "iter-0001", "iter-10000"]:
        (tmp_path / name).mkdir()
    for junk in [".tmp-ab12-iter-0003", "iter-0004.partial", "iter-x", "notes"]:
        (tmp_path / junk).mkdir()
    (tmp_path / "iter-0005").write_text("a file, not an iteration")
    names = [p.name for p in A.list_iterations(tmp_path)]
    assert names == ["iter-0001", "iter-0002", "iter-0010", "iter-10000"]
    (tmp_path / "iter-0002" / "manifest.json").write_text("{}")
    assert [p.name for p in A.list_iterations(tmp_path, require_manifest=True)] == [
        "iter-0002"
    ]
    assert A.list_iterations(tmp_path / "missing") == []


# --------------------------------------------------------------- provenance


def test_git_revision_outside_repo_is_none(monkeypatch, tmp_path):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.chdir(tmp_path)
    assert A.git_revision(tmp_path) is None
    assert A.git_revision(tmp_path / "does-not-exist") is None


def test_git_revision_reports_sha_and_dirty(monkeypatch, tmp_path):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    assert A.git_revision(tmp_path) is None  # no commit yet
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("-c", "commit.gpgsign=false", "commit", "-q", "-m", "init")
    sha = git("rev-parse", "HEAD")
    assert A.git_revision(tmp_path) == sha
    (tmp_path / "untracked.txt").write_text("x")
    assert A.git_revision(tmp_path) == sha
    (tmp_path / "f.txt").write_text("2")
    assert A.git_revision(tmp_path) == f"{sha}-dirty"


def test_package_versions_installed_and_missing():
    v = A.package_versions(("numpy", "surely-not-a-real-package-xyz"))
    assert v == {"numpy": np.__version__, "surely-not-a-real-package-xyz": None}


# ----------------------------------------------------------------- manifests


def _populated_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    (d / "sub").mkdir(parents=True)
    (d / "model.zip").write_bytes(b"weights" * 100)
    (d / "sub" / "data.npz").write_bytes(b"\x00" * 33)
    (d / ".tmp-dead-stale.bin").write_bytes(b"crash leftover")
    return d


def test_manifest_round_trip(tmp_path):
    d = _populated_dir(tmp_path)
    started = time.time() - 2.5
    m = A.build_manifest(
        kind="expert_policy",
        partition="corridor",
        config={"lr": np.float32(3e-4), "n_envs": 8, "bad": math.nan},
        seeds={"train": 1, "eval": np.int64(2)},
        artifact_dir=d,
        started_at=started,
        run_id="r1",
        extra={"metrics": {"success_rate": 0.9}},
    )
    assert m["schema_version"] == A.MANIFEST_SCHEMA_VERSION
    assert (m["kind"], m["partition"], m["run_id"]) == ("expert_policy", "corridor", "r1")
    assert [f["path"] for f in m["files"]] == ["model.zip", "sub/data.npz"]
    assert m["files"][0] == {
        "path": "model.zip",
        "sha256": A.sha256_file(d / "model.zip"),
        "bytes": 700,
    }
    assert 2.5 <= m["wall_time_s"] < 60
    assert m["seeds"] == {"train": 1, "eval": 2}
    assert m["config"]["bad"] is None and m["metrics"] == {"success_rate": 0.9}
    assert m["created_at"].endswith("+00:00")
    assert set(m["packages"]) == set(A.DEFAULT_PACKAGES) and m["python"]
    assert "platform" in m["host"]
    path = A.write_manifest(d, m)
    assert A.read_json(path) == m
    assert A.verify_manifest(d) == []
    # extra unlisted files are fine
    (d / "notes.txt").write_text("added later")
    assert A.verify_manifest(d) == []
    with pytest.raises(FileExistsError, match="manifest.json"):
        A.write_manifest(d, m)


def test_build_manifest_explicit_files(tmp_path):
    d = _populated_dir(tmp_path)
    m = A.build_manifest(kind="k", partition=None, config={}, seeds=[0], artifact_dir=d,
                         files=[d / "sub" / "data.npz"], started_at=time.time())
    assert [f["path"] for f in m["files"]] == ["sub/data.npz"]
    with pytest.raises(ValueError, match="not inside"):
        A.build_manifest(kind="k", partition=None, config={}, seeds=[0], artifact_dir=d,
                         files=[tmp_path / "outside.txt"], started_at=time.time())
    with pytest.raises(ValueError, match="shadow"):
        A.build_manifest(kind="k", partition=None, config={}, seeds=[0], artifact_dir=d,
                         started_at=time.time(), extra={"files": []})


@pytest.fixture
def verified_dir(tmp_path) -> Path:
    d = _populated_dir(tmp_path)
    m = A.build_manifest(kind="k", partition="p", config={}, seeds=[0], artifact_dir=d,
                         started_at=time.time())
    A.write_manifest(d, m)
    assert A.verify_manifest(d) == []
    return d


def test_verify_manifest_detects_edited_file_same_size(verified_dir):
    p = verified_dir / "model.zip"
    data = bytearray(p.read_bytes())
    data[0] ^= 0xFF
    p.write_bytes(bytes(data))
    problems = A.verify_manifest(verified_dir)
    assert len(problems) == 1 and "model.zip" in problems[0] and "checksum" in problems[0]


def test_verify_manifest_detects_size_change(verified_dir):
    (verified_dir / "sub" / "data.npz").write_bytes(b"\x00" * 34)
    problems = A.verify_manifest(verified_dir)
    assert len(problems) == 1 and "sub/data.npz" in problems[0] and "size" in problems[0]


def test_verify_manifest_detects_missing_file(verified_dir):
    (verified_dir / "sub" / "data.npz").unlink()
    problems = A.verify_manifest(verified_dir)
    assert problems == ["sub/data.npz: missing"]


def test_verify_manifest_missing_or_broken_manifest(verified_dir):
    manifest = verified_dir / "manifest.json"
    manifest.write_text("{not json")
    problems = A.verify_manifest(verified_dir)
    assert len(problems) == 1 and "unreadable" in problems[0]
    manifest.unlink()
    problems = A.verify_manifest(verified_dir)
    assert len(problems) == 1 and "manifest missing" in problems[0]


def test_verify_manifest_rejects_paths_outside(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    (tmp_path / "secret").write_text("x")
    manifest = {"files": [{"path": "../secret", "sha256": "0" * 64, "bytes": 1}]}
    (d / "manifest.json").write_text(json.dumps(manifest))
    problems = A.verify_manifest(d)
    assert len(problems) == 1 and "outside" in problems[0]


# ---- resumable run directories ---------------------------------------------------------

from robosf_assets.artifacts import (
    abandon_run_dir,
    build_manifest,
    holds_run_dir,
    open_resumable_run_dir,
    release_run_dir,
    write_manifest,
)


def test_resumable_run_dir_is_reused_until_finished(tmp_path):
    key = {"scenario": "crossing", "seed": 1, "budget": 100}
    first, resumed = open_resumable_run_dir("experts", "crossing", key, root=tmp_path)
    assert not resumed and (first / "run_key.json").is_file()
    assert holds_run_dir(first)
    # held (even by this very process): a second caller never shares it
    busy, resumed = open_resumable_run_dir("experts", "crossing", key, root=tmp_path)
    assert not resumed and busy != first
    release_run_dir(first)
    assert not holds_run_dir(first)
    again, resumed = open_resumable_run_dir("experts", "crossing", key, root=tmp_path)
    assert resumed and again == first
    # a different key never reuses it
    other, resumed = open_resumable_run_dir("experts", "crossing", {**key, "seed": 2}, root=tmp_path)
    assert not resumed and other != first
    # once finished (manifest written) a new run starts
    release_run_dir(first)
    release_run_dir(busy)
    manifest = build_manifest(kind="experts", partition="crossing", config=key, seeds=[1], artifact_dir=first,
                              started_at=0.0)
    assert ".lock" not in {f["path"] for f in manifest["files"]}
    write_manifest(first, manifest)
    other_unfinished, resumed = open_resumable_run_dir("experts", "crossing", key, root=tmp_path)
    assert resumed and other_unfinished == busy
    abandon_run_dir(busy, "test")
    release_run_dir(busy)
    fresh, resumed = open_resumable_run_dir("experts", "crossing", key, root=tmp_path)
    assert not resumed and fresh not in (first, busy)
    release_run_dir(fresh)


def test_stale_pid_or_empty_lock_files_do_not_block_and_abandoned_dirs_are_skipped(tmp_path):
    key = {"k": 1}
    first, _ = open_resumable_run_dir("experts", "p", key, root=tmp_path)
    release_run_dir(first)
    for content in ("", "1", "999999999", "garbage"):  # what pid-file locks would misread
        (first / ".lock").write_text(content)
        again, resumed = open_resumable_run_dir("experts", "p", key, root=tmp_path)
        assert resumed and again == first
        release_run_dir(again)
    abandon_run_dir(first, "damaged by a test")
    fresh, resumed = open_resumable_run_dir("experts", "p", key, root=tmp_path)
    assert not resumed and fresh != first
    release_run_dir(fresh)


def _forked_openers(root, n):
    """Fork ``n`` children that open the run directory at the same moment (released by one
    write to a shared pipe), report (name, resumed) and hold it until SIGKILLed."""
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:  # child: nothing of pytest may run here
            try:
                os.close(go_w)
                os.read(go_r, 1)
                run_dir, resumed = open_resumable_run_dir("experts", "p", {"k": 1}, root=root)
                os.write(out_w, f"{run_dir.name} {int(resumed)}\n".encode())
                time.sleep(60)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(go_r)
    os.close(out_w)
    os.write(go_w, b"x" * n)
    os.close(go_w)
    with os.fdopen(out_r) as fh:
        got = [fh.readline().split() for _ in range(n)]
    return pids, got


def test_concurrent_takeovers_of_a_dead_holders_dir_never_share_it(tmp_path):
    """Many rounds: a run directory whose holder was SIGKILLed (its lock file left behind,
    empty or with a dead pid) and several processes reopening it at the same moment."""
    import signal

    key = {"k": 1}
    dead, _ = open_resumable_run_dir("experts", "p", key, root=tmp_path)
    release_run_dir(dead)
    for round_ in range(12):
        (dead / ".lock").write_text("" if round_ % 2 else "999999999")
        pids, got = _forked_openers(tmp_path, 6)
        for pid in pids:  # the holders die, their locks with them
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        names = [g[0] for g in got]
        assert len(set(names)) == len(names), f"round {round_}: two live processes shared a directory: {got}"
        assert sum(int(g[1]) for g in got) == 1 and dead.name in names, f"round {round_}: {got}"
        for name in names:
            if name != dead.name:  # the fresh directories of this round are not reused
                abandon_run_dir(dead.parent / name, "extra run of a test round")
