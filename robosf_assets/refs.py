"""Typed references that one pipeline stage hands the next.

Each stage (``run_<stage>`` in the core library) returns an outcome whose ``ref`` says
where its artefacts are and the few facts a later stage needs; the Dagster assets pass
these references to each other (pickled by the IO manager), never dicts of strings. A
reference points at a directory that holds a ``manifest.json``; everything else about
the run is in that manifest.

This module is core library: no Dagster, no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robosf_assets.training.curves import CURVE_NAME

__all__ = [
    "BCPolicyRef",
    "DatasetRef",
    "ExpertRef",
    "PolicyRef",
    "ReportRef",
    "StageRefused",
    "SummaryRef",
    "ValidatedDatasetRef",
]


class StageRefused(ValueError):
    """A stage refuses its input (a failed expert, a dataset recorded for other
    observations); the message says why. The Dagster layer turns it into a failure."""


@dataclass(frozen=True)
class ExpertRef:
    """A validated expert: ``output/experts/<scenario>/<run-id>/``.

    :param model_path: the validated policy (``selected_model.zip``).
    :param model_sha256: its checksum when it was validated (the manifest's).
    :param promoted: whether it passed the promotion bar.
    :param env_overrides: the env it was trained in (a dataset must be recorded in it).
    :param timesteps_used: env steps it was trained for.
    """

    run_dir: Path
    model_path: Path
    model_sha256: str
    promoted: bool
    scenario: str
    env_overrides: Mapping[str, Any] = field(default_factory=dict)
    timesteps_used: int = 0


@dataclass(frozen=True)
class DatasetRef:
    """A recorded dataset iteration: ``output/datasets/<scenario>/iter-NNNN/``."""

    iter_dir: Path
    dataset_id: str
    scenario: str

    @property
    def iteration(self) -> str:
        """``iter-NNNN``."""
        return self.iter_dir.name


@dataclass(frozen=True)
class ValidatedDatasetRef(DatasetRef):
    """A dataset iteration after full validation.

    :param status: ``validated`` or ``quarantined``; a quarantined dataset is never used.
    :param report: the integrity report written for this validation.
    :param reasons: every reason it failed (empty when validated).
    """

    status: str = "quarantined"
    report: Path | None = None
    reasons: tuple[str, ...] = ()

    @property
    def validated(self) -> bool:
        return self.status == "validated"


@dataclass(frozen=True)
class BCPolicyRef:
    """A behaviour-cloned policy: ``output/bc_policies/<scenario>-seed<seed>/<run-id>/``.

    :param policy_path: the policy state fine-tuning starts from (``policy.pt``).
    :param demo_transitions: transitions it was cloned from.
    """

    run_dir: Path
    policy_path: Path
    scenario: str
    seed: int
    dataset_iteration: str
    dataset_id: str
    demo_transitions: int


@dataclass(frozen=True)
class PolicyRef:
    """A trained comparison arm (``finetuned_policy`` or ``baseline_policy``) of one seed.

    :param arm: the asset that trained it.
    :param model_path: the final model (``model.zip``).
    :param timesteps_used: env steps it consumed.
    :param demo_transitions: fine-tuned arm: transitions of the demonstrations behind it.
    :param bc_run: fine-tuned arm: the BC run it started from.
    :param dataset_iteration: fine-tuned arm: the dataset iteration behind it.
    """

    arm: str
    run_dir: Path
    model_path: Path
    scenario: str
    seed: int
    timesteps_used: int
    demo_transitions: int | None = None
    bc_run: Path | None = None
    dataset_iteration: str | None = None

    @property
    def curve_path(self) -> Path:
        """The learning curve the comparison reads (``curve.jsonl``)."""
        return self.run_dir / CURVE_NAME


@dataclass(frozen=True)
class ReportRef:
    """A comparison report: ``output/reports/<scenario>/<run-id>/`` (report.json, .md, plots).

    :param seeds: the matched seeds it compares.
    :param target_met: the verdict of the sample-efficiency target.
    """

    report_dir: Path
    scenario: str
    seeds: tuple[int, ...] = ()
    target_met: bool = False

    @property
    def report_json(self) -> Path:
        return self.report_dir / "report.json"


@dataclass(frozen=True)
class SummaryRef:
    """The all-scenario summary: ``output/reports/summary/<run-id>/`` and its rows."""

    summary_dir: Path
    rows: tuple[Mapping[str, Any], ...] = ()
