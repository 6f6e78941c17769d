"""A CLI that started the daemon keeps it while another command's backfill still needs it."""

from types import SimpleNamespace

from dagster._core.execution.backfill import BulkActionStatus

from robosf_assets.defs.backfill import backfills_in_progress


class _Instance:
    def __init__(self, backfills):
        self._backfills = backfills

    def get_backfills(self, limit=None):
        return self._backfills[:limit]


def test_only_unfinished_backfills_of_others_count():
    inst = _Instance([
        SimpleNamespace(backfill_id="mine", status=BulkActionStatus.REQUESTED),
        SimpleNamespace(backfill_id="other", status=BulkActionStatus.REQUESTED),
        SimpleNamespace(backfill_id="cancelling", status=BulkActionStatus.CANCELING),
        SimpleNamespace(backfill_id="done", status=BulkActionStatus.COMPLETED_SUCCESS),
        SimpleNamespace(backfill_id="failed", status=BulkActionStatus.COMPLETED_FAILED),
        SimpleNamespace(backfill_id="cancelled", status=BulkActionStatus.CANCELED),
    ])
    assert backfills_in_progress(inst, "mine") == ["other", "cancelling"]
    assert backfills_in_progress(_Instance([]), None) == []
