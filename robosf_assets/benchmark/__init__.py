"""Comparison statistics and reports (library code, no Dagster): BC-pretrained PPO against
PPO from scratch, per scenario and across scenarios.

- statistics: :mod:`.efficiency` (sample efficiency over learning curves, with censoring),
  :mod:`.intervals` (bootstrap intervals by rliable), :mod:`.stats` (per-episode metric
  summaries), :mod:`.bands` (mean curves with CI bands), over :mod:`.curve_arrays` and
  :mod:`.episodes`; :mod:`.plots` (generic PNG plots);
- the per-scenario report: :mod:`.report` (its public API), computed by
  :mod:`.report_compute` from :mod:`.report_inputs`, laid out by :mod:`.report_result`, rendered by
  :mod:`.report_markdown` and :mod:`.report_plots`, read and written by
  :mod:`.report_write`, checked by :mod:`.recompute`;
- across scenarios: :mod:`.summary` (one table, one figure, the cross-scenario IQM).

Not to be confused with :mod:`robosf_assets.bench`, the measurement commands (speed,
difficulty, calibration) run by hand as ``python -m robosf_assets.bench.<name>``.
"""
