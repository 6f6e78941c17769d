"""What a comparison report is computed from: :class:`ComparisonInputs`, and its
``inputs`` block in ``report.json`` (what :mod:`.recompute` needs to redo the report)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robosf_assets.artifacts import to_jsonable
from robosf_assets.training.curves import CURVE_NAME

__all__ = [
    "ARMS",
    "CONFIDENCE",
    "INTERVAL_METHOD",
    "STATISTICS",
    "ComparisonInputs",
    "CurveRows",
    "curve_arrays",
    "inputs_block",
]

ARMS: tuple[str, str] = ("finetuned", "baseline")
"""Arm names: PPO initialised from a BC policy, and PPO from scratch."""
CONFIDENCE = 0.95
"""Coverage of every CI in the report."""
STATISTICS: tuple[str, str] = ("iqm", "median")
"""Statistics across runs the report gives for times and ratios; the verdict uses one."""
INTERVAL_METHOD = "rliable percentile bootstrap (StratifiedIndependentBootstrap)"
"""How every CI is computed (:mod:`robosf_assets.benchmark.intervals`); recorded in the
``inputs`` block."""

# One run's learning curve: the rows of its curve.jsonl.
CurveRows = list[dict[str, Any]]


@dataclass(frozen=True)
class ComparisonInputs:
    """Everything :func:`compare` needs; build it with
    :func:`~robosf_assets.benchmark.report_write.load_inputs_from_dirs`.

    :param scenario: scenario name (the report's partition).
    :param finetuned: seed -> curve rows of the PPO run initialised from BC.
    :param baseline: seed -> curve rows of the PPO-from-scratch run; same seeds as
        ``finetuned`` (matched seeds, REFERENCE §5).
    :param demo_transitions: transitions in the demonstration dataset BC trained on.
    :param expert_steps: environment steps the expert itself was trained for.
    :param target_success: success rate the threshold requires (inclusive).
    :param max_collision: collision rate the threshold allows (inclusive).
    :param k: consecutive qualifying evaluations that confirm the threshold; also the
        fewest evaluations from the held time to a run's end.
    :param hold_fraction: share of the evaluations from the held time on that must meet
        the bar ("reached and held", the time the verdict is judged on).
    :param ratio_target: the ratio's CI upper bound must be <= this for "target met".
    :param statistic: ``"iqm"`` or ``"median"``: the statistic the verdict uses.
    :param n_resamples: bootstrap replicates for every CI.
    :param seed: bootstrap seed (same for every CI, so the report is deterministic).
    :param min_seeds: fewer matched seeds than this never give "target met" (a CI over
        one or two runs says little; REFERENCE §5 suggests 3-10).
    :param run_dirs: arm -> seed -> run directory the curve was read from; required by
        :func:`~robosf_assets.benchmark.report_write.write_report` so the report can be
        recomputed.
    :param curve_sha256: arm -> seed -> sha256 of the ``curve.jsonl`` that was read.
    """

    scenario: str
    finetuned: dict[int, CurveRows]
    baseline: dict[int, CurveRows]
    demo_transitions: int
    expert_steps: int
    target_success: float = 0.90
    max_collision: float = 0.05
    k: int = 3
    hold_fraction: float = 0.90
    ratio_target: float = 0.70
    statistic: str = "iqm"
    n_resamples: int = 5000
    seed: int = 0
    min_seeds: int = 3
    run_dirs: dict[str, dict[int, str]] | None = field(default=None, repr=False)
    curve_sha256: dict[str, dict[int, str]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Reject settings and arm layouts the report cannot be honest about."""
        for name in ("demo_transitions", "expert_steps", "k", "n_resamples", "seed", "min_seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if self.k < 1 or self.n_resamples < 1:
            raise ValueError(f"k and n_resamples must be >= 1, got {self.k}, {self.n_resamples}")
        if self.statistic not in STATISTICS:
            raise ValueError(f"statistic must be 'iqm' or 'median', got {self.statistic!r}")
        if not 0.0 <= self.target_success <= 1.0 or not 0.0 <= self.max_collision <= 1.0:
            raise ValueError("target_success and max_collision are rates in [0, 1]")
        if not 0.0 < self.hold_fraction <= 1.0:
            raise ValueError(f"hold_fraction must be in (0, 1], got {self.hold_fraction}")
        if not self.ratio_target > 0.0:
            raise ValueError(f"ratio_target must be > 0, got {self.ratio_target}")
        if not self.finetuned or not self.baseline:
            raise ValueError("both arms need at least one run (seed -> curve rows)")
        ft, bl = sorted(self.finetuned), sorted(self.baseline)
        if ft != bl:
            raise ValueError(
                f"seeds must be matched between arms: finetuned has {ft}, baseline has {bl}; "
                "run the missing seeds or pass the common ones only"
            )

    @property
    def seeds(self) -> list[int]:
        """The matched seeds, sorted."""
        return sorted(int(s) for s in self.finetuned)

    def curves(self, arm: str) -> dict[int, CurveRows]:
        """Seed -> curve rows of ``arm``."""
        if arm not in ARMS:
            raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
        return self.finetuned if arm == "finetuned" else self.baseline


def inputs_block(inputs: ComparisonInputs) -> dict[str, Any]:
    """The ``inputs`` block of ``report.json``: what :mod:`.recompute` needs to redo it."""

    def by_seed(table: dict[str, dict[int, str]] | None) -> dict[str, Any] | None:
        if table is None:
            return None
        return {arm: {str(s): table[arm][s] for s in sorted(table[arm])} for arm in ARMS}

    return to_jsonable(
        {
            "scenario": inputs.scenario,
            "seeds": inputs.seeds,
            "run_dirs": by_seed(inputs.run_dirs),
            "curve_file": CURVE_NAME,
            "curve_sha256": by_seed(inputs.curve_sha256),
            "demo_transitions": int(inputs.demo_transitions),
            "expert_steps": int(inputs.expert_steps),
            "target_success": float(inputs.target_success),
            "max_collision": float(inputs.max_collision),
            "k": int(inputs.k),
            "hold_fraction": float(inputs.hold_fraction),
            "ratio_target": float(inputs.ratio_target),
            "statistic": inputs.statistic,
            "n_resamples": int(inputs.n_resamples),
            "seed": int(inputs.seed),
            "min_seeds": int(inputs.min_seeds),
            "confidence": CONFIDENCE,
            "interval_method": INTERVAL_METHOD,
        }
    )


def curve_arrays(rows: Sequence[Mapping[str, Any]], where: str) -> tuple[np.ndarray, ...]:
    """(timesteps, success, collision) of curve rows; ``None`` values become NaN."""
    if not rows:
        raise ValueError(f"{where}: the curve has no evaluation rows")
    for i, row in enumerate(rows):
        missing = {"timesteps", "success", "collision"} - set(row)
        if missing:
            raise ValueError(f"{where}: row {i} lacks {sorted(missing)}; is this a curve.jsonl?")

    def col(key: str) -> np.ndarray:
        return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=np.float64)

    return col("timesteps"), col("success"), col("collision")
