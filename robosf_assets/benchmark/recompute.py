"""Recompute a comparison report from its saved curves and check every number.

Usage::

    python -m robosf_assets.benchmark.recompute <report-dir> [--runs-root <dir>]

Reads ``<report-dir>/report.json``, takes its ``inputs`` block (run directories of every
curve, thresholds, statistic, bootstrap resamples and seed), re-reads each run's
``curve.jsonl``, runs :func:`robosf_assets.benchmark.report.compare` again and compares
every value of the result with the stored one: both times to threshold (k in a row, and
reached and held) per run, their per-arm statistics and CIs, both ratios, the verdict,
the step countings and the curves' bands. It also checks that ``report.md`` is the
rendering of ``report.json``, and notes curves whose checksum changed since the report.
``--runs-root`` reads the curves from a copy of the run directories instead of the paths
the report recorded: run ``<output>/<stage>/<partition>/<run-id>`` is looked up as
``<runs-root>/<stage>/<partition>/<run-id>`` (how docs/results/full commits them).

Exit status: 0 every value matches; 1 some differ (each is listed); 2 the report cannot
be recomputed (no report.json, no recorded run directories, a curve missing).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robosf_assets.artifacts import read_json, sha256_file
from robosf_assets.benchmark.report import (
    ARMS,
    SCHEMA_VERSION,
    compare,
    load_inputs_from_dirs,
    render_markdown,
)
from robosf_assets.training.curves import CURVE_NAME

__all__ = ["RecomputeOutcome", "diff_values", "main", "recompute_report"]

_REL_TOL = 1e-9  # floats are stored with repr precision; allow only rounding noise
_ABS_TOL = 1e-12
_SETTINGS = ("target_success", "max_collision", "k", "hold_fraction", "ratio_target",
             "statistic", "n_resamples", "seed", "min_seeds")


class CannotRecompute(Exception):
    """The report lacks what recomputation needs (exit status 2)."""


@dataclass
class RecomputeOutcome:
    """What :func:`recompute_report` found.

    :param differences: one line per value that differs (empty: everything matches).
    :param notes: informational lines (e.g. a curve whose checksum changed).
    :param n_values: leaf values compared.
    """

    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_values: int = 0

    @property
    def ok(self) -> bool:
        """True when every value matches."""
        return not self.differences


def _same(a: Any, b: Any) -> bool:
    """Equal leaves; numbers within rounding noise, bools and strings exactly."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)
    return a == b


def diff_values(reported: Any, recomputed: Any, where: str = "") -> tuple[list[str], int]:
    """Leaf-by-leaf comparison of two JSON trees.

    :param reported: the stored value.
    :param recomputed: the freshly computed value.
    :param where: dotted path of this subtree.
    :return: ``(differences, n_leaves_compared)``.
    """
    if isinstance(reported, dict) and isinstance(recomputed, dict):
        diffs, n = [], 0
        for key in sorted(set(reported) | set(recomputed)):
            path = f"{where}.{key}" if where else str(key)
            if key not in reported or key not in recomputed:
                side = "report" if key not in reported else "recomputation"
                diffs.append(f"{path}: missing from the {side}")
                continue
            d, m = diff_values(reported[key], recomputed[key], path)
            diffs += d
            n += m
        return diffs, n
    if isinstance(reported, list) and isinstance(recomputed, list):
        if len(reported) != len(recomputed):
            return [f"{where}: report has {len(reported)} items, "
                    f"recomputed {len(recomputed)}"], 1
        diffs, n = [], 0
        for i, (a, b) in enumerate(zip(reported, recomputed, strict=True)):
            d, m = diff_values(a, b, f"{where}[{i}]")
            diffs += d
            n += m
        return diffs, n
    if _same(reported, recomputed):
        return [], 1
    return [f"{where}: report {reported!r}, recomputed {recomputed!r}"], 1


def _load_report(report_dir: Path) -> dict[str, Any]:
    path = report_dir / "report.json"
    if not path.is_file():
        raise CannotRecompute(f"{path} not found")
    report = read_json(path)
    if not isinstance(report, dict) or report.get("schema_version") != SCHEMA_VERSION:
        raise CannotRecompute(f"{path}: not a comparison report of schema {SCHEMA_VERSION}")
    inp = report.get("inputs")
    if not isinstance(inp, dict) or not inp.get("run_dirs"):
        raise CannotRecompute(f"{path}: no run directories recorded in its inputs block")
    return report


def _relocated(run_dir: Path, runs_root: Path | None) -> Path:
    if runs_root is None:
        return run_dir
    return runs_root / run_dir.parent.parent.name / run_dir.parent.name / run_dir.name


def recompute_report(report_dir: str | Path, runs_root: str | Path | None = None) -> RecomputeOutcome:
    """Recompute ``report_dir``'s report from its curves and compare it with the stored one.

    :param report_dir: a directory written by :func:`~robosf_assets.benchmark.report.write_report`.
    :param runs_root: where copies of the run directories live (see the module docstring);
        None reads the recorded paths.
    :return: the :class:`RecomputeOutcome`.
    :raises CannotRecompute: when the report or a curve it names is missing.
    """
    report_dir = Path(report_dir)
    report = _load_report(report_dir)
    inp = report["inputs"]
    root = None if runs_root is None else Path(runs_root)
    dirs = {arm: {int(s): _relocated(Path(d), root) for s, d in inp["run_dirs"][arm].items()} for arm in ARMS}
    outcome = RecomputeOutcome()
    for arm in ARMS:
        for seed, run_dir in sorted(dirs[arm].items()):
            curve = run_dir / inp.get("curve_file", CURVE_NAME)
            if not curve.is_file():
                raise CannotRecompute(f"{arm} seed {seed}: {curve} is missing")
            stored = (inp.get("curve_sha256") or {}).get(arm, {}).get(str(seed))
            if stored and sha256_file(curve) != stored:
                outcome.notes.append(f"{arm} seed {seed}: {curve} changed since the report")
    inputs = load_inputs_from_dirs(
        inp["scenario"], dirs["finetuned"], dirs["baseline"],
        inp["demo_transitions"], inp["expert_steps"],
        **{key: inp[key] for key in _SETTINGS if key in inp},
    )
    fresh = compare(inputs)
    stored_numbers = {k: v for k, v in report.items() if k != "inputs"}
    fresh_numbers = {k: v for k, v in fresh.items() if k != "inputs"}
    outcome.differences, outcome.n_values = diff_values(stored_numbers, fresh_numbers)
    md = report_dir / "report.md"
    if md.is_file() and md.read_text(encoding="utf-8") != render_markdown(report):
        outcome.differences.append("report.md: does not match the rendering of report.json")
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0 match, 1 differ, 2 cannot)."""
    parser = argparse.ArgumentParser(
        prog="python -m robosf_assets.benchmark.recompute",
        description="Recompute a comparison report from its saved curves and check it.",
    )
    parser.add_argument("report_dir", type=Path, help="directory holding report.json")
    parser.add_argument("--runs-root", type=Path, default=None,
                        help="copies of the run directories, as <stage>/<partition>/<run-id>")
    args = parser.parse_args(argv)
    try:
        outcome = recompute_report(args.report_dir, args.runs_root)
    except (CannotRecompute, FileNotFoundError, ValueError) as err:
        print(f"cannot recompute {args.report_dir}: {err}")
        return 2
    for note in outcome.notes:
        print(f"note: {note}")
    if outcome.ok:
        print(f"OK: all {outcome.n_values} values of {args.report_dir / 'report.json'} "
              "match the recomputation from the saved curves")
        return 0
    for line in outcome.differences:
        print(f"DIFFERS {line}")
    print(f"FAILED: {len(outcome.differences)} of {outcome.n_values} values differ")
    return 1


if __name__ == "__main__":
    sys.exit(main())
