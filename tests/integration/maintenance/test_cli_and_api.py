"""``qops maintenance health`` and ``GET /maintenance/health`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from qops.catalog.search import CatalogQueryService
from qops.console.app import ConsoleServices, create_app
from qops.mongo import Document
from qops.provenance.models import Measured
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.cli import run_qops
from tests.integration.maintenance.test_health import calibrate
from tests.integration.provenance.records import CHIP, PROJECT, make_record


@pytest.fixture
def degraded(
    repository: MongoProvenanceRepository, monkeypatch: pytest.MonkeyPatch
) -> MongoProvenanceRepository:
    """A chip whose Q0 T1 got worse three times, and a healthy chip ``fine``."""
    monkeypatch.setenv("QOPS_PROJECT_ID", PROJECT)
    calibrate(repository, "e0")
    for index, t1 in enumerate((55e-6, 50e-6, 45e-6)):
        repository.record(make_record(f"e{index + 1}", "t1", {"t1": Measured(value=t1, unit="s")}))
    calibrate(repository, "f0", chip_id="fine")
    return repository


@pytest.fixture
def client(mongo_db: Database[Document], degraded: MongoProvenanceRepository) -> TestClient:
    services = ConsoleServices(
        provenance=ProvenanceService(degraded, PROJECT), catalog=CatalogQueryService(mongo_db)
    )
    return TestClient(create_app(services))


def test_api_health_names_the_degrading_t1_and_the_step(client: TestClient) -> None:
    answer = client.get("/maintenance/health", params={"chip_id": CHIP})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["counts"]["degrading"] == 1
    assert [(r["step"], r["target"]) for r in body["recommendations"]] == [("CheckT1", "Q0")]
    assert body["recommendations"][0]["flagged"] == ["t1:Q0"]


def test_api_health_missing_target_and_errors(client: TestClient) -> None:
    with_target = client.get("/maintenance/health", params=[("chip_id", "fine"), ("target", "Q3")])
    assert with_target.status_code == 200
    assert with_target.json()["counts"]["missing"] == 7

    unknown = client.get("/maintenance/health", params={"chip_id": "nope"})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "ChipNotFoundError"
    assert client.get("/maintenance/health").status_code == 422
    assert client.get("/maintenance/health", params={"chip_id": ""}).status_code == 422


def test_cli_health_exit_code_says_whether_to_recalibrate(
    degraded: MongoProvenanceRepository,
) -> None:
    sick = run_qops("maintenance", "health", "--chip", CHIP)
    assert sick.returncode == 1, sick.stderr
    assert "t1 Q0: degrading" in sick.stdout
    assert "CheckT1 on Q0: t1 of Q0 got worse in each of its last 3 versions" in sick.stdout

    fine = run_qops("maintenance", "health", "--chip", "fine", "--json")
    assert fine.returncode == 0, fine.stderr
    assert json.loads(fine.stdout)["recommendations"] == []


def test_cli_health_bad_policy_and_unknown_chip_are_one_line_errors(
    degraded: MongoProvenanceRepository, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("parameters:\n  t1: {minimum: 2, maximum: 1}\n")

    bad = run_qops("maintenance", "health", "--chip", CHIP, "--policy", str(policy))
    assert bad.returncode == 2
    assert "policy.yaml: parameters.t1" in bad.stderr
    assert "Traceback" not in bad.stderr

    from_env = run_qops(
        "maintenance", "health", "--chip", CHIP, env={"QOPS_MAINTENANCE_POLICY": str(policy)}
    )
    assert from_env.returncode == 2
    assert "minimum 2 is above maximum 1" in from_env.stderr

    unknown = run_qops("maintenance", "health", "--chip", "nope")
    assert unknown.returncode == 2
    assert "no calibration of chip 'nope'" in unknown.stderr
