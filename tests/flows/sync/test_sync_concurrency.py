"""QOPS_SYNC_CONCURRENCY bounds the sync-run tasks in flight, read when the flow run starts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from pymongo.database import Database

from flows.sync_qcodes import SyncReport, sync_qcodes
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.mongo import Document
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d


def _sync_run_intervals(api: str, flow_run_id: UUID) -> list[tuple[datetime, datetime]]:
    response = httpx.post(
        f"{api}/task_runs/filter",
        json={"flow_runs": {"id": {"any_": [str(flow_run_id)]}}},
    )
    response.raise_for_status()
    return [
        (datetime.fromisoformat(run["start_time"]), datetime.fromisoformat(run["end_time"]))
        for run in response.json()
        if run["name"].startswith("sync-run-")
    ]


def _most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """Return the largest number of intervals open at the same instant."""
    # At equal times an end sorts before a start: touching intervals do not overlap.
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


@pytest.mark.parametrize("concurrency", [1, 3])
def test_sync_qcodes_concurrency_setting_bounds_sync_run_tasks_in_flight(
    concurrency: int,
    prefect_api: str,
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    for _ in range(4):
        run_1d(exp)
    conn.close()
    name = f"lab-c{concurrency}"
    SyncSources.create(
        name=name,
        backend_identifier="qcodes",
        config_data={"database_path": str(db), "set_up": "fridge"},
        settings=mongo_settings,
    )
    # Set after the flow module was imported: the flow reads it when it runs.
    monkeypatch.setenv("QOPS_SYNC_CONCURRENCY", str(concurrency))

    state = sync_qcodes(source_name=name, return_state=True)

    report = state.result()
    assert isinstance(report, SyncReport)
    assert [o.action for o in report.sources[0].outcomes] == ["new"] * 4
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    intervals = _sync_run_intervals(prefect_api, flow_run_id)
    assert len(intervals) == 4
    most = _most_at_once(intervals)
    if concurrency == 1:
        assert most == 1  # strictly one after the other
    else:
        assert 2 <= most <= concurrency  # in parallel, never more than allowed
