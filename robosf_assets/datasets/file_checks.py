"""Dataset checks of the files and of what the manifest claims: ``manifest``,
``checksums``, ``npz``, ``episodes_jsonl``, ``metadata`` and ``content``.

Each takes the :class:`~robosf_assets.datasets.integrity.ValidationState` of one
validation and returns a :class:`~robosf_assets.datasets.integrity.CheckResult`; the
order they run in and what each needs from the others is in
:func:`robosf_assets.datasets.validate.validate_dataset`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from robosf_assets.artifacts import MANIFEST_NAME, read_json, verify_manifest
from robosf_assets.benchmark.episodes import read_episodes_jsonl
from robosf_assets.datasets.integrity import CheckResult, ValidationState
from robosf_assets.datasets.load import NpyStream
from robosf_assets.datasets.schema import (
    ARRAY_SPECS,
    DATASET_KIND,
    DATASET_SCHEMA_VERSION,
    EPISODES_NAME,
    MANIFEST_DIGEST_KEY,
    NULLABLE_MANIFEST_FIELDS,
    REQUIRED_MANIFEST_FIELDS,
    REQUIRED_SOURCE_FIELDS,
    TRAJECTORIES_NAME,
    array_sha256,
    manifest_digest,
)

__all__ = [
    "OBS_CHUNK_ROWS",
    "check_checksums",
    "check_content",
    "check_episodes_jsonl",
    "check_manifest",
    "check_metadata",
    "check_npz",
]

OBS_CHUNK_ROWS = 65536
"""Observation rows scanned per chunk."""
_SMALL_ARRAYS = tuple(n for n in ARRAY_SPECS if n != "observations")


def check_manifest(v: ValidationState) -> CheckResult:
    path = v.iter_dir / MANIFEST_NAME
    try:
        manifest = read_json(path)
    except FileNotFoundError:
        return CheckResult(
            "manifest",
            False,
            "missing",
            [
                f"manifest: {MANIFEST_NAME} is missing (the iteration never committed, or it was removed)"
            ],
        )
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return CheckResult(
            "manifest", False, "unreadable", [f"manifest: {MANIFEST_NAME} unreadable: {e}"]
        )
    if not isinstance(manifest, dict):
        return CheckResult(
            "manifest",
            False,
            "not an object",
            [f"manifest: {MANIFEST_NAME} is a JSON {type(manifest).__name__}, not an object"],
        )
    v.manifest = manifest
    reasons = []
    stored = manifest.get(MANIFEST_DIGEST_KEY)
    if not isinstance(stored, str):
        reasons.append(f"manifest: no {MANIFEST_DIGEST_KEY} field, so edits cannot be detected")
    elif stored != manifest_digest(manifest):
        reasons.append(
            f"manifest: {MANIFEST_DIGEST_KEY} does not match the manifest's content "
            "(manifest.json was edited after recording)"
        )
    if manifest.get("dataset_schema_version") != DATASET_SCHEMA_VERSION:
        reasons.append(
            f"manifest: dataset_schema_version {manifest.get('dataset_schema_version')!r} is not "
            f"the supported {DATASET_SCHEMA_VERSION}"
        )
    if manifest.get("kind") != DATASET_KIND:
        reasons.append(f"manifest: kind {manifest.get('kind')!r} is not {DATASET_KIND!r}")
    return CheckResult(
        "manifest", not reasons, "ok" if not reasons else "manifest problems", reasons
    )


def check_checksums(v: ValidationState) -> CheckResult:
    if v.manifest is None:
        return CheckResult(
            "checksums",
            False,
            "no manifest to check against",
            ["checksums: cannot verify file checksums without a readable manifest"],
        )
    reasons = [f"checksums: {p}" for p in verify_manifest(v.iter_dir)]
    files = v.manifest.get("files")
    listed = (
        {f.get("path") for f in files if isinstance(f, dict)} if isinstance(files, list) else set()
    )
    for required in (TRAJECTORIES_NAME, EPISODES_NAME):
        if required not in listed:
            reasons.append(
                f"checksums: {required} is not listed in the manifest, so it is not protected"
            )
    return CheckResult("checksums", not reasons, f"{len(listed)} files listed", reasons)


def check_npz(v: ValidationState) -> CheckResult:
    path = v.iter_dir / TRAJECTORIES_NAME
    if not path.is_file():
        return CheckResult("npz", False, "missing", [f"npz: {TRAJECTORIES_NAME} is missing"])
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return CheckResult(
            "npz",
            False,
            "not a readable zip",
            [f"npz: {TRAJECTORIES_NAME} is truncated or corrupt: {type(e).__name__}: {e}"],
        )
    reasons = []
    with zf:
        members = set(zf.namelist())
        for name in ARRAY_SPECS:
            if f"{name}.npy" not in members:
                reasons.append(f"npz: array {name!r} is missing from {TRAJECTORIES_NAME}")
                continue
            try:
                if name == "observations":
                    v.obs_info = _observations_header(zf)
                else:
                    with zf.open(f"{name}.npy") as fh:
                        v.arrays[name] = np.lib.format.read_array(fh, allow_pickle=False)
            except Exception as e:
                reasons.append(
                    f"npz: array {name!r} is unreadable (truncated or corrupt): {type(e).__name__}: {e}"
                )
    if not reasons:
        # The observations are checked for CRC and values while scanned (see scan_observations).
        v.obs_chunks = lambda: _iter_observation_chunks(v.iter_dir / TRAJECTORIES_NAME)
    return CheckResult("npz", not reasons, f"{len(members)} members", reasons)


def _observations_header(zf: zipfile.ZipFile) -> dict[str, Any]:
    stream = NpyStream(zf, "observations")
    try:
        return {"shape": stream.shape, "dtype": stream.dtype}
    finally:
        stream.close()


def _iter_observation_chunks(path: Path):
    with zipfile.ZipFile(path) as zf:
        stream = NpyStream(zf, "observations")
        try:
            rows = stream.shape[0]
            done = 0
            while done < rows:
                n = min(OBS_CHUNK_ROWS, rows - done)
                yield done, stream.read_rows(n)
                done += n
            # Reading to the end makes zipfile verify the member's CRC-32.
            if not stream.at_end():
                raise ValueError("observations member holds bytes beyond its declared shape")
        finally:
            stream.close()


def check_episodes_jsonl(v: ValidationState) -> CheckResult:
    path = v.iter_dir / EPISODES_NAME
    if not path.is_file():
        return CheckResult(
            "episodes_jsonl", False, "missing", [f"episodes_jsonl: {EPISODES_NAME} is missing"]
        )
    try:
        records = read_episodes_jsonl(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return CheckResult("episodes_jsonl", False, "unreadable", [f"episodes_jsonl: {e}"])
    reasons = []
    lengths = v.arrays.get("episode_lengths")
    if lengths is not None and len(records) != len(lengths):
        reasons.append(f"episodes_jsonl: {len(records)} records for {len(lengths)} episodes")
    elif lengths is not None:
        stored = [r.get("length") for r in records]
        bad = [k for k, (s, n) in enumerate(zip(stored, lengths.tolist(), strict=True)) if s != n]
        if bad:
            reasons.append(
                f"episodes_jsonl: {len(bad)} records disagree with episode_lengths (first: episode {bad[0]})"
            )
    seeds = (v.manifest or {}).get("seeds") or {}
    seed_list = seeds.get("episode_seeds") if isinstance(seeds, dict) else None
    if isinstance(seed_list, list) and [r.get("seed") for r in records] != seed_list:
        reasons.append("episodes_jsonl: record seeds differ from the manifest's episode_seeds")
    return CheckResult("episodes_jsonl", not reasons, f"{len(records)} records", reasons)


def check_metadata(v: ValidationState) -> CheckResult:
    m = v.manifest or {}
    reasons = []
    missing = [k for k in REQUIRED_MANIFEST_FIELDS if k not in m]
    if missing:
        reasons.append(f"metadata: manifest lacks required fields {missing}")
    nulls = [
        k
        for k in REQUIRED_MANIFEST_FIELDS
        if k in m and m[k] is None and k not in NULLABLE_MANIFEST_FIELDS
    ]
    if nulls:
        reasons.append(f"metadata: manifest fields {nulls} are null")
    source = m.get("source")
    if isinstance(source, dict):
        lacking = [k for k in REQUIRED_SOURCE_FIELDS if not source.get(k)]
        if lacking:
            reasons.append(f"metadata: source lacks {lacking} (which expert produced the data?)")
    elif "source" in m:
        reasons.append("metadata: source is not an object")
    if "iteration" in m and m["iteration"] != _iteration_number(v.iter_dir.name):
        reasons.append(
            f"metadata: manifest iteration {m['iteration']!r} does not match directory "
            f"{v.iter_dir.name}"
        )
    if "scenario" in m and m.get("partition") not in (None, m["scenario"]):
        reasons.append(
            f"metadata: partition {m['partition']!r} differs from scenario {m['scenario']!r}"
        )
    a = v.arrays
    if (
        "episode_lengths" in a
        and "n_episodes" in m
        and m["n_episodes"] != len(a["episode_lengths"])
    ):
        reasons.append(
            f"metadata: manifest n_episodes {m['n_episodes']!r}, arrays hold {len(a['episode_lengths'])}"
        )
    if "actions" in a and "n_transitions" in m and m["n_transitions"] != len(a["actions"]):
        reasons.append(
            f"metadata: manifest n_transitions {m['n_transitions']!r}, arrays hold {len(a['actions'])}"
        )
    if v.obs_info and "observation_dim" in m and m["observation_dim"] != v.obs_info["shape"][1]:
        reasons.append(
            f"metadata: manifest observation_dim {m['observation_dim']!r}, observations have "
            f"{v.obs_info['shape'][1]} features"
        )
    seeds = m.get("seeds")
    seed_list = seeds.get("episode_seeds") if isinstance(seeds, dict) else None
    if not isinstance(seed_list, list):
        reasons.append("metadata: seeds.episode_seeds is missing")
    elif "episode_lengths" in a and len(seed_list) != len(a["episode_lengths"]):
        reasons.append(
            f"metadata: {len(seed_list)} episode seeds for {len(a['episode_lengths'])} episodes"
        )
    return CheckResult(
        "metadata",
        not reasons,
        "complete" if not reasons else "incomplete or inconsistent",
        reasons,
    )


def _iteration_number(name: str) -> int | None:
    try:
        return int(name.rsplit("-", 1)[-1])
    except ValueError:
        return None


def check_content(v: ValidationState) -> CheckResult:
    declared = (v.manifest or {}).get("arrays")
    if not isinstance(declared, dict):
        return CheckResult(
            "content", False, "no array digests", ["content: manifest has no 'arrays' entry"]
        )
    digests = dict(v.array_digests)
    for name in _SMALL_ARRAYS:
        digests[name] = array_sha256(v.arrays[name])
    reasons = []
    for name in ARRAY_SPECS:
        entry = declared.get(name)
        if not isinstance(entry, dict) or "sha256" not in entry:
            reasons.append(f"content: manifest has no sha256 for array {name!r}")
        elif name not in digests:
            continue  # observations unreadable: reported by 'finite'
        elif entry["sha256"] != digests[name]:
            reasons.append(
                f"content: array {name!r} differs from the recorded one (sha256 mismatch)"
            )
    return CheckResult(
        "content", not reasons, "arrays match the manifest" if not reasons else "mismatch", reasons
    )
