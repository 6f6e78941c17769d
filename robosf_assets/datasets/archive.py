"""Archival rotation of dataset iterations: pack, verify, and only then remove.

``rotate(scenario_dir, archive_root)`` keeps the newest ``keep`` complete iterations of
a scenario (and every protected one: iterations a current pre-trained policy was built
from) and moves each older one to ``<archive_root>/<scenario>/iter-NNNN.tar.gz``.

One iteration goes through these states; every step is atomic or repeatable, so a crash
at any point loses nothing and a rerun finishes the work:

1. ``iter-NNNN/`` complete (manifest present) and matching its manifest. An iteration
   that fails ``verify_manifest`` is never archived (it stays for inspection).
2. The archive is written to a temporary name and committed without replacing anything
   (a crash leaves a ``.tmp-*`` file or nothing; such orphans are removed by the next
   run). Bytes are deterministic: sorted members, fixed gzip header.
3. Archives are never overwritten. The archive is ``iter-NNNN.tar.gz`` unless that name
   holds something else (an older ``iter-NNNN`` of a wiped and re-recorded scenario, a
   damaged file): that archive is kept and this one is named by its content,
   ``iter-NNNN-<12 hex of the files' sha256s>.tar.gz`` (then ``...-2.tar.gz``, ... if even
   that name is taken by a damaged file). An existing archive that holds exactly this
   iteration is reused.
4. The archive is read back in full: every member's sha256 and size must equal the
   file on disk, every file on disk must be in it, and every file the manifest lists
   must be there with the manifest's sha256.
5. ``iter-NNNN/`` is renamed to ``.deleting-iter-NNNN/`` (no reader or listing sees it
   as an iteration any more), its content is checked once more against what was
   verified (a file added meanwhile aborts and renames it back), the archive is
   verified once more, and only then is the directory removed. A leftover
   ``.deleting-*`` directory is removed on rerun once an archive of that iteration
   verifies and holds every file left in it.

A per-iteration ``flock`` in the archive folder serialises concurrent archivers of the
same iteration; the lock dies with its process, so a crash never blocks a rerun.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import re
import secrets
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from robosf_assets.artifacts import (
    MANIFEST_NAME,
    atomic_save,
    fsync_dir,
    is_temp_name,
    list_iterations,
    read_json,
    verify_manifest,
)
from robosf_assets.logging import get_logger

__all__ = [
    "ARCHIVE_SUFFIX",
    "DELETING_PREFIX",
    "ArchiveError",
    "RotationAction",
    "archive_iteration",
    "archive_path_for",
    "archives_of",
    "iteration_of_archive",
    "pending_removals",
    "plan_rotation",
    "restore_iteration",
    "rotate",
    "rotation_run_key",
    "sweep_orphans",
    "verify_archive",
]

_log = get_logger("datasets.archive")

ARCHIVE_SUFFIX = ".tar.gz"
DELETING_PREFIX = ".deleting-"
GZIP_LEVEL = 1
"""The payload is mostly an already-deflated NPZ: level 1 costs little and gains as much."""
_CHUNK = 1 << 20

Inventory = dict[str, tuple[str, int]]
"""Relative POSIX path -> (sha256, bytes) of every regular file of an iteration."""


class ArchiveError(RuntimeError):
    """Archiving or restoring stopped; nothing was removed."""


@dataclass(frozen=True)
class RotationAction:
    """One thing :func:`rotate` did (or could not do) to one iteration.

    ``action`` is ``archived``, ``finished_removal`` (a ``.deleting-*`` leftover of an
    interrupted run) or ``failed`` (``detail`` says why; the data were left in place).
    """

    iteration: str
    action: str
    archive: str | None
    detail: str

    @property
    def failed(self) -> bool:
        return self.action == "failed"


# ---- planning --------------------------------------------------------------------------


def _names(protected: Iterable[str | os.PathLike[str]] | None) -> set[str]:
    return {Path(p).name for p in (protected or ())}


def plan_rotation(
    scenario_dir: str | os.PathLike[str],
    keep: int = 3,
    protected: Iterable[str | os.PathLike[str]] | None = None,
) -> list[Path]:
    """Iterations to archive: complete ones (manifest present) older than the newest
    ``keep``, minus ``protected`` (names like ``"iter-0002"`` or paths).

    Incomplete iterations (no manifest: a recording in flight or crashed) are never
    planned and do not count towards ``keep``.

    :raises ValueError: for ``keep < 1`` (the newest iteration always stays: iteration
        numbers continue from what is on disk).
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1 (the newest iteration is never archived), got {keep}")
    complete = list_iterations(scenario_dir, require_manifest=True)
    protected_names = _names(protected)
    return [p for p in complete[:-keep] if p.name not in protected_names]


def pending_removals(scenario_dir: str | os.PathLike[str]) -> list[Path]:
    """``.deleting-iter-NNNN`` directories left by an interrupted removal."""
    try:
        entries = list(Path(scenario_dir).iterdir())
    except FileNotFoundError:
        return []
    return sorted(e for e in entries if e.name.startswith(DELETING_PREFIX) and e.is_dir())


def rotation_run_key(
    scenario_dir: str | os.PathLike[str],
    keep: int = 3,
    protected: Iterable[str | os.PathLike[str]] | None = None,
) -> str | None:
    """A run key naming the work :func:`rotate` would do now, or ``None`` if none.

    Same pending work, same key: a sensor that ticks twice before the run finishes does
    not request it twice.
    """
    todo = [p.name for p in plan_rotation(scenario_dir, keep, protected)]
    todo += [p.name for p in pending_removals(scenario_dir)]
    if not todo:
        return None
    digest = hashlib.sha256("\n".join(sorted(todo)).encode()).hexdigest()[:12]
    return f"archive-{Path(scenario_dir).name}-{digest}"


def archive_path_for(
    iter_dir: str | os.PathLike[str], archive_root: str | os.PathLike[str]
) -> Path:
    """``<archive_root>/<scenario>/<iter-NNNN>.tar.gz`` for ``<scenario>/<iter-NNNN>``: the
    first name tried; see :func:`archives_of` for the content-named ones beside it."""
    iter_dir = Path(iter_dir)
    name = iter_dir.name.removeprefix(DELETING_PREFIX)
    return Path(archive_root) / iter_dir.parent.name / f"{name}{ARCHIVE_SUFFIX}"


_ARCHIVE_NAME = re.compile(
    r"(?P<it>[^.].*?)(?:-(?P<digest>[0-9a-f]{12})(?:-(?P<n>[0-9]+))?)?" + re.escape(ARCHIVE_SUFFIX)
)
_TMP_ARCHIVE = re.compile(r"\.tmp-[0-9a-f]{8}-(?P<name>.+" + re.escape(ARCHIVE_SUFFIX) + r")")


def iteration_of_archive(archive: str | os.PathLike[str]) -> str:
    """The iteration an archive holds, from its name: ``iter-0001`` for ``iter-0001.tar.gz``
    and for ``iter-0001-<digest>[-<n>].tar.gz``.

    :raises ArchiveError: for a name of neither form.
    """
    m = _ARCHIVE_NAME.fullmatch(Path(archive).name)
    if not m:
        raise ArchiveError(f"{Path(archive).name} is not named <iteration>[-<digest>]{ARCHIVE_SUFFIX}")
    return m["it"]


def archives_of(archive_dir: str | os.PathLike[str], name: str) -> list[Path]:
    """Every archive of iteration ``name`` in ``archive_dir``: ``<name>.tar.gz`` first, then
    the content-named ones in name order."""
    try:
        entries = list(Path(archive_dir).iterdir())
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        m = _ARCHIVE_NAME.fullmatch(entry.name)
        if m and m["it"] == name and entry.is_file():
            found.append((m["digest"] is not None, int(m["n"] or 1), entry.name, entry))
    return [e for *_, e in sorted(found)]


def _content_digest(inventory: Inventory) -> str:
    h = hashlib.sha256()
    for rel in sorted(inventory):
        sha, size = inventory[rel]
        h.update(f"{rel}\0{sha}\0{size}\n".encode())
    return h.hexdigest()[:12]


def _candidate_names(name: str, inventory: Inventory) -> Iterator[str]:
    yield f"{name}{ARCHIVE_SUFFIX}"
    digest = _content_digest(inventory)
    yield f"{name}-{digest}{ARCHIVE_SUFFIX}"
    n = 2
    while True:
        yield f"{name}-{digest}-{n}{ARCHIVE_SUFFIX}"
        n += 1


# ---- inventory, packing, verification --------------------------------------------------


def _sha256_stream(fh: Any) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    while chunk := fh.read(_CHUNK):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), n


def _walk_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative POSIX path, path) of the entries to archive; refuses what would not
    restore identically (symlinks, devices)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_temp_name(d))
        for d in dirnames:
            if (Path(dirpath) / d).is_symlink():
                raise ArchiveError(
                    f"{Path(dirpath) / d} is a symlink; archives hold regular files only"
                )
        for name in sorted(filenames):
            full = Path(dirpath) / name
            if is_temp_name(name):
                continue  # an in-flight write that has not committed
            if full.is_symlink() or not full.is_file():
                raise ArchiveError(
                    f"{full} is not a regular file; archives hold regular files only"
                )
            yield full.relative_to(root).as_posix(), full


def _inventory(root: Path) -> Inventory:
    inv: Inventory = {}
    for rel, full in _walk_files(root):
        with open(full, "rb") as fh:
            inv[rel] = _sha256_stream(fh)
    return inv


def _pack(tmp: Path, iter_dir: Path) -> None:
    name = iter_dir.name
    with (
        open(tmp, "xb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.add(iter_dir, arcname=name, recursive=False)
        added_dirs: set[str] = set()
        for rel, full in _walk_files(iter_dir):
            parent = PurePosixPath(rel).parent
            if parent != PurePosixPath(".") and parent.as_posix() not in added_dirs:
                # directories below the iteration (none today) go in before their files
                added_dirs.add(parent.as_posix())
                tar.add(iter_dir / parent, arcname=f"{name}/{parent.as_posix()}", recursive=False)
            tar.add(full, arcname=f"{name}/{rel}", recursive=False)


def _member_rel(member: tarfile.TarInfo, name: str) -> str | None:
    """The member's path below the iteration; raises on unsafe or foreign names."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != name:
        raise ArchiveError(f"archive member {member.name!r} is outside {name}/")
    if not (member.isfile() or member.isdir()):
        raise ArchiveError(f"archive member {member.name!r} is not a regular file or directory")
    return PurePosixPath(*path.parts[1:]).as_posix() if len(path.parts) > 1 else None


def _read_archive(archive: Path, name: str) -> tuple[Inventory, dict[str, Any] | None]:
    """Every file member's (sha256, size) and the parsed manifest, reading to the end
    (which checks the gzip CRC)."""
    found: Inventory = {}
    manifest: dict[str, Any] | None = None
    with tarfile.open(archive, mode="r:gz") as tar:
        for member in tar:
            rel = _member_rel(member, name)
            if rel is None or member.isdir():
                continue
            fh = tar.extractfile(member)
            if fh is None:
                raise ArchiveError(f"archive member {member.name!r} has no data")
            if rel == MANIFEST_NAME:
                data = fh.read()
                found[rel] = (hashlib.sha256(data).hexdigest(), len(data))
                manifest = json.loads(data)
            else:
                found[rel] = _sha256_stream(fh)
    return found, manifest


def verify_archive(archive: str | os.PathLike[str], expected: Inventory | None = None) -> list[str]:
    """Problems found reading ``archive`` back in full; empty when it is good.

    Always: the archive reads to the end, holds only ``iter-NNNN/...`` regular files,
    holds a manifest, and every file the manifest lists is present with the manifest's
    size and sha256. With ``expected`` (an inventory of the original directory), the
    members must also be exactly those files with those checksums.
    """
    archive = Path(archive)
    if not archive.is_file():
        return [f"{archive}: missing"]
    try:
        name = iteration_of_archive(archive)
        found, manifest = _read_archive(archive, name)
    except (tarfile.TarError, OSError, EOFError, ValueError, ArchiveError, gzip.BadGzipFile) as e:
        return [f"{archive.name}: unreadable (partial or corrupt): {type(e).__name__}: {e}"]
    problems = []
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        problems.append(f"{archive.name}: holds no usable {MANIFEST_NAME}")
    else:
        for entry in manifest["files"]:
            rel = entry.get("path") if isinstance(entry, dict) else None
            if rel not in found:
                problems.append(f"{archive.name}: manifest file {rel!r} is not in the archive")
            elif found[rel] != (entry.get("sha256"), entry.get("bytes")):
                problems.append(f"{archive.name}: {rel} differs from the manifest's sha256/size")
    if expected is not None:
        for rel in sorted(set(expected) - set(found)):
            problems.append(f"{archive.name}: {rel} is missing from the archive")
        for rel in sorted(set(found) - set(expected)):
            problems.append(f"{archive.name}: {rel} is in the archive but not in the directory")
        for rel in sorted(set(found) & set(expected)):
            if found[rel] != expected[rel]:
                problems.append(f"{archive.name}: {rel} differs from the file on disk")
    return problems


# ---- archiving -------------------------------------------------------------------------


@contextmanager
def _lock(folder: Path, name: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f".lock-{name}", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchiveError(
                f"{name} is being archived by another process; try again later"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _finish_removal(deleting: Path) -> None:
    shutil.rmtree(deleting)
    fsync_dir(deleting.parent)


def archive_iteration(
    iter_dir: str | os.PathLike[str], archive_root: str | os.PathLike[str]
) -> Path:
    """Pack ``iter_dir`` into an archive under ``<archive_root>/<scenario>/``, verify it,
    then remove ``iter_dir`` (see the module docstring for the steps and the names).

    Idempotent: an existing archive holding exactly this iteration is reused, one holding
    anything else is kept and a new name is used, and a ``.deleting-<iter>`` left by an
    interrupted removal is finished first.

    :return: the archive path.
    :raises ArchiveError: when the iteration is incomplete, does not match its manifest,
        changed while being archived, or the archive does not verify. The original is
        then left in place.
    """
    iter_dir = Path(iter_dir)
    name = iter_dir.name.removeprefix(DELETING_PREFIX)
    iter_dir = iter_dir.parent / name
    deleting = iter_dir.parent / f"{DELETING_PREFIX}{name}"
    archive_dir = archive_path_for(iter_dir, archive_root).parent
    with _lock(archive_dir, name):
        _remove_orphans(archive_dir, name)
        finished = _finish_pending(deleting, archive_dir, name) if deleting.exists() else None
        if not iter_dir.exists():
            if finished is not None:
                return finished
            good = [a for a in archives_of(archive_dir, name) if not verify_archive(a)]
            if good:
                return good[0]  # already archived and removed
            raise ArchiveError(f"{iter_dir} does not exist and no archive of {name} in {archive_dir} verifies")
        if not (iter_dir / MANIFEST_NAME).is_file():
            raise ArchiveError(
                f"{iter_dir} has no manifest (incomplete or in flight); not archived"
            )
        problems = verify_manifest(iter_dir)
        if problems:
            raise ArchiveError(
                f"{iter_dir} does not match its manifest, left in place: {'; '.join(problems)}"
            )
        inventory = _inventory(iter_dir)
        archive = _archive_for(iter_dir, archive_dir, name, inventory)
        problems = verify_archive(archive, inventory)
        if problems:
            raise ArchiveError(
                f"archive {archive} does not verify, {iter_dir} left in place: {'; '.join(problems)}"
            )
        os.rename(iter_dir, deleting)
        fsync_dir(iter_dir.parent)
        try:
            after = _inventory(deleting)
        except ArchiveError as e:
            after = {"<unarchivable entry>": (str(e), -1)}
        # verified once more right before the originals go: the directory still holds what
        # was archived, and the archive under its final name still holds it too
        problems = [] if after == inventory else ["the directory changed"]
        problems = problems or verify_archive(archive, inventory)
        if problems:
            os.rename(deleting, iter_dir)
            fsync_dir(iter_dir.parent)
            if problems == ["the directory changed"]:
                raise ArchiveError(
                    f"{iter_dir} changed while it was being archived; left in place, rerun to retry"
                )
            raise ArchiveError(
                f"archive {archive} no longer verifies, {iter_dir} left in place: {'; '.join(problems)}"
            )
        _finish_removal(deleting)
        _log.info(
            "archived {} to {} ({} files verified) and removed the original",
            iter_dir,
            archive,
            len(inventory),
        )
        return archive


def _archive_for(iter_dir: Path, archive_dir: Path, name: str, inventory: Inventory) -> Path:
    """An archive holding exactly ``inventory``: reused if one exists, else written under
    the first free name. Nothing is ever overwritten."""
    for candidate in _candidate_names(name, inventory):
        path = archive_dir / candidate
        if not path.exists():
            _pack_atomically(path, iter_dir, overwrite=False)
            return path
        other = verify_archive(path, inventory)
        if not other:
            return path
        _log.warning(
            "archive {} holds something else ({}); it is kept, {} goes to a new name",
            path,
            other[0],
            iter_dir,
        )
    raise AssertionError("unreachable")  # pragma: no cover - the name generator is endless


def _pack_atomically(archive: Path, iter_dir: Path, *, overwrite: bool) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(archive, lambda tmp: _pack(tmp, iter_dir), overwrite=overwrite)


def _covers(archive: Path, remains: Inventory) -> list[str]:
    """Problems unless ``archive`` verifies and holds every file in ``remains`` as it is."""
    problems = verify_archive(archive)
    if problems:
        return problems
    found, _ = _read_archive(archive, iteration_of_archive(archive))
    return [
        f"{archive.name}: {rel} is not in it as it is on disk"
        for rel in sorted(remains)
        if found.get(rel) != remains[rel]
    ]


def _finish_pending(deleting: Path, archive_dir: Path, name: str) -> Path:
    """Finish an interrupted removal: remove ``deleting`` once an archive covers it."""
    try:
        remains = _inventory(deleting)
    except ArchiveError as e:
        raise ArchiveError(f"{deleting} is an interrupted removal holding odd entries ({e}); left for inspection") from e
    why = []
    for archive in archives_of(archive_dir, name):
        problems = _covers(archive, remains)
        if not problems:
            _finish_removal(deleting)
            _log.info("finished the interrupted removal of {} (archive {} verified)", deleting, archive)
            return archive
        why.append(problems[0])
    raise ArchiveError(
        f"{deleting} is an interrupted removal but no archive of {name} verifies and holds its files "
        f"({'; '.join(why) or 'no archive'}); the remains are left for inspection"
    )


def _remove_orphans(archive_dir: Path, name: str) -> list[Path]:
    """Remove temp files of interrupted packings of ``name``; call with its lock held."""
    removed = []
    try:
        entries = list(archive_dir.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        m = _TMP_ARCHIVE.fullmatch(entry.name)
        if not m:
            continue
        try:
            if iteration_of_archive(m["name"]) != name:
                continue
        except ArchiveError:
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry)
        _log.info("removed {}, left by an interrupted archiving of {}", entry, name)
    return removed


def sweep_orphans(archive_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove the temp files interrupted archivings left in ``archive_dir`` (those of an
    iteration being archived right now by another process are left alone)."""
    archive_dir = Path(archive_dir)
    names = set()
    try:
        entries = list(archive_dir.iterdir())
    except FileNotFoundError:
        return []
    for entry in entries:
        m = _TMP_ARCHIVE.fullmatch(entry.name)
        if m:
            try:
                names.add(iteration_of_archive(m["name"]))
            except ArchiveError:
                continue
    removed: list[Path] = []
    for name in sorted(names):
        try:
            with _lock(archive_dir, name):
                removed += _remove_orphans(archive_dir, name)
        except ArchiveError:
            continue  # being archived now: its temp file is in use
    return removed


def rotate(
    scenario_dir: str | os.PathLike[str],
    archive_root: str | os.PathLike[str],
    keep: int = 3,
    protected: Iterable[str | os.PathLike[str]] | None = None,
) -> list[RotationAction]:
    """Finish interrupted removals, then archive every iteration :func:`plan_rotation`
    names. One failure does not stop the others; check ``RotationAction.failed``."""
    scenario_dir = Path(scenario_dir)
    protected_names = _names(protected)
    actions: list[RotationAction] = []
    sweep_orphans(Path(archive_root) / scenario_dir.name)
    for leftover in pending_removals(scenario_dir):
        name = leftover.name.removeprefix(DELETING_PREFIX)
        actions.append(_attempt(scenario_dir / name, archive_root, "finished_removal"))
    for it in plan_rotation(scenario_dir, keep, protected_names):
        actions.append(_attempt(it, archive_root, "archived"))
    return actions


def _attempt(iter_dir: Path, archive_root: str | os.PathLike[str], action: str) -> RotationAction:
    try:
        archive = archive_iteration(iter_dir, archive_root)
    except (ArchiveError, OSError) as e:
        _log.error("could not archive {}: {}", iter_dir, e)
        return RotationAction(iter_dir.name, "failed", None, f"{type(e).__name__}: {e}")
    return RotationAction(iter_dir.name, action, str(archive), "archive verified, original removed")


# ---- restoring -------------------------------------------------------------------------


def restore_iteration(
    archive_path: str | os.PathLike[str], dest_parent: str | os.PathLike[str]
) -> Path:
    """Unpack an archive into ``dest_parent/<iter-NNNN>``, bit-identical to the original.

    Files are written to a hidden temporary directory, checked against the archived
    manifest, and only then renamed into place. Member names are checked (no absolute
    paths, no ``..``, regular files and directories only).

    :raises FileExistsError: when ``dest_parent/<iter-NNNN>`` exists.
    :raises ArchiveError: when the archive is unreadable or its content fails the manifest.
    """
    archive_path = Path(archive_path)
    name = iteration_of_archive(archive_path)
    dest_parent = Path(dest_parent)
    dest = dest_parent / name
    if dest.exists():
        raise FileExistsError(f"{dest} exists; restore elsewhere or move it away first")
    dest_parent.mkdir(parents=True, exist_ok=True)
    staging = dest_parent / f".tmp-restore-{secrets.token_hex(4)}-{name}"
    staging.mkdir()
    try:
        try:
            with tarfile.open(archive_path, mode="r:gz") as tar:
                for member in tar:
                    rel = _member_rel(member, name)
                    target = staging / name if rel is None else staging / name / rel
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(member)
                    if src is None:
                        raise ArchiveError(f"archive member {member.name!r} has no data")
                    with open(target, "xb") as out:
                        shutil.copyfileobj(src, out, _CHUNK)
                        out.flush()
                        os.fsync(out.fileno())
                    os.chmod(target, member.mode & 0o777)
                    os.utime(target, (member.mtime, member.mtime))
        except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as e:
            raise ArchiveError(f"{archive_path} is unreadable: {type(e).__name__}: {e}") from e
        problems = verify_manifest(staging / name)
        if problems:
            raise ArchiveError(
                f"restored {name} does not match its manifest: {'; '.join(problems)}"
            )
        if dest.exists():
            raise FileExistsError(
                f"{dest} appeared while restoring; the restored copy was discarded"
            )
        os.rename(staging / name, dest)
        fsync_dir(dest_parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = read_json(dest / MANIFEST_NAME)
    _log.info(
        "restored {} from {} ({} manifest files verified)",
        dest,
        archive_path,
        len(manifest["files"]),
    )
    return dest
