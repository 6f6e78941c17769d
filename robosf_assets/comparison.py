"""The report stages: a scenario's fine-tuned vs baseline comparison, and the summary.

:func:`run_comparison` compares the runs its policy references point at (their
``curve.jsonl``) and writes the report with :mod:`robosf_assets.benchmark.report` into a
new ``output/reports/<scenario>/<run-id>/``; :func:`run_summary` gathers the reports its
references point at into ``output/reports/summary/<run-id>/``. Each directory gets a
``manifest.json``. Neither reads anything but its inputs: no orchestrator state, no scan
of the output tree.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from robosf_assets.artifacts import (
    atomic_save,
    atomic_write_json,
    atomic_write_text,
    build_manifest,
    new_run_dir,
    read_json,
    write_manifest,
)
from robosf_assets.benchmark.report import compare, load_inputs_from_dirs, verdict_markdown, write_report
from robosf_assets.benchmark.summary import summary_markdown, summary_png, summary_rows
from robosf_assets.logs import get_logger
from robosf_assets.refs import ExpertRef, PolicyRef, ReportRef, StageRefused, SummaryRef

__all__ = [
    "ComparisonOutcome",
    "ComparisonSettings",
    "SummaryOutcome",
    "matched_seeds",
    "run_comparison",
    "run_summary",
]

log = get_logger("comparison")


@dataclass(frozen=True)
class ComparisonSettings:
    """How time to threshold and the efficiency ratio are judged (the Dagster
    ``ReportConfig`` gives every value; stored as the manifests' ``config``)."""

    target_success: float
    max_collision: float
    consecutive_evals: int
    ratio_target: float
    statistic: str
    n_resamples: int
    min_seeds: int


@dataclass(frozen=True)
class ComparisonOutcome:
    """The report's reference, :func:`~robosf_assets.benchmark.report.compare`'s result,
    its markdown summary and the two plots as written."""

    ref: ReportRef
    result: dict[str, Any]
    summary_md: str
    success_curves_png: bytes
    time_to_threshold_png: bytes

    @property
    def verdict(self) -> dict[str, Any]:
        return self.result["verdict"]


@dataclass(frozen=True)
class SummaryOutcome:
    """The summary's reference, its markdown table and figure."""

    ref: SummaryRef
    table_md: str
    png: bytes


def _by_seed(refs: Iterable[PolicyRef], arm: str, scenario: str) -> dict[int, PolicyRef]:
    out: dict[int, PolicyRef] = {}
    for ref in refs:
        if ref.scenario != scenario:
            raise ValueError(f"{arm} seed {ref.seed} is a run of {ref.scenario}, not {scenario}")
        if ref.seed in out:
            raise ValueError(f"{arm} seed {ref.seed} given twice: {out[ref.seed].run_dir} and {ref.run_dir}")
        out[ref.seed] = ref
    return out


def matched_seeds(scenario: str, finetuned: Mapping[int, PolicyRef], baseline: Mapping[int, PolicyRef]) -> list[int]:
    """Seeds with both arms (sorted); a seed with one arm only is logged and left out."""
    unmatched = sorted(set(finetuned) ^ set(baseline))
    if unmatched:
        log.warning("{}: seeds {} have only one arm and are left out", scenario, unmatched)
    return sorted(set(finetuned) & set(baseline))


def run_comparison(
    settings: ComparisonSettings,
    expert: ExpertRef,
    finetuned: Iterable[PolicyRef],
    baseline: Iterable[PolicyRef],
    root: str | os.PathLike[str],
) -> ComparisonOutcome:
    """The comparison stage for the expert's scenario over the matched seeds of the given
    arm runs: read each run's curve, compare, and write the report and its manifest.

    :param expert: the scenario's expert (its training steps count against fine-tuning).
    :param finetuned: the fine-tuned runs, one per seed (``demo_transitions`` set).
    :param baseline: the baseline runs, one per seed.
    :raises StageRefused: if no seed has both arms.
    """
    scenario = expert.scenario
    ft, bl = _by_seed(finetuned, "finetuned", scenario), _by_seed(baseline, "baseline", scenario)
    seeds = matched_seeds(scenario, ft, bl)
    if not seeds:
        raise StageRefused(f"{scenario}: no seed has both a finetuned_policy and a baseline_policy yet")
    demo = {ft[s].demo_transitions for s in seeds}
    if None in demo:
        raise ValueError(f"{scenario}: a fine-tuned run records no demo_transitions")
    inputs = load_inputs_from_dirs(
        scenario, {s: ft[s].run_dir for s in seeds}, {s: bl[s].run_dir for s in seeds},
        demo_transitions=max(demo), expert_steps=int(expert.timesteps_used),
        target_success=settings.target_success, max_collision=settings.max_collision, k=settings.consecutive_evals,
        ratio_target=settings.ratio_target, statistic=settings.statistic, n_resamples=settings.n_resamples,
        min_seeds=settings.min_seeds,
    )
    started = time.time()
    result = compare(inputs)
    out_dir = new_run_dir("reports", scenario, root=root)
    write_report(out_dir, inputs, result)
    write_manifest(out_dir, build_manifest(
        kind="comparison_report", partition=scenario, config=asdict(settings),
        seeds={"matched_seeds": seeds}, artifact_dir=out_dir, started_at=started,
        extra={"expert_run": str(expert.run_dir)},
    ))
    ref = ReportRef(report_dir=out_dir, scenario=scenario, seeds=tuple(seeds),
                    target_met=bool(result["verdict"]["target_met"]))
    return ComparisonOutcome(ref, result, verdict_markdown(result), (out_dir / "success_curves.png").read_bytes(),
                             (out_dir / "time_to_threshold.png").read_bytes())


def run_summary(settings: ComparisonSettings, reports: Iterable[ReportRef], root: str | os.PathLike[str]) -> SummaryOutcome:
    """The summary stage: one table and one figure over the given reports (one per
    scenario), written with a manifest into a new ``<root>/reports/summary/<run-id>/``.

    :raises StageRefused: if there is no report.
    """
    by_scenario: dict[str, ReportRef] = {}
    for ref in reports:
        if ref.scenario in by_scenario:
            raise ValueError(f"two reports of {ref.scenario}: {by_scenario[ref.scenario].report_dir}, {ref.report_dir}")
        by_scenario[ref.scenario] = ref
    if not by_scenario:
        raise StageRefused("no comparison_report has been materialised yet")
    rows = summary_rows({scenario: read_json(ref.report_json) for scenario, ref in by_scenario.items()})
    table = summary_markdown(rows, settings.ratio_target)
    png = summary_png(rows, settings.ratio_target)
    started = time.time()
    out_dir = new_run_dir("reports", "summary", root=root)
    atomic_write_json(out_dir / "summary.json", rows)
    atomic_write_text(out_dir / "summary.md", table + "\n")
    atomic_save(out_dir / "summary.png", lambda tmp: tmp.write_bytes(png))
    write_manifest(out_dir, build_manifest(kind="benchmark_summary", partition="all", config=asdict(settings),
                                           seeds={}, artifact_dir=out_dir, started_at=started))
    return SummaryOutcome(SummaryRef(summary_dir=out_dir, rows=tuple(rows)), table, png)
