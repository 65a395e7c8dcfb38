"""The sync and the calibration on a Prefect server on PostgreSQL with three process workers,
and the faults of a lab: a worker killed, MongoDB away, the Prefect server restarted."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pymongo.database import Database

from qops.backend.state import DEFAULT_LEASE_S, MongoBackendStateStore
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.mongo import Document, EmbeddedMongo, database
from qops.protocol.messages import BackendState
from qops.timeutil import as_utc, utc_now
from tasks.sync import DISK_LIMIT, source_limit_name
from tests.flows.scale_out.cluster import Worker, wait_for
from tests.flows.scale_out.conftest import ZOMBIE_WITHIN_S, Cluster
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d, run_2d

pytestmark = [pytest.mark.scale_out, pytest.mark.slow, pytest.mark.timeout(600)]

CHIP = "chip-a"
"""The chip of docs/examples/backend.yaml, the calibrate deployment's default."""


def _source(mongo: MongoSettings, tmp_path: Path, name: str, runs: int, big: bool = False) -> None:
    db = tmp_path / f"{name}.db"
    conn, exp = create_db(db)
    for _ in range(runs):
        (run_2d if big else run_1d)(exp)
    conn.close()
    SyncSources.create(
        name=name,
        backend_identifier="qcodes",
        config_data={"database_path": str(db), "set_up": "fridge"},
        settings=mongo,
    )


def _synced_once(db: Database[Document], source: str, runs: int) -> None:
    """The catalog has every run of the source, each exactly once."""
    items = list(db.sync_items.find({"source": source}))
    assert sorted(i["run_id"] for i in items) == list(range(1, runs + 1))
    assert {i["state"] for i in items} == {"synced"}
    uuids = {i["dataset_uuid"] for i in items}
    assert len(uuids) == runs
    assert {d["_id"] for d in db.datasets.find({"source": source}, {"_id": 1})} == uuids


def test_fan_out_hands_sources_to_three_workers_each_run_synced_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    sources = [f"fan-{i}" for i in range(6)]
    for name in sources:
        _source(cluster.mongo, tmp_path, name, runs=3)

    parent = cluster.api.run("sync-qcodes-fan-out/sync-qcodes-fan-out", {"sources_per_run": 2})

    assert cluster.api.wait_final(parent, 240) == "COMPLETED"
    children = cluster.api.children(parent)
    assert sorted(len(c["parameters"]["sources"]) for c in children) == [2, 2, 2]
    assert sorted(s for c in children for s in c["parameters"]["sources"]) == sources
    for child in children:
        assert cluster.api.wait_final(child["id"], 300) == "COMPLETED"
    db = database(cluster.mongo)
    for name in sources:
        _synced_once(db, name, 3)
    # Every worker may take a share: the three children did not all go to one worker.
    assert len({cluster.api.worker_of(c["id"]) for c in children}) >= 2
    limits = cluster.api.concurrency_limits()
    assert all(limits[source_limit_name(s)]["limit"] == 1 for s in sources)
    assert limits[DISK_LIMIT]["active_slots"] == 0


def _provenance_whole(db: Database[Document]) -> set[str]:
    """Every version chain is 1, 2, 3, ... each linked to the one before and to the task run
    that generated it; return the versions' entity ids."""
    chains: dict[tuple[str, str, str, str], list[Document]] = {}
    for version in db.parameter_versions.find():
        key = (version["project_id"], version["chip_id"], version["parameter_name"], version["qid"])
        chains.setdefault(key, []).append(version)
    activities = {a["activity_id"] for a in db.activities.find({}, {"activity_id": 1})}
    for key, versions in chains.items():
        versions.sort(key=lambda v: v["version"])
        assert [v["version"] for v in versions] == list(range(1, len(versions) + 1)), key
        for before, after in itertools.pairwise(versions):
            assert after["previous_entity_id"] == before["entity_id"], key
        for v in versions:
            assert f"{v['execution_id']}:{v['task_id']}" in activities, v["entity_id"]
    return {v["entity_id"] for vs in chains.values() for v in vs}


def _calibrating(store: MongoBackendStateStore) -> bool:
    return BackendState.CALIBRATING in store.marks(CHIP).leases


def _running_with(cluster: Cluster, flow_run_id: str, ready: Callable[[], bool]) -> Worker:
    """Wait until the flow run runs and ``ready()``; return the worker that runs it."""
    wait_for(
        f"flow run {flow_run_id} running and under way",
        lambda: cluster.api.state(flow_run_id) == "RUNNING" and ready(),
        240,
        0.2,
    )
    name = wait_for(f"worker of {flow_run_id}", lambda: cluster.api.worker_of(flow_run_id), 30)
    (worker,) = [w for w in cluster.workers if w.name == name]
    return worker


def test_worker_killed_mid_sync_and_mid_calibration_crashed_rerun_completes(
    cluster: Cluster, tmp_path: Path
) -> None:
    db = database(cluster.mongo)
    runs = 20
    _source(cluster.mongo, tmp_path, "crash-lab", runs=runs, big=True)
    # One run at a time on the machine (an operator's change of the limit), so the sync is
    # still under way when its worker dies.
    cluster.api.set_concurrency_limit(DISK_LIMIT, 1)
    store = MongoBackendStateStore(db)
    try:
        sync = cluster.api.run("sync-qcodes/sync-qcodes", {"sources": ["crash-lab"]})
        calibration = cluster.api.run(
            "calibrate/calibrate", {"database_path": str(tmp_path / "cal.db"), "wait_s": 0}
        )
        # The calibration is short (seconds): it is caught first, the slowed sync after it.
        calibration_worker = _running_with(
            cluster,
            calibration,
            lambda: _calibrating(store) and db.parameter_versions.count_documents({}) >= 1,
        )
        calibration_worker.kill()
        killed_at = utc_now()
        assert _calibrating(store)  # killed in the middle: the lease was still held
        lease = db[MongoBackendStateStore.COLLECTION].find_one(
            {"chip_id": CHIP, "kind": "lease"}, sort=[("expires_at", -1)]
        )
        assert lease is not None
        expires_at = as_utc(lease["expires_at"])
        # Renewed until the kill, never beyond its lease from then on.
        assert expires_at <= killed_at + timedelta(seconds=DEFAULT_LEASE_S)
        sync_worker = _running_with(
            cluster,
            sync,
            lambda: db.sync_items.count_documents({"source": "crash-lab", "state": "synced"}) >= 3,
        )
        sync_worker.kill()
        synced_at_kill = db.sync_items.count_documents({"source": "crash-lab", "state": "synced"})
        assert synced_at_kill < runs  # killed in the middle
        cluster.api.set_concurrency_limit(DISK_LIMIT, SyncSettings().machine_concurrency)
        recorded_before = _provenance_whole(db)
        cluster.add_worker()
        cluster.add_worker()

        # Nobody renews the chip's CALIBRATING lease any more: it is free once it expires.
        left_s = (expires_at - utc_now()).total_seconds()
        wait_for("lease expired", lambda: not _calibrating(store), max(left_s, 0) + 2)
        # No heartbeat from either flow run: the automation marks both Crashed.
        for flow_run_id in (sync, calibration):
            assert cluster.api.wait_final(flow_run_id, ZOMBIE_WITHIN_S + 90) == "CRASHED"

        resync = cluster.api.run("sync-qcodes/sync-qcodes", {"sources": ["crash-lab"]})
        recalibration = cluster.api.run(
            "calibrate/calibrate", {"database_path": str(tmp_path / "cal.db"), "wait_s": 60}
        )
        assert cluster.api.wait_final(resync, 360) == "COMPLETED"
        assert cluster.api.wait_final(recalibration, 360) == "COMPLETED"
    finally:
        cluster.api.set_concurrency_limit(DISK_LIMIT, SyncSettings().machine_concurrency)
    _synced_once(db, "crash-lab", runs)
    recorded_after = _provenance_whole(db)
    assert recorded_before <= recorded_after  # nothing the killed run recorded is lost
    assert not _calibrating(store)


def test_mongodb_stopped_20_s_during_sync_runs_retry_and_complete(
    cluster: Cluster, tmp_path: Path, qops_data_dir: Path
) -> None:
    db = database(cluster.mongo)
    runs = 30
    _source(cluster.mongo, tmp_path, "outage-lab", runs=runs, big=True)
    embedded = EmbeddedMongo(qops_data_dir)
    sync = cluster.api.run("sync-qcodes/sync-qcodes", {"sources": ["outage-lab"]})
    _running_with(
        cluster,
        sync,
        lambda: db.sync_items.count_documents({"source": "outage-lab", "state": "synced"}) >= 2,
    )
    embedded.stop()
    time.sleep(20)  # the outage itself, not a wait for readiness
    embedded.ensure_running()

    assert cluster.api.wait_final(sync, 360) == "COMPLETED"
    _synced_once(db, "outage-lab", runs)


def test_prefect_server_restarted_during_sync_workers_reconnect_and_complete(
    cluster: Cluster, tmp_path: Path
) -> None:
    db = database(cluster.mongo)
    runs = 30
    _source(cluster.mongo, tmp_path, "restart-lab", runs=runs, big=True)
    sync = cluster.api.run("sync-qcodes/sync-qcodes", {"sources": ["restart-lab"]})
    _running_with(
        cluster,
        sync,
        lambda: db.sync_items.count_documents({"source": "restart-lab", "state": "synced"}) >= 2,
    )
    cluster.server.restart()

    assert cluster.api.wait_final(sync, 360) == "COMPLETED"
    _synced_once(db, "restart-lab", runs)
    # The workers are still polling the restarted server: a new flow run is taken.
    again = cluster.api.run("sync-qcodes/sync-qcodes", {"sources": ["restart-lab"]})
    assert cluster.api.wait_final(again, 240) == "COMPLETED"
