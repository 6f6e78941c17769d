"""The comparison report's I/O: reading the run directories' curves into
:class:`~robosf_assets.benchmark.report_inputs.ComparisonInputs`, and writing
:data:`REPORT_FILES` atomically (never overwriting). Everything else is pure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robosf_assets.artifacts import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    read_json,
    sha256_file,
)
from robosf_assets.benchmark.report_inputs import ComparisonInputs, CurveRows, inputs_block
from robosf_assets.benchmark.report_markdown import render_markdown
from robosf_assets.benchmark.report_plots import success_curves_png, time_to_threshold_png
from robosf_assets.training.curves import CURVE_NAME, read_curve

__all__ = ["REPORT_FILES", "load_inputs_from_dirs", "write_report"]

REPORT_FILES: tuple[str, ...] = (
    "report.json",
    "report.md",
    "success_curves.png",
    "time_to_threshold.png",
)
"""Files :func:`write_report` writes, in order."""


def _manifest_seed(manifest: Any) -> int | None:
    """The run seed a run manifest records (``seeds.run_seed`` / ``seeds.seed`` /
    ``config.seed``), or ``None`` if it records none."""
    if not isinstance(manifest, Mapping):
        return None
    seeds, config = manifest.get("seeds"), manifest.get("config")
    for holder, key in ((seeds, "run_seed"), (seeds, "seed"), (config, "seed")):
        if isinstance(holder, Mapping) and isinstance(holder.get(key), int):
            return int(holder[key])
    return None


def load_inputs_from_dirs(
    scenario: str,
    finetuned_dirs: Mapping[int, str | os.PathLike[str]],
    baseline_dirs: Mapping[int, str | os.PathLike[str]],
    demo_transitions: int,
    expert_steps: int,
    **kwargs: Any,
) -> ComparisonInputs:
    """Read each run's ``curve.jsonl`` into :class:`ComparisonInputs`.

    A run directory holding a ``manifest.json`` that records another seed than its key is
    refused, so arms cannot be silently mismatched.

    :param scenario: scenario name.
    :param finetuned_dirs: seed -> run directory of the fine-tuned arm.
    :param baseline_dirs: seed -> run directory of the baseline arm.
    :param demo_transitions: transitions in the demonstration dataset used for BC.
    :param expert_steps: the expert's training steps.
    :param kwargs: the remaining :class:`ComparisonInputs` settings (thresholds, ``k``,
        ``hold_fraction``, ``ratio_target``, ``statistic``, ``n_resamples``, ``seed``, ``min_seeds``).
    :return: the inputs, with ``run_dirs`` (absolute) and ``curve_sha256`` filled in.
    """
    curves: dict[str, dict[int, CurveRows]] = {}
    run_dirs: dict[str, dict[int, str]] = {}
    shas: dict[str, dict[int, str]] = {}
    for arm, dirs in (("finetuned", finetuned_dirs), ("baseline", baseline_dirs)):
        curves[arm], run_dirs[arm], shas[arm] = {}, {}, {}
        for seed, run_dir in sorted(dirs.items()):
            run_dir = Path(run_dir).resolve()
            path = run_dir / CURVE_NAME
            if not path.is_file():
                raise FileNotFoundError(f"{arm} seed {seed}: no {CURVE_NAME} in {run_dir}")
            manifest_path = run_dir / "manifest.json"
            if manifest_path.is_file():
                recorded = _manifest_seed(read_json(manifest_path))
                if recorded is not None and recorded != int(seed):
                    raise ValueError(
                        f"{arm} seed {seed}: {manifest_path} records seed {recorded}; "
                        "pass each run directory under its own seed"
                    )
            rows = read_curve(path)
            if not rows:
                raise ValueError(f"{arm} seed {seed}: {path} has no evaluation rows")
            curves[arm][int(seed)] = rows
            run_dirs[arm][int(seed)] = run_dir.as_posix()
            shas[arm][int(seed)] = sha256_file(path)
    return ComparisonInputs(
        scenario=scenario,
        finetuned=curves["finetuned"],
        baseline=curves["baseline"],
        demo_transitions=demo_transitions,
        expert_steps=expert_steps,
        run_dirs=run_dirs,
        curve_sha256=shas,
        **kwargs,
    )


def write_report(
    out_dir: str | os.PathLike[str], inputs: ComparisonInputs, result: Mapping[str, Any]
) -> list[Path]:
    """Write :data:`REPORT_FILES` into ``out_dir`` atomically; never overwrite.

    :param out_dir: the report directory (e.g. ``output/reports/<scenario>/<run-id>/``);
        created if missing.
    :param inputs: the inputs ``result`` was computed from; must come from
        :func:`load_inputs_from_dirs` so the report records where its curves live.
    :param result: :func:`~robosf_assets.benchmark.report.compare` ``(inputs)``.
    :return: paths of report.json, report.md, success_curves.png, time_to_threshold.png.
    :raises FileExistsError: if any of the four files exists (nothing is written).
    :raises ValueError: if ``inputs`` has no run directories or ``result`` was computed
        from other inputs.
    """
    out_dir = Path(out_dir)
    if inputs.run_dirs is None:
        raise ValueError(
            "inputs carry no run directories, so the report could not be recomputed; "
            "build them with load_inputs_from_dirs"
        )
    if result.get("inputs") != inputs_block(inputs):
        raise ValueError("result was not computed from these inputs; call compare(inputs)")
    paths = [out_dir / name for name in REPORT_FILES]
    taken = [p.name for p in paths if os.path.lexists(p)]
    if taken:
        raise FileExistsError(f"{out_dir} already holds {taken}; write a report to a new directory")
    markdown = render_markdown(result)
    curves_png, ttt_png = success_curves_png(result), time_to_threshold_png(result)
    atomic_write_json(paths[0], result)
    atomic_write_text(paths[1], markdown)
    atomic_write_bytes(paths[2], curves_png)
    atomic_write_bytes(paths[3], ttt_png)
    return paths
