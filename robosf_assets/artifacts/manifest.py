"""Manifests and provenance: what produced an artefact directory and what it holds.

Every artefact directory holds a ``manifest.json``: what produced it (config, seeds, git
revision, package versions, host), what it holds (each file's size and sha256) and how
long it took. :func:`verify_manifest` checks a directory against its manifest.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robosf_assets.artifacts.atomic import atomic_write_json, is_temp_name, iso_utc, read_json, to_jsonable
from robosf_assets.artifacts.layout import LOCK_NAME, MANIFEST_NAME, REPO_ROOT

__all__ = [
    "DEFAULT_PACKAGES",
    "MANIFEST_SCHEMA_VERSION",
    "build_manifest",
    "git_revision",
    "package_versions",
    "sha256_file",
    "verify_manifest",
    "write_manifest",
]

MANIFEST_SCHEMA_VERSION = 1
# Packages whose versions every manifest records.
DEFAULT_PACKAGES: tuple[str, ...] = (
    "numpy",
    "torch",
    "gymnasium",
    "stable-baselines3",
    "imitation",
    "dagster",
    "numba",
)
_CHUNK = 1 << 20  # bytes read per sha256 update


# ------------------------------------------------------------------------ checksums


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------- provenance


def git_revision(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """Commit sha of the checkout at ``cwd``, plus ``-dirty`` if tracked files changed.

    Untracked files do not make the tree dirty (as with ``git describe --dirty``).

    :param cwd: any directory inside the checkout; default the repository holding this
        package.
    :return: ``None`` outside a git checkout, before the first commit, or when git is
        missing or fails. Never raises.
    """
    where = Path(cwd) if cwd is not None else REPO_ROOT

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=where,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    sha = git("rev-parse", "--verify", "--quiet", "HEAD")
    if not sha:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    if status is None:
        return sha
    return f"{sha}-dirty" if status else sha


def package_versions(names: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution, ``None`` for those not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _host_info() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "pid": os.getpid(),
    }


# ------------------------------------------------------------------------ manifests


def _relative_inside(path: Path, artifact_dir: Path) -> str:
    full = path if path.is_absolute() else artifact_dir / path
    try:
        rel = full.resolve().relative_to(artifact_dir.resolve())
    except ValueError:
        raise ValueError(f"manifest file {path} is not inside {artifact_dir}") from None
    return rel.as_posix()


def _collect_files(artifact_dir: Path) -> list[str]:
    """Regular files below ``artifact_dir`` (not following symlinks), skipping temp names,
    the top-level manifest and a run lock."""
    rels = []
    for dirpath, dirnames, filenames in os.walk(artifact_dir):
        dirnames[:] = [d for d in dirnames if not is_temp_name(d)]
        for name in filenames:
            full = Path(dirpath) / name
            if is_temp_name(name) or full.is_symlink() or not full.is_file():
                continue
            rel = full.relative_to(artifact_dir).as_posix()
            if rel not in (MANIFEST_NAME, LOCK_NAME):
                rels.append(rel)
    return rels


def build_manifest(
    *,
    kind: str,
    partition: str | None,
    config: Any,
    seeds: Mapping[str, Any] | list[Any],
    artifact_dir: str | os.PathLike[str],
    files: Iterable[str | os.PathLike[str]] | None = None,
    started_at: float,
    run_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Describe an artefact directory: what produced it and what it holds.

    :param kind: artefact kind (the asset name).
    :param partition: partition key, or ``None`` for unpartitioned assets.
    :param config: the validated config (dict, dataclass or pydantic model).
    :param seeds: every seed used, by name or as a list.
    :param artifact_dir: the directory the manifest describes.
    :param files: files to list, absolute or relative to ``artifact_dir``. Default: every
        regular file below ``artifact_dir`` (recursively, skipping temp files and the
        top-level ``manifest.json``).
    :param started_at: ``time.time()`` when the work began; gives ``wall_time_s``.
    :param run_id: the run id, if any (e.g. the Dagster run id).
    :param extra: more top-level keys (e.g. metrics); may not shadow the standard keys.
    :return: a JSON-ready dict; ``files`` is ``[{"path", "sha256", "bytes"}]`` sorted by
        path.
    """
    now = time.time()
    artifact_dir = Path(artifact_dir)
    if not artifact_dir.is_dir():
        raise NotADirectoryError(f"artifact_dir {artifact_dir} is not a directory")
    if files is None:
        rels = _collect_files(artifact_dir)
    else:
        rels = [_relative_inside(Path(f), artifact_dir) for f in files]
    entries = []
    for rel in sorted(set(rels)):
        full = artifact_dir / rel
        if not full.is_file():
            raise FileNotFoundError(f"manifest file {full} does not exist or is not a file")
        entries.append({"path": rel, "sha256": sha256_file(full), "bytes": full.stat().st_size})

    manifest: dict[str, Any] = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "kind": kind,
        "partition": partition,
        "run_id": run_id,
        "created_at": iso_utc(now),
        "started_at": iso_utc(started_at),
        "wall_time_s": round(now - started_at, 3),
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "host": _host_info(),
        "config": config,
        "seeds": seeds,
        "files": entries,
    }
    if extra:
        clash = sorted(set(extra) & set(manifest))
        if clash:
            raise ValueError(f"manifest extra keys {clash} would shadow standard keys")
        manifest.update(extra)
    return to_jsonable(manifest)


def write_manifest(artifact_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Write ``artifact_dir/manifest.json`` atomically; an existing manifest is never
    replaced (:class:`FileExistsError`)."""
    return atomic_write_json(Path(artifact_dir) / MANIFEST_NAME, manifest)


def verify_manifest(artifact_dir: str | os.PathLike[str]) -> list[str]:
    """Check ``artifact_dir`` against its manifest.

    :return: one human-readable line per problem: missing or unreadable manifest, a listed
        file that is missing, has another size or another sha256, or an entry that points
        outside the directory. Files on disk that the manifest does not list are not
        problems. An empty list means everything matches.
    """
    artifact_dir = Path(artifact_dir)
    manifest_path = artifact_dir / MANIFEST_NAME
    try:
        manifest = read_json(manifest_path)
    except FileNotFoundError:
        return [f"{manifest_path}: manifest missing"]
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return [f"{manifest_path}: manifest unreadable: {e}"]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return [f"{manifest_path}: manifest has no 'files' list"]

    problems: list[str] = []
    root = artifact_dir.resolve()
    for i, entry in enumerate(manifest["files"]):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("path"), str)
            and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("bytes"), int)
        ):
            problems.append(f"{manifest_path}: files[{i}] is malformed: {entry!r}")
            continue
        rel = entry["path"]
        full = artifact_dir / rel
        try:
            full.resolve().relative_to(root)
        except ValueError:
            problems.append(f"{rel}: listed path points outside {artifact_dir}")
            continue
        if not full.exists():
            problems.append(f"{rel}: missing")
            continue
        if not full.is_file():
            problems.append(f"{rel}: not a regular file")
            continue
        try:
            size = full.stat().st_size
            if size != entry["bytes"]:
                problems.append(
                    f"{rel}: size mismatch: manifest says {entry['bytes']} bytes, found {size}"
                )
                continue
            digest = sha256_file(full)
        except OSError as e:
            problems.append(f"{rel}: unreadable: {e}")
            continue
        if digest != entry["sha256"]:
            problems.append(
                f"{rel}: checksum mismatch: manifest says sha256 {entry['sha256'][:12]}..., "
                f"found {digest[:12]}..."
            )
    return problems
