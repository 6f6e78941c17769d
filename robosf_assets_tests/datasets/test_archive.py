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
from robosf_assets.datasets.packing import pack_atomically
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
    pack_atomically(
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
    pack_atomically(archive, it, overwrite=False)
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
    assert actions[0].failed and "no archive of iter-0001 verifies" in actions[0].detail
    assert (scen / ".deleting-iter-0001" / "trajectories.npz").exists()  # nothing deleted


def _only_new_archive(archive_dir, old):
    new = [p for p in arch.archives_of(archive_dir, "iter-0001") if p != old]
    assert len(new) == 1 and new[0].name.startswith("iter-0001-") and new[0].name.endswith(".tar.gz")
    return new[0]


def test_partial_or_corrupt_archive_is_kept_and_a_new_one_written_beside_it(five, tmp_path):
    scen, archive_root, snaps = five
    archive = archive_root / SCENARIO / "iter-0001.tar.gz"
    archive.parent.mkdir(parents=True)
    pack_atomically(archive, scen / "iter-0001", overwrite=False)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])  # truncated
    assert verify_archive(archive)
    new = archive_iteration(scen / "iter-0001", archive_root)
    assert archive.read_bytes() == data[: len(data) // 2]  # never overwritten
    assert new == _only_new_archive(archive.parent, archive) and verify_archive(new) == []
    assert snapshot(restore_iteration(new, tmp_path / "r")) == snaps["iter-0001"]


def test_archive_missing_a_file_is_kept_and_a_new_one_written(five):
    scen, archive_root, _ = five
    it = scen / "iter-0001"
    archive = archive_root / SCENARIO / "iter-0001.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:  # an archive from an older run, lacking a file
        tar.add(it, arcname="iter-0001", recursive=False)
        tar.add(it / "manifest.json", arcname="iter-0001/manifest.json")
    before = archive.read_bytes()
    problems = verify_archive(archive)
    assert any("not in the archive" in p for p in problems)
    new = archive_iteration(it, archive_root)
    assert archive.read_bytes() == before and new != archive
    assert verify_archive(new) == [] and not it.exists()


def test_a_rerecorded_iteration_never_overwrites_the_archive_of_its_namesake(template, tmp_path):
    """output/datasets/<scenario>/ wiped, recording restarts at iter-0001: the old
    iter-0001.tar.gz verifies on its own but holds other data; both must survive."""
    scen, archive_root = tmp_path / "datasets" / SCENARIO, tmp_path / "archive"
    first = scen / "iter-0001"
    shutil.copytree(template, first)
    write_integrity_report(first, {"status": "validated", "generation": 1})
    old_snap = snapshot(first)
    old = archive_iteration(first, archive_root)
    old_bytes = old.read_bytes()
    shutil.rmtree(scen)  # wiped
    shutil.copytree(template, first)
    write_integrity_report(first, {"status": "validated", "generation": 2})
    new_snap = snapshot(first)
    assert verify_archive(old) == [] and new_snap != old_snap
    new = archive_iteration(first, archive_root)
    assert old.read_bytes() == old_bytes and new != old
    assert snapshot(restore_iteration(old, tmp_path / "r1")) == old_snap
    assert snapshot(restore_iteration(new, tmp_path / "r2")) == new_snap
    # archiving the same content again reuses its archive; a third generation gets a third name
    shutil.copytree(tmp_path / "r2" / "iter-0001", first)
    assert archive_iteration(first, archive_root) == new
    shutil.copytree(template, first)
    write_integrity_report(first, {"status": "validated", "generation": 3})
    third = archive_iteration(first, archive_root)
    assert len({old, new, third}) == 3 and all(verify_archive(a) == [] for a in (old, new, third))


def test_orphan_temp_archives_are_removed_by_the_next_run(five):
    scen, archive_root, _ = five
    folder = archive_root / SCENARIO
    folder.mkdir(parents=True)
    orphans = [folder / ".tmp-0123abcd-iter-0001.tar.gz", folder / ".tmp-89abcdef-iter-0004-0123456789ab.tar.gz"]
    for o in orphans:
        o.write_bytes(b"x" * 1000)  # what a kill during packing leaves
    keep = folder / "notes.txt"
    keep.write_text("not ours")
    rotate(scen, archive_root)
    assert not any(o.exists() for o in orphans) and keep.exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_archive_damaged_after_its_verification_stops_the_removal(five, monkeypatch):
    scen, archive_root, snaps = five
    it = scen / "iter-0001"
    real_rename = os.rename

    def rename_then_damage(src, dst):
        real_rename(src, dst)
        if str(dst).endswith(".deleting-iter-0001"):
            archive = archive_root / SCENARIO / "iter-0001.tar.gz"
            data = archive.read_bytes()
            archive.write_bytes(data[:-100])  # replaced or damaged once it had verified

    monkeypatch.setattr(arch.os, "rename", rename_then_damage)
    with pytest.raises(ArchiveError, match="no longer verifies"):
        archive_iteration(it, archive_root)
    monkeypatch.undo()
    assert snapshot(it) == snaps["iter-0001"]  # nothing removed


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
    pack_atomically(a, scen / "iter-0001", overwrite=False)
    pack_atomically(b, scen / "iter-0001", overwrite=False)
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
    first = archive_root / SCENARIO / "iter-0001.tar.gz"
    first_bytes = first.read_bytes()
    again = archive_iteration(it, archive_root)  # the rerun archives the new file too, beside
    assert not it.exists() and again != first and first.read_bytes() == first_bytes
    assert "iter-0001/integrity-0009.json" in tarfile.open(again).getnames()
