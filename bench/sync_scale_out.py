"""Benchmark of the fanned-out sync: 1 against 3 process workers on a PostgreSQL-backed server.

Usage: .venv/bin/python bench/sync_scale_out.py [--sources 100] [--runs 10] [--per-run 10]

Sets up what the scale-out tests set up (tests/flows/scale_out/cluster.py): Debian's
PostgreSQL in a temporary directory, ``prefect server start`` on it, the ``qops`` pool with
the deployments of prefect.yaml, and an embedded MongoDB. ``--sources`` QCoDeS databases of
``--runs`` small 1-D runs (50 points) each are registered; then, for 1 and for 3 workers
(each taking one flow run at a time), one ``sync-qcodes-fan-out`` run hands them out in
flow runs of ``--per-run`` sources, into a fresh MongoDB database each round. Wall time is
from the fan-out's creation until every child flow run is final; every child must complete
and every run be in the catalog once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.mongo import EmbeddedMongo, connect
from tests.flows.scale_out.cluster import (
    Api,
    Postgres,
    PrefectServer,
    Worker,
    set_up_pool,
    worker_env,
)
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d


def _databases(root: Path, sources: int, runs: int) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(sources):
        path = root / f"lab-{i:03d}.db"
        conn, exp = create_db(path)
        for _ in range(runs):
            run_1d(exp)
        conn.close()
        paths.append(path)
    return paths


def _round(
    workers: int,
    api: Api,
    server: PrefectServer,
    mongo_url: str,
    data_dir: Path,
    paths: list[Path],
    runs: int,
    per_run: int,
    log_dir: Path,
) -> tuple[float, int]:
    name = f"bench_{workers}w_{uuid.uuid4().hex[:6]}"
    settings = MongoSettings(mongodb_url=SecretStr(mongo_url), mongodb_db=name, data_dir=data_dir)
    for path in paths:
        SyncSources.create(
            name=path.stem,
            backend_identifier="qcodes",
            config_data={"database_path": str(path), "set_up": "bench"},
            settings=settings,
        )
    env = worker_env(
        server.api_url,
        {"QOPS_MONGODB_URL": mongo_url, "QOPS_MONGODB_DB": name, "QOPS_DATA_DIR": str(data_dir)},
    )
    pool = [Worker(f"bench-{workers}-{i}", env, log_dir) for i in range(workers)]
    try:
        time.sleep(5)  # let the workers import Prefect before the clock starts (not timed)
        start = time.perf_counter()
        parent = api.run("sync-qcodes-fan-out/sync-qcodes-fan-out", {"sources_per_run": per_run})
        assert api.wait_final(parent, 1800) == "COMPLETED"
        children = api.children(parent)
        states = [api.wait_final(c["id"], 3600) for c in children]
        wall = time.perf_counter() - start
    finally:
        for worker in pool:
            worker.stop()
    db = connect(settings)[name]
    synced = db.datasets.count_documents({})
    assert states == ["COMPLETED"] * len(children), states
    assert synced == len(paths) * runs, synced
    connect(settings).drop_database(name)
    return wall, synced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--per-run", type=int, default=10)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="qops-bench-scale-out-"))
    embedded = EmbeddedMongo(root / "data")
    postgres = Postgres()
    server: PrefectServer | None = None
    try:
        mongo = embedded.ensure_running()
        postgres.start()
        server = PrefectServer(root / "prefect", postgres.url).start()
        set_up_pool(server.api_url)
        api = Api(server.api_url)
        paths = _databases(root / "labs", args.sources, args.runs) if args.sources else []
        print(f"load average before: {os.getloadavg()}")
        results = {}
        for workers in (1, 3):
            wall, synced = _round(
                workers, api, server, mongo.url, root / "data", paths, args.runs, args.per_run, root
            )
            results[workers] = wall
            print(
                f"{workers} worker(s): {synced} runs in {wall:.1f} s, {synced / wall:.2f} runs/s;"
                f" load average {os.getloadavg()}"
            )
        print(f"ratio 3 workers / 1 worker (throughput): {results[1] / results[3]:.2f}x")
    finally:
        if server is not None:
            server.stop()
        postgres.stop()
        embedded.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
