"""The learning-curve file format, ``curve.jsonl``, and what is read off its rows.

Importing this module pulls in neither torch nor Stable-Baselines3, so reports, recompute
scripts and benchmarks read curves without loading the training stack.

Format. One JSON object per line, keys sorted, no NaN, one row per evaluation in step order
(step 0, the jumpstart, first). The training run writes the keys ``timesteps``,
``success``, ``collision``, ``mean_return``, ``n_episodes`` (the evaluation), and
``wall_time_s`` (cumulative), ``env_steps_per_s`` (training throughput so far, ``None`` at
step 0) and ``eval_s`` (this evaluation's duration), the wall-clock columns. Each row is
appended, flushed and fsynced before training goes on (:class:`CurveLog`).

Torn rows. A process killed mid-append leaves a partial last line: :func:`read_curve`
ignores it (with a warning) and the resuming run rewrites the file to the rows its
checkpoint covers (:meth:`CurveLog.reset_to`); an unparsable line anywhere else is damage
and raises.

Rows against the promotion bar. :func:`bar_score` is a row's worst margin to the bar,
:func:`top_rows` the rows nominated for held-out selection, :func:`best_row` the best one,
:func:`trailing_streak` the run of rows meeting the bar at the end (early stopping), and
:func:`promotion_step` the first step of ``k`` rows in a row meeting it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robosf_assets.artifacts import atomic_write_text
from robosf_assets.benchmark.efficiency import ThresholdResult, time_to_threshold
from robosf_assets.logs import get_logger

if TYPE_CHECKING:  # only for annotations: no import cycle, no config at import time
    from robosf_assets.training.train_config import PromotionBar

__all__ = [
    "CURVE_NAME",
    "CurveLog",
    "bar_met",
    "bar_score",
    "best_row",
    "curve_text",
    "curve_threshold",
    "promotion_step",
    "read_curve",
    "top_rows",
    "trailing_streak",
]

log = get_logger("training.curves")

CURVE_NAME = "curve.jsonl"
"""The learning curve's file name inside a run directory."""


def curve_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The exact file text of ``rows`` (what :class:`CurveLog` writes, row by row)."""
    return "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in rows)


def read_curve(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rows of a ``curve.jsonl`` (``[]`` when the file is missing); a torn last line (a kill
    mid-write) is ignored.

    :raises ValueError: for an unparsable line before the last one.
    """
    path = Path(path)
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                log.warning("{}: ignoring a torn last line", path)
                break
            raise ValueError(f"{path}:{i + 1}: invalid curve row") from None
    return rows


class CurveLog:
    """The append-only writer of one ``curve.jsonl``.

    :param path: the file (created by the first :meth:`append`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row; it is written, flushed and fsynced before this returns."""
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, sort_keys=True, allow_nan=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def reset_to(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Replace the file by exactly ``rows`` (atomic)."""
        atomic_write_text(self.path, curve_text(rows), overwrite=True)


# ------------------------------------------------------------------ rows against a bar


def bar_met(row: Mapping[str, Any], bar: PromotionBar, margin: float = 0.0) -> bool:
    """Whether one curve row meets the bar tightened by ``margin`` on both rates."""
    return (
        row["success"] >= bar.min_success + margin
        and row["collision"] <= bar.max_collision - margin
    )


def trailing_streak(
    curve: Sequence[Mapping[str, Any]], bar: PromotionBar, margin: float = 0.0
) -> int:
    """Number of evaluations at the end of ``curve`` that meet the bar in a row."""
    n = 0
    for row in reversed(curve):
        if not bar_met(row, bar, margin):
            break
        n += 1
    return n


def bar_score(row: Mapping[str, Any], bar: PromotionBar) -> float:
    """Worst margin of a curve row to the bar: >= 0 exactly when the row meets it."""
    return min(row["success"] - bar.min_success, bar.max_collision - row["collision"])


def best_row(curve: Sequence[Mapping[str, Any]], bar: PromotionBar) -> Mapping[str, Any] | None:
    """The earliest curve row with the highest :func:`bar_score`, or ``None`` for no rows.

    The maximum of many noisy evaluations of the same episodes is biased upwards: this row
    only nominates a candidate (:func:`top_rows`); the held-out selection set picks the
    policy (:mod:`robosf_assets.training.selection`)."""
    best = None
    for row in curve:
        if best is None or bar_score(row, bar) > bar_score(best, bar):
            best = row
    return best


def top_rows(
    curve: Sequence[Mapping[str, Any]], bar: PromotionBar, n: int
) -> list[Mapping[str, Any]]:
    """The ``n`` curve rows with the highest :func:`bar_score` (the earlier row wins a tie),
    in curve order: the candidates nominated for held-out selection."""
    ranked = sorted(range(len(curve)), key=lambda i: (-bar_score(curve[i], bar), i))
    return [curve[i] for i in sorted(ranked[:n])]


def curve_threshold(curve: Sequence[Mapping[str, Any]], bar: PromotionBar) -> ThresholdResult:
    """Time to ``bar`` of a non-empty curve: ``bar.consecutive_evals`` evaluations in a row
    meeting its success and collision limits (censored when never)."""
    return time_to_threshold(
        [r["timesteps"] for r in curve],
        [r["success"] for r in curve],
        target=bar.min_success,
        collision=[r["collision"] for r in curve],
        max_collision=bar.max_collision,
        k=bar.consecutive_evals,
    )


def promotion_step(curve: Sequence[Mapping[str, Any]], bar: PromotionBar) -> int | None:
    """First step of ``bar.consecutive_evals`` evaluations in a row meeting the bar, or ``None``."""
    if not curve:
        return None
    result = curve_threshold(curve, bar)
    return None if result.censored else result.steps
