"""Iteration archives: deterministic packing, full read-back verification, restoring.

An archive is ``<iteration>.tar.gz`` (or ``<iteration>-<12 hex>[-<n>].tar.gz``, named by
its content, when that name is taken: see :mod:`.archive`). Bytes are deterministic:
sorted members, fixed gzip header. :func:`verify_archive` reads an archive back in full
against its manifest and, optionally, against the directory it was made from;
:func:`restore_iteration` unpacks one bit-identical to the original. The rotation that
uses these (pack, verify, and only then remove) is :mod:`.archive`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import secrets
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from robosf_assets.artifacts import (
    MANIFEST_NAME,
    atomic_save,
    fsync_dir,
    is_temp_name,
    read_json,
    verify_manifest,
)
from robosf_assets.logs import get_logger

__all__ = [
    "ARCHIVE_SUFFIX",
    "GZIP_LEVEL",
    "TMP_ARCHIVE_NAME",
    "ArchiveError",
    "Inventory",
    "archives_of",
    "candidate_names",
    "file_inventory",
    "iteration_of_archive",
    "pack_atomically",
    "read_archive",
    "restore_iteration",
    "verify_archive",
]

_log = get_logger("datasets.archive")

ARCHIVE_SUFFIX = ".tar.gz"
GZIP_LEVEL = 1
"""The payload is mostly an already-deflated NPZ: level 1 costs little and gains as much."""
_CHUNK = 1 << 20

Inventory = dict[str, tuple[str, int]]
"""Relative POSIX path -> (sha256, bytes) of every regular file of an iteration."""


class ArchiveError(RuntimeError):
    """Archiving or restoring stopped; nothing was removed."""


# ---- names -----------------------------------------------------------------------------


_ARCHIVE_NAME = re.compile(
    r"(?P<it>[^.].*?)(?:-(?P<digest>[0-9a-f]{12})(?:-(?P<n>[0-9]+))?)?" + re.escape(ARCHIVE_SUFFIX)
)


TMP_ARCHIVE_NAME = re.compile(r"\.tmp-[0-9a-f]{8}-(?P<name>.+" + re.escape(ARCHIVE_SUFFIX) + r")")
"""A temp file of a packing in flight: ``.tmp-<8 hex>-<archive name>`` (``name`` group)."""


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


def candidate_names(name: str, inventory: Inventory) -> Iterator[str]:
    """Archive names to try for iteration ``name`` holding ``inventory``, in order: the
    plain name, then the content-named ones (endless)."""
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


def file_inventory(root: Path) -> Inventory:
    """sha256 and size of every file to archive below ``root`` (see :func:`_walk_files`)."""
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


def pack_atomically(archive: Path, iter_dir: Path, *, overwrite: bool) -> None:
    """Pack ``iter_dir`` into ``archive`` through a temp name (:func:`atomic_save`)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(archive, lambda tmp: _pack(tmp, iter_dir), overwrite=overwrite)


def _member_rel(member: tarfile.TarInfo, name: str) -> str | None:
    """The member's path below the iteration; raises on unsafe or foreign names."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != name:
        raise ArchiveError(f"archive member {member.name!r} is outside {name}/")
    if not (member.isfile() or member.isdir()):
        raise ArchiveError(f"archive member {member.name!r} is not a regular file or directory")
    return PurePosixPath(*path.parts[1:]).as_posix() if len(path.parts) > 1 else None


def read_archive(archive: Path, name: str) -> tuple[Inventory, dict[str, Any] | None]:
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
        found, manifest = read_archive(archive, name)
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
