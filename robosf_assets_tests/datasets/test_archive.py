"""Rotation: keep the newest 3, archive the rest, verify before removing, survive crashes."""

import os
import shutil
import tarfile

import pytest

from robosf_assets.artifacts import list_iterations
from robosf_assets.datasets import archive as arch
from robosf_assets.datasets.archive import (
    ArchiveError,
    archive_iteration,
    pending_removals,
    plan_rotation,
    restore_iteration,
    rotate,
    rotation_run_key,
    verify_archive,
)
from robosf_assets.datasets.validate import validate_dataset, write_integrity_report
from robosf_assets_tests.datasets import SCENARIO, TINY_EPISODES, record_tiny, snapshot


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    iter_dir = record_tiny(tmp_path_factory.mktemp("tpl") / SCENARIO)
    write_integrity_report(iter_dir, validate_dataset(iter_dir, min_episodes=TINY_EPISODES))
    return iter_dir


@pytest.fixture
def five(template, tmp_path):
    """A scenario directory with iter-0001..iter-0005 (copies of one recorded iteration,
    each made distinct by an extra report) and snapshots of every file."""
    scen = tmp_path / "datasets" / SCENARIO
    snaps = {}
    for n in range(1, 6):
        dest = scen / f"iter-{n:04d}"
        shutil.copytree(template, dest)
        write_integrity_report(dest, {"status": "validated", "copy": n})
        snaps[dest.name] = snapshot(dest)
    return scen, tmp_path / "archive", snaps


def _names(paths):
    return [p.name for p in paths]


def test_rotation_keeps_three_archives_two_and_restores_bit_identically(five, tmp_path):
    scen, archive_root, snaps = five
    assert _names(plan_rotation(scen)) == ["iter-0001", "iter-0002"]
    actions = rotate(scen, archive_root)
    assert [(a.iteration, a.action) for a in actions] == [
        ("iter-0001", "archived"),
        ("iter-0002", "archived"),
    ]
    assert _names(list_iterations(scen)) == ["iter-0003", "iter-0004", "iter-0005"]
    assert sorted(p.name for p in (archive_root / SCENARIO).glob("*.tar.gz")) == [
        "iter-0001.tar.gz",
        "iter-0002.tar.gz",
    ]
    for name in ("iter-0001", "iter-0002"):
        archive = archive_root / SCENARIO / f"{name}.tar.gz"
        assert verify_archive(archive) == []
        restored = restore_iteration(archive, tmp_path / "restored")
        assert restored.name == name
        assert snapshot(restored) == snaps[name]  # every file, bit for bit
    # nothing more to do: a second rotation is a no-op
    assert rotate(scen, archive_root) == []
    assert rotation_run_key(scen) is None


def test_protected_iteration_is_never_archived(five):
    scen, archive_root, _ = five
    assert _names(plan_rotation(scen, protected={"iter-0001"})) == ["iter-0002"]
    actions = rotate(scen, archive_root, protected=[scen / "iter-0001"])
    assert [a.iteration for a in actions] == ["iter-0002"]
    assert _names(list_iterations(scen)) == ["iter-0001", "iter-0003", "iter-0004", "iter-0005"]
    assert not (archive_root / SCENARIO / "iter-0001.tar.gz").exists()


def test_newest_keep_never_archived_and_incomplete_ignored(five):
    scen, _, _ = five
    (scen / "iter-0006").mkdir()  # a recording in flight: no manifest
    assert _names(plan_rotation(scen, keep=3)) == ["iter-0001", "iter-0002"]
    assert _names(plan_rotation(scen, keep=5)) == []
    with pytest.raises(ValueError, match="keep must be >= 1"):
        plan_rotation(scen, keep=0)
    with pytest.raises(ArchiveError, match="no manifest"):
        archive_iteration(scen / "iter-0006", scen.parent.parent / "archive")


def test_run_key_is_stable_while_work_is_pending(five):
    scen, _, _ = five
    key = rotation_run_key(scen)
    assert key and key.startswith(f"archive-{SCENARIO}-")
    assert rotation_run_key(scen) == key
    assert rotation_run_key(scen, protected={"iter-0001"}) != key


def test_crash_after_archive_before_removal_completes_on_rerun(five, tmp_path):
    scen, archive_root, snaps = five
    it = scen / "iter-0001"
    archive = archive_root / SCENARIO / "iter-0001.tar.gz"
    arch._pack_atomically(
        archive, it, overwrite=False
    )  # the archive was written, then the run died
    mtime = archive.stat().st_mtime_ns
    actions = rotate(scen, archive_root)
    assert [a.action for a in actions] == ["archived", "archived"]
    assert archive.stat().st_mtime_ns == mtime  # the good archive was reused, not rebuilt
    assert not it.exists()
    assert snapshot(restore_iteration(archive, tmp_path / "r")) == snaps["iter-0001"]


def test_leftover_deleting_dir_is_finished_on_rerun(five, tmp_path):
    scen, archive_root, snaps = five
    it = scen / "iter-0001"
    archive = archive_root / SCENARIO / "iter-0001.tar.gz"
    arch._pack_atomically(archive, it, overwrite=False)
    deleting = scen / ".deleting-iter-0001"
    os.rename(it, deleting)
    (deleting / "episodes.jsonl").unlink()  # died half-way through the rmtree
    assert _names(pending_removals(scen)) == [".deleting-iter-0001"]
    assert rotation_run_key(scen) is not None
    actions = rotate(scen, archive_root)
    assert [(a.iteration, a.action) for a in actions] == [
        ("iter-0001", "finished_removal"),
        ("iter-0002", "archived"),
    ]
    assert not deleting.exists() and pending_removals(scen) == []
    assert snapshot(restore_iteration(archive, tmp_path / "r")) == snaps["iter-0001"]


def test_leftover_deleting_dir_kept_when_archive_is_bad(five):
    scen, archive_root, _ = five
    it = scen / "iter-0001"
    os.rename(it, scen / ".deleting-iter-0001")  # no archive at all: someone removed it
    actions = rotate(scen, archive_root)
    assert actions[0].failed and "does not verify" in actions[0].detail
    assert (scen / ".deleting-iter-0001" / "trajectories.npz").exists()  # nothing deleted


def test_partial_or_corrupt_archive_is_rebuilt(five, tmp_path):
    scen, archive_root, snaps = five
    archive = archive_root / SCENARIO / "iter-0001.tar.gz"
    archive.parent.mkdir(parents=True)
    arch._pack_atomically(archive, scen / "iter-0001", overwrite=False)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])  # truncated
    assert verify_archive(archive)
    archive_iteration(scen / "iter-0001", archive_root)
    assert verify_archive(archive) == []
    assert snapshot(restore_iteration(archive, tmp_path / "r")) == snaps["iter-0001"]


def test_archive_missing_a_file_is_rebuilt(five):
    scen, archive_root, _ = five
    it = scen / "iter-0001"
    archive = archive_root / SCENARIO / "iter-0001.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:  # an archive from an older run, lacking a file
        tar.add(it, arcname="iter-0001", recursive=False)
        tar.add(it / "manifest.json", arcname="iter-0001/manifest.json")
    problems = verify_archive(archive)
    assert any("not in the archive" in p for p in problems)
    archive_iteration(it, archive_root)
    assert verify_archive(archive) == [] and not it.exists()


def test_iteration_not_matching_its_manifest_is_left_in_place(five):
    scen, archive_root, _ = five
    it = scen / "iter-0001"
    with open(it / "episodes.jsonl", "a") as fh:
        fh.write("\n")
    actions = rotate(scen, archive_root)
    assert actions[0].iteration == "iter-0001" and actions[0].failed
    assert "does not match its manifest" in actions[0].detail
    assert actions[1].action == "archived"  # one failure does not stop the others
    assert it.exists() and not (archive_root / SCENARIO / "iter-0001.tar.gz").exists()


def test_restore_refuses_to_overwrite(five, tmp_path):
    scen, archive_root, _ = five
    archive = archive_iteration(scen / "iter-0001", archive_root)
    restore_iteration(archive, tmp_path / "r")
    with pytest.raises(FileExistsError):
        restore_iteration(archive, tmp_path / "r")


def test_archive_bytes_are_deterministic(five, tmp_path):
    scen, _, _ = five
    a, b = tmp_path / "a" / "iter-0001.tar.gz", tmp_path / "b" / "iter-0001.tar.gz"
    arch._pack_atomically(a, scen / "iter-0001", overwrite=False)
    arch._pack_atomically(b, scen / "iter-0001", overwrite=False)
    assert a.read_bytes() == b.read_bytes()


def test_file_added_during_archiving_aborts_the_removal(five, monkeypatch):
    scen, archive_root, snaps = five
    it = scen / "iter-0001"
    real_rename = os.rename

    def rename_then_write(src, dst):
        real_rename(src, dst)
        if str(dst).endswith(".deleting-iter-0001"):
            (dst / "integrity-0009.json").write_text("{}")  # a late writer got in

    monkeypatch.setattr(arch.os, "rename", rename_then_write)
    with pytest.raises(ArchiveError, match="changed while it was being archived"):
        archive_iteration(it, archive_root)
    monkeypatch.undo()
    assert it.exists() and (it / "integrity-0009.json").exists()
    after = snapshot(it)
    after.pop("integrity-0009.json")
    assert after == snaps["iter-0001"]
    archive_iteration(it, archive_root)  # the rerun rebuilds the archive with the new file
    assert not it.exists()
