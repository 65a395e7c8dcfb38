"""The read-only reader: QCoDeS-equal data for every kind of run, at schema versions 8 and 9
(older versions: ``test_schema_versions.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from qcodes.dataset import load_by_id
from qcodes.dataset.sqlite.queries import get_parameter_data

from qops.export.hdf5 import read_hdf5, write_hdf5
from qops.qcodes.errors import (
    DatabaseLockedError,
    DatabaseNotFoundError,
    NotQcodesDatabaseError,
    NotSqliteError,
    UnsupportedSchemaVersionError,
)
from qops.qcodes.reader import QcodesReader
from qops.qcodes.to_xarray import run_to_xarray
from tests.unit.qcodes.qcodes_dbs import RUN_KINDS, create_db, sha256


def assert_equals_qcodes(mine: xr.Dataset, expected: xr.Dataset) -> None:
    """Same variables, coordinates, dtypes, attributes and values.

    QCoDeS's loader renders every stored float as text with 15 significant digits (SQLite's
    conversion before its per-value converter), so it returns 0.3 where 0.30000000000000004
    was stored; the sync keeps the stored double, so floats are compared to 1e-14 relative.
    """
    if "multi_index" in expected.indexes:
        assert "multi_index" in mine.indexes
        # A MultiIndex compares exactly; compare its levels as plain coordinates instead.
        mine, expected = mine.reset_index("multi_index"), expected.reset_index("multi_index")
    xr.testing.assert_allclose(mine, expected, rtol=1e-14, atol=0)
    assert_same_attrs(mine.attrs, expected.attrs)
    assert set(mine.variables) == set(expected.variables)
    for name, variable in expected.variables.items():
        assert mine[name].dtype == variable.dtype, name
        assert mine[name].dims == variable.dims, name
        assert_same_attrs(mine[name].attrs, variable.attrs)


def assert_same_attrs(mine: dict[Any, Any], expected: dict[Any, Any]) -> None:
    assert mine.keys() == expected.keys()
    for key, value in expected.items():
        assert np.array_equal(np.asarray(mine[key]), np.asarray(value)), key


@pytest.mark.parametrize("version", [8, 9])
@pytest.mark.parametrize("kind", sorted(RUN_KINDS))
def test_reader_run_kind_hdf5_equals_qcodes_xarray(tmp_path: Path, version: int, kind: str) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db, version)
    run_id = RUN_KINDS[kind](exp).run_id
    # A fresh load through the same connection: QCoDeS does not upgrade it then.
    expected = load_by_id(run_id, conn=conn).to_xarray_dataset()
    conn.close()
    before = sha256(db)

    with QcodesReader(db) as reader:
        assert reader.schema_version == version
        info = reader.run_info(run_id)
        data = reader.parameter_data(info)
        written = write_hdf5(run_to_xarray(info, data, str(db)), tmp_path / "run.h5")

    # The reference path: QCoDeS's dataset written by QCoDeS's own netCDF writer.
    write_hdf5(expected, tmp_path / "reference.h5")
    assert_equals_qcodes(read_hdf5(tmp_path / "run.h5"), read_hdf5(tmp_path / "reference.h5"))
    assert written.size == (tmp_path / "run.h5").stat().st_size
    assert sha256(db) == before
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == version


def test_reader_parameter_data_equals_qcodes_get_parameter_data(tmp_path: Path) -> None:
    conn, exp = create_db(tmp_path / "lab.db")
    dataset = RUN_KINDS["two-dependents"](exp)
    expected = get_parameter_data(conn, dataset.table_name)
    conn.close()
    with QcodesReader(tmp_path / "lab.db") as reader:
        data = reader.parameter_data(reader.run_info(dataset.run_id))
    assert data.keys() == expected.keys()
    for top, arrays in expected.items():
        assert data[top].keys() == arrays.keys()
        for name, array in arrays.items():
            assert data[top][name].dtype == array.dtype
            assert data[top][name].tolist() == array.tolist()


def test_reader_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(DatabaseNotFoundError, match="no such file"):
        QcodesReader(tmp_path / "absent.db").open()
    assert not (tmp_path / "absent.db").exists()


def test_reader_not_sqlite_file_raises_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are lab notes, not a database\n" * 100)
    before = sha256(path)
    with pytest.raises(NotSqliteError, match="not an SQLite database"):
        QcodesReader(path).open()
    assert sha256(path) == before


def test_reader_sqlite_without_qcodes_tables_names_missing_tables(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER)")
    with pytest.raises(NotQcodesDatabaseError, match="table experiments"):
        QcodesReader(path).open()


def test_reader_newer_version_names_version_and_leaves_file(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    conn, _ = create_db(path)
    conn.close()
    with sqlite3.connect(path) as writer:  # as a future QCoDeS would mark its schema
        writer.execute("PRAGMA user_version = 10")
    before = sha256(path)
    with pytest.raises(UnsupportedSchemaVersionError, match="schema version 10 is not supported"):
        QcodesReader(path).open()
    assert sha256(path) == before


def test_reader_locked_database_raises_locked_after_timeout(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    conn, exp = create_db(path)
    RUN_KINDS["1d"](exp)
    conn.close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=DELETE")
    writer.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseLockedError, match="locked by another process"):
            QcodesReader(path, busy_timeout_s=0.2).open()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.mark.parametrize("with_nan", [False, True])
def test_reader_dependents_sharing_rows_read_in_one_pass_equal_qcodes(
    tmp_path: Path, with_nan: bool
) -> None:
    """Two dependents in the same rows, each also alone in rows: every tree holds exactly
    the rows where its own dependent is set. NaN (stored by QCoDeS as text, so read through
    sqlite3) is kept as a value, NULL dropped; without NaN the Arrow driver reads it."""
    from qcodes.dataset import Measurement
    from qcodes.parameters import ManualParameter

    conn, exp = create_db(tmp_path / "lab.db")
    x, z, w = (ManualParameter(n, unit="V") for n in ("x", "z", "w"))
    meas = Measurement(exp=exp, name="shared rows")
    meas.register_parameter(x)
    meas.register_parameter(z, setpoints=(x,))
    meas.register_parameter(w, setpoints=(x,))
    with meas.run() as saver:
        for i in range(200):
            nan = with_nan and i % 7 == 0
            saver.add_result((x, i), (z, np.nan if nan else i * 0.5), (w, -i))
        saver.add_result((x, 1000.0), (z, 1.5))
        saver.add_result((x, 2000.0), (w, np.nan if with_nan else 2.5))
    expected = get_parameter_data(conn, saver.dataset.table_name)
    conn.close()

    with QcodesReader(tmp_path / "lab.db") as reader:
        data = reader.parameter_data(reader.run_info(saver.run_id))
        assert (reader.arrow_windows == 0) is with_nan

    assert data.keys() == expected.keys() == {"z", "w"}
    for top, arrays in expected.items():
        assert data[top].keys() == arrays.keys()
        for name, array in arrays.items():
            assert data[top][name].dtype == array.dtype
            np.testing.assert_array_equal(data[top][name], array)
    assert len(data["z"]["z"]) == len(data["w"]["w"]) == 201
    assert bool(np.isnan(data["z"]["z"][0])) is with_nan
    assert bool(np.isnan(data["w"]["w"][-1])) is with_nan
