"""Comparison report: BC-pretrained PPO ("finetuned") against PPO from scratch ("baseline").

The statistics follow REFERENCE §5 (rliable, Agarwal et al. 2021; Taylor & Stone 2009):
per seed, two times to threshold (right-censored when never reached, never dropped): the
bar (success >= target and collision <= limit) met by ``k`` consecutive evaluations, and
"reached and held", the first evaluation from which at least ``hold_fraction`` (90%) of
all later evaluations meet it; jumpstart, the area under the success curve on one step
span for every run, final metrics, the collision rate at each threshold point and the share
of evaluations after it that meet the bar; per arm, IQM and median of both times with
bootstrap CIs; and the ratio fine-tuned / baseline of both with a bootstrap CI in which
each arm's runs are resampled independently. Every interval is rliable's
(``get_interval_estimates`` with ``StratifiedIndependentBootstrap``, percentile; see
:mod:`.intervals`); censored times enter at their censoring step before rliable sees them.

The verdict (the ``sample_efficiency_target`` check) is judged on the *held* time: a
fine-tuned arm that starts on the bar and then drifts off it has not saved the steps a
k-in-a-row reading credits it with. The step countings (fine-tuning steps; plus
demonstration transitions; plus the expert's training steps) use the held time too.

Flow, and the module that does each step::

    inputs = load_inputs_from_dirs(scenario, finetuned_dirs, baseline_dirs, demo, expert)
    result = compare(inputs)                      # JSON-safe dict, deterministic
    paths = write_report(out_dir, inputs, result) # report.json/.md + two PNGs

- :mod:`.report_inputs`: :class:`ComparisonInputs` and the ``inputs`` block;
- :mod:`.report_compute`: every number, as frozen dataclasses (``compute(inputs)``);
- :mod:`.report_result`: those numbers as the ``report.json`` dict, with its sentences;
- :mod:`.report_markdown` and :mod:`.report_plots`: ``report.md`` and the two figures,
  pure functions of that dict;
- :mod:`.report_write`: the only I/O (reading curves, writing the files atomically).

This module is the public face: it re-exports what callers use and adds :func:`compare`.

``report.json`` keeps an ``inputs`` block (run directories, curve checksums, thresholds,
bootstrap settings), so ``python -m robosf_assets.benchmark.recompute <report-dir>`` can
re-read the curves and check every number. No Dagster here: the asset only calls these.
"""

from __future__ import annotations

from typing import Any

from robosf_assets.benchmark.report_compute import Comparison, compute
from robosf_assets.benchmark.report_inputs import (
    ARMS,
    CONFIDENCE,
    ComparisonInputs,
    CurveRows,
    inputs_block,
)
from robosf_assets.benchmark.report_markdown import (
    RECOMPUTE_COMMAND,
    render_markdown,
    verdict_markdown,
)
from robosf_assets.benchmark.report_plots import success_curves_png, time_to_threshold_png
from robosf_assets.benchmark.report_result import SCHEMA_VERSION, result_dict
from robosf_assets.benchmark.report_write import (
    REPORT_FILES,
    load_inputs_from_dirs,
    write_report,
)

__all__ = [
    "ARMS",
    "CONFIDENCE",
    "RECOMPUTE_COMMAND",
    "REPORT_FILES",
    "SCHEMA_VERSION",
    "Comparison",
    "ComparisonInputs",
    "CurveRows",
    "compare",
    "compute",
    "inputs_block",
    "load_inputs_from_dirs",
    "render_markdown",
    "result_dict",
    "success_curves_png",
    "time_to_threshold_png",
    "verdict_markdown",
    "write_report",
]


def compare(inputs: ComparisonInputs) -> dict[str, Any]:
    """Compute the whole comparison; deterministic and JSON-safe (NaN stored as ``None``).

    ``result_dict(compute(inputs))``: see :func:`~.report_result.result_dict` for the keys.

    :param inputs: curves and settings.
    :return: the result dict; seeds are string keys under ``runs``.
    """
    return result_dict(compute(inputs))
