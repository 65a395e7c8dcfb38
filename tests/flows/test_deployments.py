"""Deployments from prefect.yaml run on a real Prefect server through a real process worker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo.database import Database

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


def test_deploy_all_then_worker_runs_smoke_deployment(
    prefect_server: RunningPrefectServer,
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url}
    created = _prefect("work-pool", "create", "qops", "--type", "process", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = _prefect("--no-prompt", "deploy", "--all", env=env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "smoke/smoke" in deployed.stdout

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
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    # The worker's flow run read QOPS_* from its environment: the record is in this
    # test's database.
    assert mongo_db.smoke_runs.count_documents({}) == 1
