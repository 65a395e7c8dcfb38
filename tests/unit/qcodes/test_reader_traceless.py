"""How the reader opens a WAL database: no side file created, never a torn read; clear errors."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from qcodes.dataset import Measurement
from qcodes.dataset.experiment_container import load_experiment
from qcodes.dataset.sqlite.database import connect
from qcodes.parameters import ManualParameter

from qops.qcodes.errors import (
    DatabaseIsDirectoryError,
    RunReadError,
    UnsupportedSchemaVersionError,
)
from qops.qcodes.reader import QcodesReader, close_kept_connections
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d, sha256


def listing(folder: Path) -> dict[str, tuple[int, str | None]]:
    return {
        p.name: (p.stat().st_size, sha256(p) if p.suffix != ".db-shm" else None)
        for p in sorted(folder.iterdir())
    }


def wal_db(path: Path, runs: int = 1, n: int = 20) -> None:
    """A WAL-mode QCoDeS database whose writer has closed (no ``-wal`` or ``-shm`` left)."""
    conn, exp = create_db(path)
    conn.execute("PRAGMA journal_mode=WAL")
    for _ in range(runs):
        run_1d(exp, n=n)
    conn.close()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_reader_directory_as_database_says_directory(tmp_path: Path) -> None:
    with pytest.raises(DatabaseIsDirectoryError, match="is a directory, not a database file"):
        QcodesReader(tmp_path).open()


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("{not json", "run_description is unreadable: not JSON"),
        ("[1, 2]", "run_description is unreadable: expected a JSON object, found list"),
        ('{"version": 3}', "run_description is unreadable: unknown shape: no key"),
    ],
    ids=["invalid-json", "not-an-object", "unknown-shape"],
)
def test_reader_broken_run_description_raises_run_read_error(
    tmp_path: Path, stored: str, expected: str
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    run_1d(exp)
    conn.execute("UPDATE runs SET run_description = ? WHERE run_id = 1", (stored,))
    conn.commit()
    conn.close()
    with QcodesReader(db) as reader:
        info = reader.run_info(1)
        with pytest.raises(RunReadError, match=expected) as error:
            reader.parameter_data(info)
    assert str(db) in str(error.value)
    assert "run 1:" in str(error.value)


def test_reader_closed_wal_database_creates_no_side_files(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    wal_db(db)
    before = listing(tmp_path)
    with QcodesReader(db) as reader:
        assert [r.run_id for r in reader.runs_after(0)] == [1]
        data = reader.parameter_data(reader.run_info(1))
        assert listing(tmp_path) == before
    assert listing(tmp_path) == before
    np.testing.assert_array_equal(data["z"]["x"], np.arange(20) * 0.1)


def test_reader_opened_before_writer_starts_sees_its_new_run(tmp_path: Path) -> None:
    """Opened with no ``-wal`` (``immutable``), then the lab starts: new rows are seen."""
    db = tmp_path / "lab.db"
    wal_db(db)
    with QcodesReader(db) as reader:
        assert [r.run_id for r in reader.runs_after(0)] == [1]
        conn = connect(db)
        try:
            run_1d(load_experiment(1, conn=conn), n=7)
            assert [r.run_id for r in reader.runs_after(0)] == [1, 2]
            info = reader.run_info(2)
            assert len(reader.parameter_data(info)["z"]["z"]) == 7
        finally:
            conn.close()


def test_reader_crashed_writer_wal_without_shm_reads_private_copy(tmp_path: Path) -> None:
    """A ``-wal`` left without its ``-shm``: read from a private copy, nothing created."""
    source = tmp_path / "writer"
    source.mkdir()
    db = source / "lab.db"
    conn, exp = create_db(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the run's rows stay in the -wal
    run_1d(exp, n=30)
    lab = tmp_path / "lab"
    lab.mkdir()
    shutil.copyfile(db, lab / "lab.db")  # what a crash leaves, once the -shm is removed
    shutil.copyfile(source / "lab.db-wal", lab / "lab.db-wal")
    conn.close()
    before = listing(lab)
    assert sorted(before) == ["lab.db", "lab.db-wal"]
    assert before["lab.db-wal"][0] > 0

    with QcodesReader(lab / "lab.db") as reader:
        data = reader.parameter_data(reader.run_info(1))
        snapshot = reader._snapshot_dir
        assert snapshot is not None
        assert snapshot.is_dir()

    assert listing(lab) == before
    assert not snapshot.exists()
    np.testing.assert_array_equal(data["z"]["z"], np.sin(np.arange(30)))


def test_reader_while_qcodes_writes_and_checkpoints_reads_only_whole_rows(tmp_path: Path) -> None:
    """QCoDeS writes a run in flushed batches, checkpointing every few pages, while two
    readers read it: one opened before the writer started (``immutable``, then moved to
    WAL) and a fresh one per read. Every read is a prefix of what QCoDeS wrote."""
    db = tmp_path / "lab.db"
    wal_db(db)
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            conn = connect(db)
            conn.execute("PRAGMA wal_autocheckpoint=2")
            meas = Measurement(exp=load_experiment(1, conn=conn), name="live")
            x, z = ManualParameter("x"), ManualParameter("z")
            meas.register_parameter(x)
            meas.register_parameter(z, setpoints=(x,))
            with meas.run() as saver:
                for i in range(3000):
                    saver.add_result((x, float(i)), (z, 2.0 * i))
                    if i % 50 == 49:
                        saver.flush_data_to_database(block=True)
            conn.close()
        except BaseException as e:  # reported by the test's thread
            errors.append(e)
        finally:
            done.set()

    early = QcodesReader(db).open()
    assert early._mode == "immutable"
    writer = threading.Thread(target=write)
    writer.start()
    lengths: set[int] = set()
    try:
        while not done.is_set():
            for reader in (early, QcodesReader(db).open()):
                if len(reader.runs_after(1)) == 1:
                    # Empty until QCoDeS has stored the run's parameters.
                    none = {"x": np.empty(0), "z": np.empty(0)}
                    data = reader.parameter_data(reader.run_info(2)).get("z", none)
                    np.testing.assert_array_equal(data["x"], np.arange(len(data["x"])))
                    np.testing.assert_array_equal(data["z"], 2.0 * data["x"])
                    lengths.add(len(data["x"]))
                if reader is not early:
                    reader.close()
        assert early._mode == "wal"
    finally:
        writer.join()
        early.close()
    assert not errors
    assert len(lengths) > 3


def test_reader_reuse_keeps_connection_and_still_sees_every_change(tmp_path: Path) -> None:
    """``reuse=True``: the next reader of the file takes the kept connection (no schema
    parse); a run, a metadata change and a writer's ``-wal`` are all still seen."""
    db = tmp_path / "lab.db"
    wal_db(db)
    before = listing(tmp_path)
    try:
        with QcodesReader(db, reuse=True) as reader:
            first = reader.conn
            fingerprint = reader.metadata_fingerprint()
        assert listing(tmp_path) == before
        with QcodesReader(db, reuse=True) as reader:
            assert reader.conn is first
            assert reader.metadata_fingerprint() == fingerprint
        conn = connect(db)
        run_1d(load_experiment(1, conn=conn), n=5)
        with QcodesReader(db, reuse=True) as reader:
            assert [r.run_id for r in reader.runs_after(0)] == [1, 2]
            assert reader.metadata_fingerprint() != fingerprint
            fingerprint = reader.metadata_fingerprint()
        conn.execute("ALTER TABLE runs ADD COLUMN inspectr_tag TEXT")
        conn.execute("UPDATE runs SET inspectr_tag = 'star' WHERE run_id = 1")
        conn.commit()
        with QcodesReader(db, reuse=True) as reader:
            assert reader.metadata_fingerprint() != fingerprint
            assert reader.run_info(1).metadata == {"inspectr_tag": "star"}
        conn.execute("PRAGMA user_version = 99")  # e.g. a newer QCoDeS upgraded the file
        conn.commit()
        with pytest.raises(UnsupportedSchemaVersionError, match="schema version 99"):
            QcodesReader(db, reuse=True).open()
        conn.close()
    finally:
        close_kept_connections()
    # Once released, the lab's last connection cleans up as always.
    lab = sqlite3.connect(db)
    lab.execute("SELECT count(*) FROM runs").fetchone()
    lab.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.db"]
