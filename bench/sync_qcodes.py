"""Benchmarks of the QCoDeS sync: throughput against QCoDeS's own export, discovery, live delay.

Usage: .venv/bin/python bench/sync_qcodes.py [--quick]

Everything runs in one process on temporary files and a temporary embedded MongoDB, and
every throughput figure is a ratio measured in the same run (the machine is shared).

1. Throughput: per run, the reference path ``load_by_id(i).to_xarray_dataset()`` then
   ``.to_netcdf(engine="h5netcdf")`` against qops's export (read-only reader, xarray,
   HDF5) and against a full ``SyncService.sync_run`` (export plus catalog record).
2. Discovery with nothing new in a database of 10 000 runs (open, new-run query,
   metadata fingerprint, MongoDB cursor and due-items query).
3. Live sync: delay from a row committed by QCoDeS to a catalog file version holding it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import SecretStr
from pymongo import MongoClient
from qcodes.dataset import Measurement, load_by_id
from qcodes.dataset.sqlite.database import connect as qcodes_connect
from qcodes.parameters import ManualParameter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qops.catalog.models import ItemState
from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.export.hdf5 import write_hdf5
from qops.export.store import LocalDirStore
from qops.mongo import Document, EmbeddedMongo, connect
from qops.qcodes.reader import QcodesReader
from qops.qcodes.to_xarray import run_to_xarray
from tests.unit.qcodes.qcodes_dbs import create_db


def _median_s(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _build_runs(path: Path, big: bool) -> dict[str, int]:
    conn, exp = create_db(path)
    x = ManualParameter("x", unit="V")
    y = ManualParameter("y", unit="V")
    z = ManualParameter("z", unit="A")
    w = ManualParameter("w", unit="A")
    runs = {}

    meas = Measurement(exp=exp, name="1-D 1k")
    meas.register_parameter(x)
    meas.register_parameter(z, setpoints=(x,))
    with meas.run() as saver:
        xs = np.linspace(0, 1, 1000)
        saver.add_result((x, xs), (z, np.sin(xs)))
    runs["1-D 1 000 points"] = saver.run_id

    grids = [("2-D 300x300", 300, False)]
    if big:
        grids.append(("2-D 1000x1000, 2 dependents", 1000, True))
    for label, n, two in grids:
        meas = Measurement(exp=exp, name=label)
        meas.register_parameter(x)
        meas.register_parameter(y)
        meas.register_parameter(z, setpoints=(x, y))
        if two:
            meas.register_parameter(w, setpoints=(x, y))
        ys = np.linspace(-1, 1, n)
        with meas.run() as saver:
            for xv in np.linspace(0, 1, n):
                xs = np.full(n, xv)
                if two:
                    saver.add_result((x, xs), (y, ys), (z, xv * ys), (w, xv - ys))
                else:
                    saver.add_result((x, xs), (y, ys), (z, xv * ys))
        runs[label] = saver.run_id
    conn.close()
    return runs


def _source_and_service(
    work: Path, settings: MongoSettings, name: str, db_path: Path
) -> tuple[MongoClient[Document], SyncService]:
    SyncSources.create(
        name=name,
        backend_identifier="qcodes",
        config_data={"database_path": str(db_path), "set_up": "bench"},
        settings=settings,
    )
    client = connect(settings)
    service = SyncService(
        client[settings.mongodb_db], LocalDirStore(work / "files"), SyncSettings()
    )
    service.ensure_indexes()
    return client, service


def bench_throughput(work: Path, settings: MongoSettings, big: bool) -> list[str]:
    db_path = work / "throughput.db"
    runs = _build_runs(db_path, big)
    _client, service = _source_and_service(work, settings, "bench", db_path)
    lines = [
        "| run | reference (QCoDeS load + to_xarray + to_netcdf) | qops export | ratio "
        "| qops sync_run incl. catalog | ratio |",
        "|---|---|---|---|---|---|",
    ]
    qcodes_conn = qcodes_connect(db_path)  # the bench's own copy: QCoDeS may write to it
    for label, run_id in runs.items():
        repeat = 1 if "1000x1000" in label else 3
        out = work / "out.h5"

        def reference(run_id: int = run_id, out: Path = out) -> None:
            load_by_id(run_id, conn=qcodes_conn).to_xarray_dataset().to_netcdf(
                out, engine="h5netcdf"
            )

        def export(run_id: int = run_id, out: Path = out) -> None:
            with QcodesReader(db_path) as reader:
                info = reader.run_info(run_id)
                write_hdf5(run_to_xarray(info, reader.parameter_data(info), str(db_path)), out)

        def full_sync(run_id: int = run_id) -> None:
            service.items.collection.delete_many({})
            service.datasets.collection.delete_many({})
            outcome = service.sync_run("bench", run_id)
            assert outcome.action == "new", outcome

        ref_s = _median_s(reference, repeat)
        export_s = _median_s(export, repeat)
        sync_s = _median_s(full_sync, repeat)
        lines.append(
            f"| {label} | {ref_s * 1000:.0f} ms | {export_s * 1000:.0f} ms | "
            f"{ref_s / export_s:.1f}x | {sync_s * 1000:.0f} ms | {ref_s / sync_s:.1f}x |"
        )
    qcodes_conn.close()
    return lines


def _clone_runs(path: Path, total: int) -> None:
    """Grow a QCoDeS database to ``total`` runs by copying run 1's row and results table."""
    with sqlite3.connect(path) as conn:
        create_sql = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = (SELECT result_table_name FROM runs"
            " WHERE run_id = 1)"
        ).fetchone()[0]
        columns = [r[1] for r in conn.execute("PRAGMA table_info(runs)") if r[1] != "run_id"]
        for run_id in range(2, total + 1):
            table = f"results-1-{run_id}"
            conn.execute(create_sql.replace(create_sql.split('"')[1], table, 1))
            values = ", ".join(
                "?"
                if c
                in (
                    "guid",
                    "result_table_name",
                    "result_counter",
                    "captured_run_id",
                    "captured_counter",
                )
                else f'"{c}"'
                for c in columns
            )
            conn.execute(
                f"INSERT INTO runs (run_id, {', '.join(chr(34) + c + chr(34) for c in columns)}) "
                f"SELECT ?, {values} FROM runs WHERE run_id = 1",
                (run_id, *_clone_params(columns, run_id, table)),
            )


def _clone_params(columns: list[str], run_id: int, table: str) -> list[object]:
    chosen = {
        "guid": str(uuid.uuid4()),
        "result_table_name": table,
        "result_counter": run_id,
        "captured_run_id": run_id,
        "captured_counter": run_id,
    }
    return [chosen[c] for c in columns if c in chosen]


def bench_discovery(work: Path, settings: MongoSettings, total: int) -> list[str]:
    db_path = work / "discovery.db"
    conn, exp = create_db(db_path)
    x = ManualParameter("x")
    z = ManualParameter("z")
    meas = Measurement(exp=exp, name="small")
    meas.register_parameter(x)
    meas.register_parameter(z, setpoints=(x,))
    with meas.run() as saver:
        saver.add_result((x, 1.0), (z, 2.0))
    conn.close()
    _clone_runs(db_path, total)
    client, service = _source_and_service(work, settings, "many", db_path)
    assert service.discover("many").new == total
    # Stand-in for syncing all runs once: mark them synced with their fingerprints.
    with QcodesReader(db_path) as reader:
        fingerprints = reader.run_fingerprints()
    for run_id, fingerprint in fingerprints.items():
        service.items.collection.update_one(
            {"_id": f"many:{run_id}"},
            {"$set": {"state": ItemState.SYNCED.value, "meta_fingerprint": fingerprint}},
        )
    service.sources.collection.update_one({"_id": "many"}, {"$unset": {"open_runs": ""}})
    service.discover("many")  # records the file stamp
    lines = []
    for label, touch in (("file untouched", False), ("file touched, nothing new", True)):
        timings = []
        for _ in range(20):
            if touch:  # e.g. QCoDeS wrote to another run's table: the database must be opened
                os.utime(db_path)
            start = time.perf_counter()
            found = service.discover("many")
            timings.append(time.perf_counter() - start)
            assert found.run_ids == [], found
            assert found.new == 0, found
        lines.append(
            f"| discovery, {total} runs, {label} | median {statistics.median(timings) * 1000:.1f}"
            f" ms | min {min(timings) * 1000:.1f} ms | max {max(timings) * 1000:.1f} ms |"
        )
    floor = []
    for _ in range(20):
        start = time.perf_counter()
        raw = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        raw.execute("SELECT max(run_id) FROM runs").fetchone()
        raw.close()
        floor.append(time.perf_counter() - start)
    lines.append(
        f"| plain sqlite3 open + one query on the same file (SQLite parses the schema of all "
        f"{total} results tables) | median {statistics.median(floor) * 1000:.1f} ms | | |"
    )
    round_trips = []
    for _ in range(20):
        start = time.perf_counter()
        client[settings.mongodb_db]["sync_sources"].find_one({"_id": "many"})
        round_trips.append(time.perf_counter() - start)
    lines.append(
        f"| one MongoDB find_one round trip (discovery with an untouched file makes one) | "
        f"median {statistics.median(round_trips) * 1000:.1f} ms | | |"
    )
    return lines


class _CountingStore(LocalDirStore):
    """A local store that counts the bytes it writes (the live sync's disk cost)."""

    written = 0

    def put(self, local: Path, relative: str) -> str:
        self.written += local.stat().st_size
        return super().put(local, relative)


def bench_live(work: Path, settings: MongoSettings, rows: int) -> list[str]:
    db_path = work / "live.db"
    conn, _exp = create_db(db_path)
    conn.close()
    client, service = _source_and_service(work, settings, "live", db_path)
    store = _CountingStore(work / "live-files")
    service.store = store
    committed: dict[int, float] = {}
    stop = threading.Event()

    def write() -> None:
        writer_conn, writer_exp = create_db(db_path)
        x = ManualParameter("x")
        z = ManualParameter("z")
        meas = Measurement(exp=writer_exp, name="live")
        meas.register_parameter(x)
        meas.register_parameter(z, setpoints=(x,))
        rng = np.random.default_rng(0)
        with meas.run() as saver:
            for i in range(1, rows + 1):
                saver.add_result((x, float(i)), (z, float(i)))
                saver.flush_data_to_database()
                committed[i] = time.perf_counter()
                time.sleep(rng.uniform(0.2, 0.6))  # the measurement's own pace
        writer_conn.close()

    def follow() -> None:
        for _ in service.follow("live", stop, poll_s=0.5):
            pass

    follower = threading.Thread(target=follow)
    writer = threading.Thread(target=write)
    follower.start()
    writer.start()
    seen: dict[int, float] = {}
    datasets = client[settings.mongodb_db]["datasets"]
    while writer.is_alive() or len(seen) < rows:
        record = datasets.find_one({"source": "live"}, {"files": 1})
        if record and record.get("files"):
            latest_rows = record["files"][-1]["rows"]
            now = time.perf_counter()
            for i in list(committed):
                if i <= latest_rows and i not in seen:
                    seen[i] = now
        if not writer.is_alive() and len(seen) >= rows:
            break
        time.sleep(0.02)
    stop.set()
    follower.join()
    writer.join()
    delays = [seen[i] - committed[i] for i in committed]
    kept = [p for p in (work / "live-files").rglob("*") if p.is_file()]
    final = datasets.find_one({"source": "live"}, {"files": 1})
    final_size = final["files"][-1]["size"] if final else 0
    return [
        f"| live sync, {rows} rows at 0.2-0.6 s, poll 0.5 s "
        f"| median {statistics.median(delays):.2f} s | max {max(delays):.2f} s |",
        f"| live sync, bytes written / final file | {store.written / final_size:.2f} "
        f"| {len(kept)} file(s) kept |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the 1000x1000 run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qops-bench-"))
    embedded = EmbeddedMongo(work / "data")
    server = embedded.ensure_running()
    settings = MongoSettings(
        mongodb_url=SecretStr(server.url), mongodb_db="bench", data_dir=work / "data"
    )
    try:
        print("\n".join(bench_throughput(work, settings, big=not args.quick)))
        print("\n".join(bench_discovery(work, settings, 10_000)))
        print("\n".join(bench_live(work, settings, 20)))
    finally:
        embedded.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
