"""Artefacts on disk: the ``output/`` layout, atomic writes, locks, manifests and checksums.

Every file the project produces goes through this package, so the rules hold in one place.
Each concern has its own module; this one re-exports their public names, so callers write
``from robosf_assets.artifacts import atomic_write_json``:

- :mod:`.atomic`: a file is written to a temporary name in its final directory, fsynced
  and renamed into place; it is never replaced unless the caller says ``overwrite=True``.
  The project's JSON (sorted keys, indent 2) lives here too.
- :mod:`.layout`: ``output/<kind>/<partition>/<run-id>/iter-NNNN/``; run and iteration
  directories are claimed with an exclusive ``os.mkdir``; the reserved file names.
- :mod:`.locks`: a resumable run directory is held with an OS lock (``flock``) that dies
  with its process, so a killed run's directory is free for the retry at once and two
  live processes can never both hold it. :func:`resumable_run_dir` and
  :func:`held_run_dir` release it when their block ends, however it ends.
- :mod:`.manifest`: every artefact directory holds a ``manifest.json`` (config, seeds, git
  revision, package versions, host, each file's size and sha256, wall time);
  :func:`verify_manifest` checks a directory against it.

This package is core library: it imports neither Dagster nor torch.
"""

from __future__ import annotations

from robosf_assets.artifacts.atomic import (
    atomic_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    dumps_json,
    fsync_dir,
    is_temp_name,
    iso_utc,
    read_json,
    remove_temp_files,
    to_jsonable,
)
from robosf_assets.artifacts.layout import (
    ABANDONED_NAME,
    LOCK_NAME,
    MANIFEST_NAME,
    REPO_ROOT,
    RUN_KEY_NAME,
    check_component,
    list_iterations,
    new_run_dir,
    new_run_id,
    next_iteration_dir,
    output_root,
)
from robosf_assets.artifacts.locks import (
    abandon_run_dir,
    held_run_dir,
    holds_run_dir,
    open_resumable_run_dir,
    release_run_dir,
    resumable_run_dir,
)
from robosf_assets.artifacts.manifest import (
    DEFAULT_PACKAGES,
    MANIFEST_SCHEMA_VERSION,
    build_manifest,
    git_revision,
    package_versions,
    sha256_file,
    verify_manifest,
    write_manifest,
)

__all__ = [
    "ABANDONED_NAME",
    "DEFAULT_PACKAGES",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "MANIFEST_SCHEMA_VERSION",
    "REPO_ROOT",
    "RUN_KEY_NAME",
    "abandon_run_dir",
    "atomic_save",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "build_manifest",
    "check_component",
    "dumps_json",
    "fsync_dir",
    "git_revision",
    "held_run_dir",
    "holds_run_dir",
    "is_temp_name",
    "iso_utc",
    "list_iterations",
    "new_run_dir",
    "new_run_id",
    "next_iteration_dir",
    "open_resumable_run_dir",
    "output_root",
    "package_versions",
    "read_json",
    "release_run_dir",
    "remove_temp_files",
    "resumable_run_dir",
    "sha256_file",
    "to_jsonable",
    "verify_manifest",
    "write_manifest",
]
