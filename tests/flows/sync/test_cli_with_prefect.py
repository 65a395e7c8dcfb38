"""The sync CLI with a Prefect API configured: real ``qops`` processes, a real Prefect API."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from pymongo.database import Database

from blocks.sync import QCoDeSSyncSource
from qops.config import MongoSettings
from qops.mongo import Document
from tests.cli import run_qops
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d


def test_cli_with_prefect_api_saves_block_and_syncs_in_a_flow_run(
    prefect_api: str, mongo_settings: MongoSettings, mongo_db: Database[Document], tmp_path: Path
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    run_1d(exp)
    run_1d(exp)
    conn.close()

    added = run_qops("sources", "add", "cli-lab", "--database", str(db), "--set-up", "fridge")
    synced = run_qops("sync", "cli-lab")

    assert added.returncode == 0, added.stderr
    assert f"block  QCoDeSSyncSource saved on the configured Prefect API {prefect_api}" in (
        added.stdout
    )
    block = QCoDeSSyncSource.load("cli-lab")
    assert isinstance(block, QCoDeSSyncSource)
    assert synced.returncode == 0, synced.stderr
    assert "cli-lab: 2 new, 0 updated, 0 live, 0 abandoned, 0 failed" in synced.stdout
    match = re.search(r"flow run ([0-9a-f-]{36}) of sync-qcodes", synced.stdout)
    assert match is not None, synced.stdout
    flow_run = httpx.get(f"{prefect_api}/flow_runs/{match.group(1)}").json()
    assert flow_run["state"]["type"] == "COMPLETED"
    assert mongo_db.datasets.count_documents({"source": "cli-lab"}) == 2
    for result in (added, synced):
        assert "telemetry" not in (result.stdout + result.stderr).lower()


def test_cli_sync_of_vanished_database_in_flow_run_names_it_and_exits_1(
    prefect_api: str, mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    db = tmp_path / "gone.db"
    conn, exp = create_db(db)
    run_1d(exp)
    conn.close()
    added = run_qops("sources", "add", "cli-gone", "--database", str(db), "--set-up", "fridge")
    assert added.returncode == 0, added.stderr
    db.unlink()

    synced = run_qops("sync", "cli-gone")

    assert synced.returncode == 1
    assert "cli-gone: discovery failed" in synced.stderr
    assert str(db) in synced.stderr
    match = re.search(r"flow run ([0-9a-f-]{36}) of sync-qcodes", synced.stdout)
    assert match is not None, synced.stdout
    flow_run = httpx.get(f"{prefect_api}/flow_runs/{match.group(1)}").json()
    assert flow_run["state"]["type"] == "FAILED"
