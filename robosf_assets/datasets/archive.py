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

Packing, verifying and restoring archives is :mod:`.packing`; its public names are
re-exported here.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from robosf_assets.artifacts import MANIFEST_NAME, fsync_dir, list_iterations, verify_manifest
from robosf_assets.datasets.packing import (
    ARCHIVE_SUFFIX,
    TMP_ARCHIVE_NAME,
    ArchiveError,
    Inventory,
    archives_of,
    candidate_names,
    file_inventory,
    iteration_of_archive,
    pack_atomically,
    read_archive,
    restore_iteration,
    verify_archive,
)
from robosf_assets.logs import get_logger

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

DELETING_PREFIX = ".deleting-"


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
        inventory = file_inventory(iter_dir)
        archive = _archive_for(iter_dir, archive_dir, name, inventory)
        problems = verify_archive(archive, inventory)
        if problems:
            raise ArchiveError(
                f"archive {archive} does not verify, {iter_dir} left in place: {'; '.join(problems)}"
            )
        os.rename(iter_dir, deleting)
        fsync_dir(iter_dir.parent)
        try:
            after = file_inventory(deleting)
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
    for candidate in candidate_names(name, inventory):
        path = archive_dir / candidate
        if not path.exists():
            pack_atomically(path, iter_dir, overwrite=False)
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


def _covers(archive: Path, remains: Inventory) -> list[str]:
    """Problems unless ``archive`` verifies and holds every file in ``remains`` as it is."""
    problems = verify_archive(archive)
    if problems:
        return problems
    found, _ = read_archive(archive, iteration_of_archive(archive))
    return [
        f"{archive.name}: {rel} is not in it as it is on disk"
        for rel in sorted(remains)
        if found.get(rel) != remains[rel]
    ]


def _finish_pending(deleting: Path, archive_dir: Path, name: str) -> Path:
    """Finish an interrupted removal: remove ``deleting`` once an archive covers it."""
    try:
        remains = file_inventory(deleting)
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
        m = TMP_ARCHIVE_NAME.fullmatch(entry.name)
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
        m = TMP_ARCHIVE_NAME.fullmatch(entry.name)
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
