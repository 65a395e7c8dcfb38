"""The sync CLI without any Prefect API: real ``qops`` processes, the embedded MongoDB.

No ``PREFECT_API_URL``, a Prefect home of the test's own (no profile) and a data directory
where no local qops Prefect server runs: the commands must do their work without starting
a temporary Prefect server, and say what they did.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pymongo.database import Database

from qops.config import MongoSettings
from qops.mongo import Document
from tests.cli import run_qops
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d, sha256


@pytest.fixture
def no_prefect(tmp_path: Path, mongo_settings: MongoSettings) -> dict[str, str]:
    """Environment for ``run_qops``: the test's MongoDB, no Prefect API anywhere."""
    return {
        "PREFECT_API_URL": "",
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "QOPS_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def lab_db(tmp_path: Path) -> Path:
    path = tmp_path / "lab" / "lab.db"
    path.parent.mkdir()
    conn, exp = create_db(path)
    for i in range(3):
        run_1d(exp, name=f"sweep {i}")
    conn.close()
    return path


def _no_telemetry(*results: subprocess.CompletedProcess[str]) -> None:
    for result in results:
        assert "telemetry" not in (result.stdout + result.stderr).lower()


def test_sources_add_without_prefect_api_registers_source_and_says_block_not_saved(
    no_prefect: dict[str, str], mongo_db: Database[Document], lab_db: Path
) -> None:
    result = run_qops(
        "sources", "add", "lab", "--database", str(lab_db), "--set-up", "fridge", env=no_prefect
    )

    assert result.returncode == 0, result.stderr
    assert f"added  lab  qcodes  {lab_db}" in result.stdout
    assert "the QCoDeSSyncSource block was not saved" in result.stderr
    assert "qops prefect start" in result.stderr
    stored = mongo_db.sync_sources.find_one({"_id": "lab"})
    assert stored is not None
    assert stored["config"]["set_up"] == "fridge"
    assert not (Path(no_prefect["QOPS_DATA_DIR"]) / "prefect").exists()  # nothing started
    _no_telemetry(result)


def test_sync_without_prefect_api_syncs_runs_into_catalog_and_says_no_flow_run(
    no_prefect: dict[str, str], mongo_db: Database[Document], lab_db: Path
) -> None:
    added = run_qops(
        "sources", "add", "lab", "--database", str(lab_db), "--set-up", "fridge", env=no_prefect
    )
    assert added.returncode == 0, added.stderr
    before = sha256(lab_db), sorted(p.name for p in lab_db.parent.iterdir())

    synced = run_qops("sync", "lab", env=no_prefect)

    assert synced.returncode == 0, synced.stderr
    assert "no flow run" in synced.stdout
    assert "lab: 3 new, 0 updated, 0 live, 0 abandoned, 0 failed" in synced.stdout
    names = sorted(d["name"] for d in mongo_db.datasets.find({"source": "lab"}))
    assert names == ["sweep 0", "sweep 1", "sweep 2"]
    for record in mongo_db.datasets.find():
        location = Path(record["files"][0]["location"])
        assert location.is_file()
        assert location.is_relative_to(no_prefect["QOPS_DATA_DIR"])
    assert (sha256(lab_db), sorted(p.name for p in lab_db.parent.iterdir())) == before
    again = run_qops("sync", "lab", env=no_prefect)
    assert again.returncode == 0, again.stderr
    assert "lab: 0 new, 0 updated, 0 live, 0 abandoned, 0 failed" in again.stdout
    _no_telemetry(added, synced, again)


def test_sync_status_lists_each_run_state_from_mongodb(
    no_prefect: dict[str, str], lab_db: Path, mongo_db: Database[Document]
) -> None:
    run_qops(
        "sources", "add", "lab", "--database", str(lab_db), "--set-up", "fridge", env=no_prefect
    )
    run_qops("sync", "lab", env=no_prefect)

    status = run_qops("sync", "status", "lab", env=no_prefect)

    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == "source\trun_id\tstate\tattempts\tfile_version\tlast_error"
    assert [line.split("\t")[:5] for line in lines[1:]] == [
        ["lab", str(run_id), "synced", "0", "1"] for run_id in (1, 2, 3)
    ]
    assert status.stderr == ""
    _no_telemetry(status)


def test_sync_storage_block_without_prefect_api_is_refused_naming_the_block(
    no_prefect: dict[str, str], lab_db: Path, mongo_db: Database[Document]
) -> None:
    run_qops(
        "sources", "add", "lab", "--database", str(lab_db), "--set-up", "fridge", env=no_prefect
    )

    result = run_qops("sync", "lab", "--storage-block", "lab-files", env=no_prefect)

    assert result.returncode == 2
    assert "--storage-block 'lab-files'" in result.stderr
    assert "needs an API" in result.stderr
    assert mongo_db.datasets.count_documents({}) == 0


def test_sync_summary_counts_a_run_abandoned_by_its_writer(
    no_prefect: dict[str, str], tmp_path: Path
) -> None:
    from qcodes.dataset import Measurement
    from qcodes.parameters import ManualParameter

    db = tmp_path / "lab" / "lab.db"
    db.parent.mkdir()
    conn, exp = create_db(db)
    x, z = ManualParameter("x"), ManualParameter("z")
    meas = Measurement(exp=exp, name="stalled sweep")
    meas.register_parameter(x)
    meas.register_parameter(z, setpoints=(x,))
    env = {**no_prefect, "QOPS_SYNC_IDLE_TIMEOUT_S": "0.01"}
    added = run_qops("sources", "add", "lab", "--database", str(db), "--set-up", "f", env=env)
    assert added.returncode == 0, added.stderr
    with meas.run() as saver:  # the writer adds rows, then stalls without completing
        saver.add_result((x, 1.0), (z, 2.0))
        saver.flush_data_to_database()
        first = run_qops("sync", "lab", env=env)
        stalled = run_qops("sync", "lab", env=env)
    conn.close()

    assert "lab: 0 new, 0 updated, 1 live, 0 abandoned, 0 failed" in first.stdout, first.stdout
    assert "lab: 0 new, 0 updated, 0 live, 1 abandoned, 0 failed" in stalled.stdout, stalled.stdout
