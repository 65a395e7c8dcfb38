"""A run of 15 M values syncs with peak memory under three times its raw data size."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pymongo.database import Database
from qcodes.dataset import Measurement
from qcodes.parameters import ManualParameter

from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.export.hdf5 import read_hdf5
from qops.mongo import Document
from tests.unit.qcodes.qcodes_dbs import create_db

NX, NY = 2_500, 2_000
POINTS = NX * NY  # x, y and z per point: 15 M float64 values
RAW_BYTES = 3 * POINTS * 8


def _large_run(path: Path) -> int:
    """A 2-D map declared by QCoDeS (shape set as QCoDeS sweeps do), rows bulk-inserted.

    QCoDeS creates the run, its description and the first row; the remaining rows are
    inserted with plain sqlite3 exactly as QCoDeS stores them (one REAL per column), which
    takes seconds instead of minutes through ``add_result``.
    """
    conn, exp = create_db(path)
    x = ManualParameter("x", unit="V")
    y = ManualParameter("y", unit="V")
    z = ManualParameter("z", unit="A")
    meas = Measurement(exp=exp, name="large map")
    meas.register_parameter(x)
    meas.register_parameter(y)
    meas.register_parameter(z, setpoints=(x, y))
    meas.set_shapes({"z": (NX, NY)})
    with meas.run() as saver:
        saver.add_result((x, 0.0), (y, 0.0), (z, 0.0))
        run_id, table = saver.run_id, saver.dataset.table_name
    conn.close()
    with sqlite3.connect(path) as writer:
        writer.executemany(
            f'INSERT INTO "{table}" (x, y, z) VALUES (?, ?, ?)',
            ((i // NY * 1e-3, i % NY * 1e-3, (i % 977) * 0.5) for i in range(1, POINTS)),
        )
    return run_id


@pytest.mark.slow
def test_sync_run_fifteen_million_values_peak_memory_below_three_times_raw(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    db = tmp_path / "big.db"
    run_id = _large_run(db)
    SyncSources.create(
        name="big",
        backend_identifier="qcodes",
        config_data={"database_path": str(db), "set_up": "fridge"},
        settings=mongo_settings,
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.catalog.measure_sync_memory",
            "big",
            str(run_id),
            str(tmp_path / "files"),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
        cwd=Path(__file__).parents[3],
        timeout=240,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])

    assert measured["action"] == "new", measured
    assert measured["peak_bytes"] <= 3 * RAW_BYTES, measured
    record = mongo_db.datasets.find_one({})
    assert record is not None
    data = read_hdf5(Path(record["files"][0]["location"]))
    assert data["z"].shape == (NX, NY)
    assert float(data["z"][-1, -1]) == ((POINTS - 1) % 977) * 0.5
