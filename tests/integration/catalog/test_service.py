"""The sync service against the embedded MongoDB and real QCoDeS databases."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pymongo.database import Database
from qcodes.dataset import load_by_id
from qcodes.dataset.data_set import DataSet
from qcodes.dataset.experiment_container import Experiment

from qops.catalog.errors import InvalidSourceConfigError
from qops.catalog.models import ItemState
from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.export.hdf5 import read_hdf5
from qops.export.store import LocalDirStore
from qops.mongo import Document
from qops.qcodes.instrument import QHMetaData
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d, run_2d, run_empty, sha256


def _service(db: Database[Document], tmp_path: Path, **settings: float) -> SyncService:
    service = SyncService(db, LocalDirStore(tmp_path / "files"), SyncSettings(**settings))
    service.ensure_indexes()
    return service


def _lab_db(path: Path, *builders: Callable[[Experiment], DataSet]) -> list[int]:
    """Create a database at ``path`` with one run per builder; return their run ids."""
    conn, exp = create_db(path)
    run_ids = [build(exp).run_id for build in builders]
    conn.close()
    return run_ids


def _execute(path: Path, sql: str, *params: object) -> None:
    """Change the lab's file as another program (a viewer, a crashed writer) would."""
    writer = sqlite3.connect(path)
    writer.execute(sql, params)
    writer.commit()
    writer.close()


def _register(path: Path, settings: MongoSettings, name: str = "lab") -> None:
    SyncSources.create(
        name=name,
        backend_identifier="qcodes",
        config_data={
            "database_path": str(path),
            "set_up": "fridge-1",
            "static_attributes": {"project": "resonators", "lab": "A"},
        },
        default_scope="scope-1",
        settings=settings,
    )


def test_sync_source_new_runs_records_metadata_and_files(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    meta = QHMetaData("qh_meta", static_tags=["cool"], static_attributes={"project": "override"})
    try:
        from qcodes import Station

        station = Station(meta)
        meta.add_tags(["calibration"])
        meta.add_attributes({"qubit": "Q1"})
        first = run_1d(exp, name="sweep\nmore words")
        guid = first.guid
        assert station is not None
    finally:
        meta.close()
    run_2d(exp)
    load_by_id(first.run_id, conn=conn).add_metadata("inspectr_tag", "star")
    conn.close()
    before = sha256(db)
    _register(db, mongo_settings)
    service = _service(mongo_db, tmp_path)

    outcomes = service.sync_source("lab")

    assert [o.action for o in outcomes] == ["new", "new"]
    assert sha256(db) == before
    record = mongo_db.datasets.find_one({"alt_uid": guid})
    assert record is not None
    assert record["name"] == "sweep"
    assert record["description"].startswith("more words\n")
    assert "lab.db" in record["description"]
    assert guid in record["description"]
    assert record["ranking"] == 1
    assert record["status"] == "complete"
    assert record["scope"] == "scope-1"
    assert {"Gate voltage", "Current", "cool", "calibration"} <= set(record["tags"])
    assert record["tags"] == sorted(record["tags"])
    attributes = record["attributes"]
    assert attributes["set-up"] == "fridge-1"
    assert attributes["lab"] == "A"
    assert attributes["project"] == "override"  # qh_meta overrides the source's attribute
    assert attributes["qubit"] == "Q1"
    assert attributes["sample"] == "sample-1"
    (file,) = record["files"]
    assert file["version"] == 1
    assert file["size"] > 0
    assert len(file["md5"]) == 32
    reopened = read_hdf5(Path(file["location"]))
    assert set(reopened.data_vars) == {"z"}


def test_sync_source_twice_changes_nothing(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    _lab_db(db, run_1d)
    _register(db, mongo_settings)
    service = _service(mongo_db, tmp_path)
    service.sync_source("lab")
    snapshot = list(mongo_db.datasets.find())

    assert service.sync_source("lab") == []
    assert list(mongo_db.datasets.find()) == snapshot
    assert mongo_db.datasets.count_documents({}) == 1


def test_sync_source_star_added_later_updates_record_and_file(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    (run_id,) = _lab_db(db, run_1d)
    _register(db, mongo_settings)
    service = _service(mongo_db, tmp_path)
    service.sync_source("lab")

    # A viewer marks the run with a cross.
    _execute(db, "ALTER TABLE runs ADD COLUMN inspectr_tag TEXT")
    _execute(db, "UPDATE runs SET inspectr_tag = 'cross' WHERE run_id = ?", run_id)
    outcomes = service.sync_source("lab")

    assert [o.action for o in outcomes] == ["updated"]
    record = mongo_db.datasets.find_one({})
    assert record is not None
    assert record["ranking"] == -1
    (current,) = record["files"]
    assert read_hdf5(Path(current["location"])).attrs["inspectr_tag"] == "cross"


def test_sync_source_corrupt_snapshot_fails_alone_and_backs_off(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    bad, _ = _lab_db(db, run_1d, run_1d)
    _execute(db, "UPDATE runs SET snapshot = '{not json' WHERE run_id = ?", bad)
    _register(db, mongo_settings)
    service = _service(mongo_db, tmp_path, retry_base_s=3600)

    outcomes = service.sync_source("lab")

    assert [(o.run_id, o.action) for o in outcomes] == [(bad, "failed"), (bad + 1, "new")]
    assert outcomes[0].error is not None
    assert "snapshot is unreadable" in outcomes[0].error
    item = service.items.get("lab", bad)
    assert item is not None
    assert item.state is ItemState.FAILED
    assert item.attempts == 1
    assert item.last_error is not None
    assert "not JSON" in item.last_error
    assert service.sync_source("lab") == []  # backing off: not retried yet


def test_sync_source_zero_row_run_is_synced_with_empty_file(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    (run_id,) = _lab_db(db, run_empty)
    _register(db, mongo_settings)

    (outcome,) = _service(mongo_db, tmp_path).sync_source("lab")

    assert outcome.action == "new"
    assert outcome.run_id == run_id
    record = mongo_db.datasets.find_one({})
    assert record is not None
    assert read_hdf5(Path(record["files"][0]["location"]))["z"].size == 0


def test_sync_source_run_killed_half_way_is_live_then_abandoned(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    (run_id,) = _lab_db(db, run_1d)
    # As a writer killed before completing the run leaves it.
    _execute(
        db, "UPDATE runs SET is_completed = 0, completed_timestamp = NULL WHERE run_id = ?", run_id
    )
    _register(db, mongo_settings)

    (live,) = _service(mongo_db, tmp_path).sync_source("lab")
    assert live.action == "live"
    assert live.status == "live"
    mongo_db.sync_items.update_one(
        {"run_id": run_id},
        {"$set": {"last_change_at": live_since(mongo_db, run_id, seconds=-120)}},
    )
    (ended,) = _service(mongo_db, tmp_path, idle_timeout_s=60).sync_source("lab")

    assert ended.action == "abandoned"
    record = mongo_db.datasets.find_one({})
    assert record is not None
    assert record["status"] == "abandoned"
    assert _service(mongo_db, tmp_path, idle_timeout_s=60).sync_source("lab") == []


def live_since(db: Database[Document], run_id: int, seconds: float) -> object:
    from datetime import timedelta

    from qops.timeutil import as_utc

    item = db.sync_items.find_one({"run_id": run_id})
    assert item is not None
    return as_utc(item["last_change_at"]) + timedelta(seconds=seconds)


def test_sync_run_same_run_in_copied_database_is_not_duplicated(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    _lab_db(db, run_1d)
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    _register(db, mongo_settings, "lab")
    _register(copy, mongo_settings, "lab-copy")
    service = _service(mongo_db, tmp_path)

    service.sync_source("lab")
    service.sync_source("lab-copy")

    assert mongo_db.datasets.count_documents({}) == 1


def test_sources_create_bad_config_names_each_field(
    tmp_path: Path, mongo_settings: MongoSettings
) -> None:
    with pytest.raises(InvalidSourceConfigError) as error:
        SyncSources.create(
            name="lab",
            backend_identifier="qcodes",
            config_data={"database_path": str(tmp_path / "absent.db"), "set_up": " "},
            settings=mongo_settings,
        )
    message = str(error.value)
    assert "database_path" in message
    assert "no such file" in message
    assert "set_up" in message


def test_sync_source_qcodes_reads_same_database_afterwards(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    run_id = run_1d(exp).run_id
    _register(db, mongo_settings)
    _service(mongo_db, tmp_path).sync_source("lab")
    assert load_by_id(run_id, conn=conn).number_of_results == 50
    conn.close()
    assert json.loads(json.dumps(SyncSources.get("lab", settings=mongo_settings).config))


def test_service_follow_yields_work_then_stops_when_asked(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    (run_id,) = _lab_db(db, run_1d)
    _register(db, mongo_settings)
    stop = threading.Event()
    passes = _service(mongo_db, tmp_path).follow("lab", stop, poll_s=0.01)

    first = next(passes)
    stop.set()

    assert [(o.run_id, o.action) for o in first] == [(run_id, "new")]
    assert list(passes) == []


def test_sync_source_failed_run_is_retried_after_back_off_and_recovers(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    (run_id,) = _lab_db(db, run_1d)
    _execute(db, "UPDATE runs SET snapshot = '[1, 2' WHERE run_id = ?", run_id)
    _register(db, mongo_settings)
    service = _service(mongo_db, tmp_path, retry_base_s=0.2)
    assert [o.action for o in service.sync_source("lab")] == ["failed"]
    _execute(db, "UPDATE runs SET snapshot = NULL WHERE run_id = ?", run_id)

    deadline = time.monotonic() + 10
    outcomes = service.sync_source("lab")
    while not outcomes and time.monotonic() < deadline:  # waiting out the back-off
        outcomes = service.sync_source("lab")

    assert [o.action for o in outcomes] == ["new"]
    item = service.items.get("lab", run_id)
    assert item is not None
    assert item.state is ItemState.SYNCED
    assert item.last_error is None


def test_sync_source_locked_database_fails_run_with_lock_error_and_keeps_file(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    (run_id,) = _lab_db(db, run_1d)
    _register(db, mongo_settings)
    service = _service(mongo_db, tmp_path, busy_timeout_s=0.2)
    assert service.discover("lab").run_ids == [run_id]
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA journal_mode=DELETE")
    writer.execute("BEGIN EXCLUSIVE")  # a writer holding the file
    try:
        outcome = service.sync_run("lab", run_id)
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert outcome.action == "failed"
    assert outcome.error is not None
    assert "locked by another process" in outcome.error
    assert mongo_db.datasets.count_documents({}) == 0
