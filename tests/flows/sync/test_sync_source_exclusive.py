"""Two sync-qcodes flow runs of one source at once: the source's global concurrency limit
lets one sync it, the other finds nothing left, and each run is synced exactly once."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from pymongo.database import Database

from flows.sync_qcodes import SyncReport, sync_qcodes
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.mongo import Document
from tasks.sync import DISK_LIMIT, source_limit_name
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d


def test_sync_qcodes_two_flow_runs_of_one_source_sync_each_run_once(
    prefect_api: str, mongo_settings: MongoSettings, mongo_db: Database[Document], tmp_path: Path
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    for _ in range(6):
        run_1d(exp)
    conn.close()
    SyncSources.create(
        name="shared-lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(db), "set_up": "fridge"},
        settings=mongo_settings,
    )
    reports: list[SyncReport] = []
    start = threading.Barrier(2)

    def one_flow_run() -> None:
        start.wait()
        reports.append(sync_qcodes(source_name="shared-lab"))

    threads = [threading.Thread(target=one_flow_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)

    assert len(reports) == 2
    actions = sorted(o.action for r in reports for o in r.sources[0].outcomes)
    assert actions == ["new"] * 6  # not twelve: the second flow run found them synced
    assert mongo_db.datasets.count_documents({"source": "shared-lab"}) == 6
    limits = {
        limit["name"]: limit
        for limit in httpx.post(f"{prefect_api}/v2/concurrency_limits/filter", json={}).json()
    }
    assert limits[source_limit_name("shared-lab")]["limit"] == 1
    assert limits[source_limit_name("shared-lab")]["active_slots"] == 0  # released
    assert limits[DISK_LIMIT]["active_slots"] == 0
