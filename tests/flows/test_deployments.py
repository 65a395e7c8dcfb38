"""Deployments from prefect.yaml run on a real Prefect server through a real process worker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo.database import Database

from qops.catalog.sources import SyncSources
from qops.cli.prefect_server import LocalPrefectServer, RunningPrefectServer
from qops.config import MongoSettings
from qops.mongo import Document

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPrefectServer]:
    """A real `prefect server start` on a temporary SQLite database."""
    local = LocalPrefectServer(tmp_path_factory.mktemp("prefect-server"))
    server = local.ensure_running()
    yield server
    local.stop()


def _prefect(
    *args: str, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PREFECT, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_deploy_all_then_worker_runs_smoke_calibrate_and_sync_deployments(
    prefect_server: RunningPrefectServer,
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}
    # Deployment parameters name blocks: this one points at the test's database.
    block_saved = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from blocks.mongodb import MongoDBConnection; "
            "MongoDBConnection(url=sys.argv[1], database=sys.argv[2]).save('e2e-mongo')",
            mongo_settings.mongodb_url.get_secret_value() if mongo_settings.mongodb_url else "",
            mongo_settings.mongodb_db,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert block_saved.returncode == 0, block_saved.stderr
    created = _prefect("work-pool", "create", "qops", "--type", "process", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = _prefect("--no-prompt", "deploy", "--all", env=env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    for name in (
        "smoke/smoke",
        "calibrate/calibrate",
        "sync-qcodes/sync-qcodes",
        "maintain/maintain",
    ):
        assert name in deployed.stdout

    worker = subprocess.Popen(
        [PREFECT, "worker", "start", "--pool", "qops", "--limit", "2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        run = _prefect(
            "deployment", "run", "smoke/smoke", "--watch", "--watch-timeout", "150", env=env
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Completed" in run.stdout

        lab_db = tmp_path / "lab.db"
        run = _prefect(
            "deployment",
            "run",
            "calibrate/calibrate",
            "--param",
            "mongodb_block=e2e-mongo",
            "--param",
            f"database_path={lab_db}",
            "--param",
            "wait_s=0",
            "--watch",
            "--watch-timeout",
            "240",
            env=env,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Completed" in run.stdout

        SyncSources.create(
            name="e2e-lab",
            backend_identifier="qcodes",
            config_data={"database_path": str(lab_db), "set_up": "e2e"},
            settings=mongo_settings,
        )
        run = _prefect(
            "deployment",
            "run",
            "sync-qcodes/sync-qcodes",
            "--param",
            "source_name=e2e-lab",
            "--param",
            "mongodb_block=e2e-mongo",
            "--watch",
            "--watch-timeout",
            "240",
            env=env,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Completed" in run.stdout
    finally:
        # A worker waiting on a slow API call may outlive SIGTERM's grace: then SIGKILL,
        # so the teardown never fails a test whose runs all completed.
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
    # The worker's flow run read QOPS_* from its environment: the record is in this
    # test's database.
    assert mongo_db.smoke_runs.count_documents({}) >= 1
    # The calibration (chip-a of docs/examples/backend.yaml: two qubits, one coupler) ran
    # in the worker through the block's database, and its QCoDeS runs reached the catalog.
    chip = mongo_db.parameter_versions.distinct("chip_id")
    assert chip == ["chip-a"]
    assert mongo_db.parameter_versions.count_documents({"parameter_name": "cz_fidelity"}) == 1
    runs = 6 * 2 + 1
    assert mongo_db.datasets.count_documents({"source": "e2e-lab"}) == runs
