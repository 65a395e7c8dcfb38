"""The sync-qcodes flow and the sync CLI under a real Prefect API and embedded MongoDB."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pymongo.database import Database
from typer.testing import CliRunner

from blocks.sync import QCoDeSSyncSource
from flows.sync_qcodes import sync_qcodes
from qops.cli.main import build_app
from qops.config import MongoSettings
from qops.mongo import Document
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d, run_2d, sha256


def test_sync_qcodes_flow_and_cli_sync_runs_into_catalog(
    prefect_api: str,
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    run_1d(exp)
    run_2d(exp)
    conn.close()
    before = sha256(db)
    runner = CliRunner()
    added = runner.invoke(
        build_app(),
        ["sources", "add", "lab", "--database", str(db), "--set-up", "fridge", "--attr", "k=v"],
    )
    assert added.exit_code == 0, added.output
    block = QCoDeSSyncSource.load("lab")
    assert isinstance(block, QCoDeSSyncSource)
    assert block.to_settings().static_attributes == {"k": "v"}

    monkeypatch.setenv("QOPS_CONSOLE_URL", "http://qops.lab:8000")
    report = sync_qcodes(source_name="lab")

    (source,) = report.sources
    assert [o.action for o in source.outcomes] == ["new", "new"]
    assert mongo_db.datasets.count_documents({"source": "lab"}) == 2
    assert sha256(db) == before
    for record in mongo_db.datasets.find():
        assert Path(record["files"][0]["location"]).is_relative_to(mongo_settings.data_dir)

    artifact = httpx.get(f"{prefect_api}/artifacts/{report.artifact_id}").json()
    assert artifact["key"] == "sync-qcodes-lab"
    assert artifact["type"] == "table"
    assert '"action": "new"' in artifact["data"]
    assert "lab: 2 new" in artifact["description"]
    # With QOPS_CONSOLE_URL each synced run links to its dataset's console page.
    rows = artifact["data"] if isinstance(artifact["data"], list) else json.loads(artifact["data"])
    uuids = sorted(record["_id"] for record in mongo_db.datasets.find({"source": "lab"}))
    assert sorted(row["dataset"] for row in rows) == sorted(
        f"[{u}](http://qops.lab:8000/console/datasets/{u})" for u in uuids
    )

    again = runner.invoke(build_app(), ["sync", "lab"])
    assert again.exit_code == 0, again.output
    assert "lab: 0 new, 0 updated, 0 live, 0 abandoned, 0 failed" in again.output
    status = runner.invoke(build_app(), ["sync", "status", "lab"])
    assert status.exit_code == 0
    assert status.output.count("\tsynced\t") == 2
    every = sync_qcodes()  # the scheduled deployment's call: every registered source
    assert [(s.source, s.outcomes) for s in every.sources] == [("lab", [])]
    listed = runner.invoke(build_app(), ["sources", "list"])
    assert "lab\tqcodes" in listed.output
    removed = runner.invoke(build_app(), ["sources", "remove", "lab"])
    assert removed.exit_code == 0
    assert runner.invoke(build_app(), ["sources", "list"]).output == ""


def test_cli_sources_add_missing_database_fails_with_field_named(
    prefect_api: str, mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        build_app(),
        ["sources", "add", "lab", "--database", str(tmp_path / "nope.db"), "--set-up", "f"],
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "database_path" in str(result.exception)


def test_cli_backends_list_shows_qcodes_with_versions() -> None:
    result = CliRunner().invoke(build_app(), ["backends", "list"])
    assert result.exit_code == 0
    assert result.output.startswith("qcodes\tQCoDeS SQLite database\t")
    assert "QCoDeS 0.58" in result.output
