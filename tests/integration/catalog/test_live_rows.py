"""Live runs lose no row (a paused, resumed or killed writer) and cost bounded disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import numpy as np
import xarray as xr
from pymongo.database import Database
from qcodes.dataset import Measurement, load_by_id
from qcodes.parameters import ManualParameter

from qops.catalog.models import DatasetStatus
from qops.catalog.service import RunOutcome, SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.export.hdf5 import read_hdf5
from qops.export.store import LocalDirStore
from qops.mongo import Document
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d

REPO = Path(__file__).resolve().parents[3]


class CountingStore(LocalDirStore):
    """A local store that also counts the bytes it writes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.written = 0

    def put(self, local: Path, relative: str) -> str:
        self.written += local.stat().st_size
        return super().put(local, relative)


def _register(db: Path, settings: MongoSettings) -> None:
    SyncSources.create(
        name="lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(db), "set_up": "fridge"},
        settings=settings,
    )


def _record(mongo_db: Database[Document]) -> dict[str, object]:
    record = mongo_db.datasets.find_one({})
    assert record is not None
    return record


def _rows_in_file(mongo_db: Database[Document]) -> int:
    (current,) = _record(mongo_db)["files"]  # type: ignore[misc]
    return int(read_hdf5(Path(current["location"]))["z"].size)


def _wait_for(stdout: IO[str], line: str) -> None:
    """Read the writer's output up to ``line`` (QCoDeS prints its own lines too)."""
    for got in stdout:
        if got.strip() == line:
            return
    raise AssertionError(f"the writer ended before printing {line!r}")


def _sync_until(
    service: SyncService, status: DatasetStatus, deadline_s: float = 30.0
) -> list[RunOutcome]:
    """Sync every 0.1 s until the run reaches ``status`` (the idle timeout is short)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        outcomes = service.sync_source("lab")
        if any(o.status is status for o in outcomes):
            return outcomes
        time.sleep(0.1)
    raise AssertionError(f"run did not become {status} within {deadline_s} s")


def test_sync_abandoned_run_resumed_by_writer_syncs_every_later_row(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    _register(db, mongo_settings)
    service = SyncService(
        mongo_db, LocalDirStore(tmp_path / "files"), SyncSettings(idle_timeout_s=0.3)
    )
    service.ensure_indexes()
    x, z = ManualParameter("x"), ManualParameter("z")
    meas = Measurement(exp=exp, name="paused sweep")
    meas.register_parameter(x)
    meas.register_parameter(z, setpoints=(x,))
    with meas.run() as saver:
        for i in range(40):
            saver.add_result((x, i), (z, np.sin(i)))
        saver.flush_data_to_database()
        assert [o.action for o in service.sync_source("lab")] == ["live"]
        _sync_until(service, DatasetStatus.ABANDONED)  # the writer paused past the timeout
        assert _record(mongo_db)["status"] == "abandoned"
        assert _rows_in_file(mongo_db) == 40

        for i in range(40, 100):  # ... and resumed
            saver.add_result((x, i), (z, np.sin(i)))
        saver.flush_data_to_database()
        (resumed,) = service.sync_source("lab")
        assert resumed.status is DatasetStatus.LIVE
        assert _record(mongo_db)["status"] == "live"
        _sync_until(service, DatasetStatus.ABANDONED)
        assert _rows_in_file(mongo_db) == 100
    conn.close()

    (completed,) = service.sync_source("lab")
    assert completed.status is DatasetStatus.COMPLETE
    assert _rows_in_file(mongo_db) == 100
    # Only the final file is left: the live one was replaced, then deleted.
    (folder,) = (tmp_path / "files" / "datasets" / "default").iterdir()
    assert [p.name for p in folder.iterdir()] == [f"{folder.name}.h5"]


_WRITER = """
import sys
import time
import numpy as np
from qcodes.dataset import Measurement, load_by_id
from qcodes.parameters import ManualParameter
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d

conn, exp = create_db(sys.argv[1])
x, z = ManualParameter("x"), ManualParameter("z")
meas = Measurement(exp=exp, name="crashing sweep")
meas.register_parameter(x)
meas.register_parameter(z, setpoints=(x,))
with meas.run() as saver:
    for i in range(40):
        saver.add_result((x, i), (z, np.sin(i)))
    saver.flush_data_to_database()
    print("committed 40", flush=True)
    sys.stdin.readline()  # paused until the sync has abandoned the run
    for i in range(40, 100):
        saver.add_result((x, i), (z, np.sin(i)))
        if i % 10 == 9:
            saver.flush_data_to_database()
    print("committed 100", flush=True)
    time.sleep(3600)  # killed here, before completing the run
"""


def test_sync_writer_paused_then_killed_leaves_every_committed_row_in_catalog(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    create_db(db)[0].close()
    _register(db, mongo_settings)
    service = SyncService(
        mongo_db, LocalDirStore(tmp_path / "files"), SyncSettings(idle_timeout_s=0.3)
    )
    service.ensure_indexes()
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert writer.stdout is not None
        assert writer.stdin is not None
        _wait_for(writer.stdout, "committed 40")
        _sync_until(service, DatasetStatus.ABANDONED)
        assert _rows_in_file(mongo_db) == 40
        writer.stdin.write("go\n")
        writer.stdin.flush()
        _wait_for(writer.stdout, "committed 100")
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()

    _sync_until(service, DatasetStatus.ABANDONED)

    assert _record(mongo_db)["status"] == "abandoned"
    assert _rows_in_file(mongo_db) == 100
    item = service.items.get("lab", 1)
    assert item is not None
    assert item.data_rows == 100


def test_sync_live_run_every_poll_writes_at_most_twice_final_size_and_one_file(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    _register(db, mongo_settings)
    store = CountingStore(tmp_path / "files")
    # No allowance: every live rewrite counts against the bound.
    service = SyncService(mongo_db, store, SyncSettings(live_write_allowance_bytes=0))
    service.ensure_indexes()
    x, z = ManualParameter("x"), ManualParameter("z")
    meas = Measurement(exp=exp, name="long sweep")
    meas.register_parameter(x)
    meas.register_parameter(z, setpoints=(x,))
    kept: list[int] = []
    with meas.run() as saver:
        for poll in range(60):
            for i in range(poll * 200, poll * 200 + 200):
                saver.add_result((x, float(i)), (z, np.sin(i)))
            saver.flush_data_to_database()
            service.sync_source("lab")
            files = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
            kept.append(len(files))
            record = _record(mongo_db)
            (current,) = record["files"]  # type: ignore[misc]
            with xr.open_dataset(current["location"], engine="h5netcdf") as opened:
                assert 0 < opened["z"].size <= (poll + 1) * 200
    conn.close()
    service.sync_source("lab")

    final = _record(mongo_db)
    (current,) = final["files"]  # type: ignore[misc]
    assert final["status"] == "complete"
    assert _rows_in_file(mongo_db) == 60 * 200
    ratio = store.written / current["size"]
    print(f"bytes written / final size: {ratio:.2f}")
    assert ratio <= 2.0
    assert max(kept) == 1
    assert [p.name for p in (tmp_path / "files").rglob("*") if p.is_file()] == [current["name"]]


def test_sync_metadata_added_after_first_sync_rewrites_file_to_agree_with_record(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    dataset = run_1d(exp)
    dataset.add_metadata("inspectr_tag", "star")
    _register(db, mongo_settings)
    service = SyncService(mongo_db, LocalDirStore(tmp_path / "files"), SyncSettings())
    service.ensure_indexes()
    service.sync_source("lab")
    assert _record(mongo_db)["ranking"] == 1

    # A viewer crosses the run out and the lab adds a note, after the first sync.
    again = load_by_id(dataset.run_id, conn=conn)
    again.add_metadata("inspectr_tag", "cross")
    again.add_metadata("cooldown", 7)
    conn.close()
    (outcome,) = service.sync_source("lab")

    assert outcome.action == "updated"
    record = _record(mongo_db)
    (current,) = record["files"]  # type: ignore[misc]
    assert current["version"] == 2
    attrs = read_hdf5(Path(current["location"])).attrs
    assert record["ranking"] == -1
    assert attrs["inspectr_tag"] == "cross"
    assert record["attributes"]["cooldown"] == "7"  # type: ignore[index]
    assert attrs["cooldown"] == 7
    assert [p.name for p in Path(current["location"]).parent.iterdir()] == [current["name"]]


def test_sync_run_abandoned_under_older_version_is_still_resumed(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    _register(db, mongo_settings)
    settings = SyncSettings(idle_timeout_s=0.3)
    service = SyncService(mongo_db, LocalDirStore(tmp_path / "files"), settings)
    service.ensure_indexes()
    x, z = ManualParameter("x"), ManualParameter("z")
    meas = Measurement(exp=exp, name="paused sweep")
    meas.register_parameter(x)
    meas.register_parameter(z, setpoints=(x,))
    with meas.run() as saver:
        for i in range(40):
            saver.add_result((x, i), (z, np.sin(i)))
        saver.flush_data_to_database()
        _sync_until(service, DatasetStatus.ABANDONED)
        # As a source registered and synced by a version without abandoned-run markers.
        mongo_db.sync_sources.update_one({"_id": "lab"}, {"$unset": {"abandoned_runs": ""}})
        for i in range(40, 100):
            saver.add_result((x, i), (z, np.sin(i)))
        saver.flush_data_to_database()

        (resumed,) = service.sync_source("lab")

        assert resumed.status is DatasetStatus.LIVE
        _sync_until(service, DatasetStatus.ABANDONED)
        assert _rows_in_file(mongo_db) == 100
    conn.close()
