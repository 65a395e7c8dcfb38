"""A source that cannot be read fails the sync-qcodes flow run, after the others are synced."""

from __future__ import annotations

from pathlib import Path

import httpx
from pymongo.database import Database

from flows.sync_qcodes import sync_qcodes
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.mongo import Document
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d


def _source(tmp_path: Path, name: str, settings: MongoSettings) -> Path:
    db = tmp_path / f"{name}.db"
    conn, exp = create_db(db)
    run_1d(exp)
    conn.close()
    SyncSources.create(
        name=name,
        backend_identifier="qcodes",
        config_data={"database_path": str(db), "set_up": "fridge"},
        settings=settings,
    )
    return db


def test_sync_qcodes_broken_source_fails_flow_run_after_good_source_synced(
    prefect_api: str, mongo_settings: MongoSettings, mongo_db: Database[Document], tmp_path: Path
) -> None:
    _source(tmp_path, "good", mongo_settings)
    broken = _source(tmp_path, "broken", mongo_settings)
    broken.unlink()  # the lab's file went away after the source was registered

    state = sync_qcodes(return_state=True)

    assert state.is_failed()
    assert state.message is not None
    assert "broken" in state.message
    assert "(broken)" in state.message  # the failed sources, and only those
    assert mongo_db.datasets.count_documents({"source": "good"}) == 1
    flow_run = httpx.get(f"{prefect_api}/flow_runs/{state.state_details.flow_run_id}").json()
    assert flow_run["state"]["type"] == "FAILED"
    artifacts = httpx.post(
        f"{prefect_api}/artifacts/filter",
        json={"artifacts": {"key": {"any_": ["sync-qcodes-all-sources"]}}},
    ).json()
    (artifact,) = [a for a in artifacts if a["flow_run_id"] == flow_run["id"]]
    assert "broken: discovery failed" in artifact["description"]
    assert "good: 1 new" in artifact["description"]
