"""Live sync of a run QCoDeS is still writing, without touching the lab's file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pymongo.database import Database
from qcodes.dataset import Measurement, load_by_id
from qcodes.parameters import ManualParameter

from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.export.hdf5 import read_hdf5, write_hdf5
from qops.export.store import LocalDirStore
from qops.mongo import Document
from tests.unit.qcodes.qcodes_dbs import create_db, sha256
from tests.unit.qcodes.test_reader import assert_equals_qcodes


def _lab_files(db: Path) -> dict[str, str]:
    """Digests of the database and of its journal files, as far as they exist."""
    return {p.name: sha256(p) for p in db.parent.glob(db.name + "*") if p.is_file()}


def test_sync_run_while_qcodes_writes_is_live_then_complete_and_file_untouched(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    SyncSources.create(
        name="lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(db), "set_up": "fridge"},
        settings=mongo_settings,
    )
    service = SyncService(mongo_db, LocalDirStore(tmp_path / "files"), SyncSettings())
    service.ensure_indexes()
    x = ManualParameter("x", unit="V")
    z = ManualParameter("z", unit="A")
    meas = Measurement(exp=exp, name="live sweep")
    meas.register_parameter(x)
    meas.register_parameter(z, setpoints=(x,))
    versions = []
    with meas.run() as saver:
        run_id = saver.run_id
        for chunk in range(3):
            for i in range(chunk * 5, chunk * 5 + 5):
                saver.add_result((x, i), (z, np.cos(i)))
            saver.flush_data_to_database()
            before = _lab_files(db)
            (outcome,) = service.sync_source("lab")
            assert _lab_files(db) == before  # the sync wrote nothing next to the writer
            assert outcome.action == "live"
            record = mongo_db.datasets.find_one({})
            assert record is not None
            assert record["status"] == "live"
            latest = record["files"][-1]
            assert read_hdf5(Path(latest["location"]))["z"].size == 5 * (chunk + 1)
            versions.append(latest["version"])
        # Nothing new: the live run is checked but neither record nor file changes.
        assert [o.action for o in service.sync_source("lab")] == ["unchanged"]
    assert versions == [1, 2, 3]

    (completed,) = service.sync_source("lab")

    assert completed.action == "updated"
    record = mongo_db.datasets.find_one({})
    assert record is not None
    assert record["status"] == "complete"
    final = read_hdf5(Path(record["files"][-1]["location"]))
    expected = load_by_id(run_id, conn=conn).to_xarray_dataset()
    conn.close()
    write_hdf5(expected, tmp_path / "reference.h5")
    assert_equals_qcodes(final, read_hdf5(tmp_path / "reference.h5"))
