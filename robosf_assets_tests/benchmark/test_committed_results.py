"""The committed full-profile report is reproduced from the committed curves (issue 10 item 7)."""

from pathlib import Path

import pytest

from robosf_assets.benchmark.recompute import main as recompute

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "full"


@pytest.mark.parametrize("report", sorted(p.parent.name for p in RESULTS.glob("*/report.json")))
def test_committed_report_recomputes_from_committed_curves(report, capsys):
    assert recompute([str(RESULTS / report), "--runs-root", str(RESULTS / "runs")]) == 0
    assert "OK: all" in capsys.readouterr().out
