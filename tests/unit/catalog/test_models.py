"""Catalog records read back what older versions stored."""

from __future__ import annotations

from qops.catalog.models import ItemState, SyncItem
from qops.timeutil import utc_now


def test_sync_item_stored_with_removed_file_complete_field_still_reads() -> None:
    now = utc_now()
    stored = {
        "source": "lab",
        "run_id": 3,
        "guid": "g",
        "state": "synced",
        "file_version": 1,
        "file_complete": True,  # written by versions before the field was removed
        "created_at": now,
        "updated_at": now,
    }

    item = SyncItem.model_validate(stored)

    assert item.state is ItemState.SYNCED
    assert item.file_version == 1
    assert "file_complete" not in item.model_dump()
