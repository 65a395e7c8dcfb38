"""The provenance HTTP API of raw measurements and synced file versions.

A real calibration of a one-qubit simulated chip (real QCoDeS runs, fits, recorded
provenance), its runs really synced into the catalog with the sync's provenance, and the
real app through an HTTP client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from qops.calibration.instruments import close_instruments
from qops.calibration.plan import ChipSpec
from qops.config import MongoSettings
from qops.mongo import Document
from qops.provenance.api import create_app
from qops.provenance.ids import dataset_entity_id
from qops.provenance.models import DatasetEntity
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.browser.calibrated import Calibration, record_calibration, sync_calibration_runs

PROJECT = "api-datasets"
CHIP = ChipSpec(chip_id="chip-api", n_qubits=1, seed=20261205)
SCHEMA = Path(__file__).parents[3] / "schemas" / "prov-json" / "prov-json.schema.json"


@dataclass
class Synced:
    """A recorded calibration, its frequency measurement and the app serving it."""

    calibration: Calibration
    measured: DatasetEntity
    versions: set[str]
    client: TestClient


@pytest.fixture
def synced(mongo_settings: MongoSettings, mongo_db: Database[Document], tmp_path: Path) -> Synced:
    database_path = tmp_path / "lab.db"
    try:
        calibration = record_calibration(
            mongo_settings, "exec-1", database_path, chip=CHIP, project_id=PROJECT
        )
        sync_calibration_runs(mongo_settings, database_path, tmp_path / "files", project_id=PROJECT)
    finally:
        close_instruments()
    outcome = next(o for (s, _), o in calibration.outcomes.items() if s.value == "CheckFrequency")
    service = ProvenanceService(MongoProvenanceRepository(mongo_db), PROJECT)
    return Synced(
        calibration,
        outcome.datasets[0],
        set(outcome.entity_ids.values()),
        TestClient(create_app(service)),
    )


def test_api_dataset_answers_its_files_sync_and_fitted_versions(synced: Synced) -> None:
    response = synced.client.get(f"/provenance/datasets/{synced.measured.guid}")
    assert response.status_code == 200
    body = response.json()
    assert body["entity_id"] == dataset_entity_id(synced.measured.guid)
    assert body["dataset"]["run_id"] == synced.measured.run_id
    assert body["dataset"]["name"] == "CheckFrequency"
    assert [f["file"]["version"] for f in body["files"]] == [1]
    sync = body["files"][0]["generated_by"]
    assert sync["task_type"] == "sync"
    assert sync["agent"]["name"] == "sync:calibration-lab"
    assert sync["agent"]["host"]
    assert {v["entity_id"] for v in body["derived_versions"]} == synced.versions
    assert "sync" in {a["task_type"] for a in body["used_by"]}


def test_api_dataset_unknown_404_malformed_422(synced: Synced) -> None:
    missing = synced.client.get("/provenance/datasets/aaaaaaaa-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["error"] == "EntityNotFoundError"
    malformed = synced.client.get(f"/provenance/datasets/{quote('a:b', safe='')}")
    assert malformed.status_code == 422
    assert "malformed" in malformed.json()["detail"]


def test_api_lineage_and_impact_of_dataset_and_file_ids(synced: Synced) -> None:
    origin = dataset_entity_id(synced.measured.guid)
    impact = synced.client.get(f"/provenance/impact/{origin}", params={"max_depth": 3}).json()
    assert impact["origin"]["entity_type"] == "dataset"
    assert impact["origin"]["dataset"]["guid"] == synced.measured.guid
    reached = {n["node_id"]: n for n in impact["nodes"]}
    assert synced.versions <= set(reached)
    files = [n for n in reached.values() if n["entity_type"] == "dataset_file"]
    assert len(files) == 1
    file_id = files[0]["node_id"]
    assert files[0]["dataset_file"]["version"] == 1
    lineage = synced.client.get(f"/provenance/lineage/{file_id}").json()
    assert lineage["origin"]["entity_type"] == "dataset_file"
    assert origin in {n["node_id"] for n in lineage["nodes"]}
    assert "sync" in {n["activity"]["task_type"] for n in lineage["nodes"] if n["activity"]}
    schema = json.loads(SCHEMA.read_text())
    for route, node in (("impact", origin), ("lineage", file_id)):
        answer = synced.client.get(f"/provenance/{route}/{node}", params={"format": "prov-json"})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/prov+json"
        document = answer.json()
        jsonschema.validate(document, schema)
        assert f"qops:{node}" in document["entity"]


def test_api_graph_of_unknown_dataset_ids_404_and_malformed_422(synced: Synced) -> None:
    for node in ("dataset:nope", "dataset-file:nope:v1"):
        for route in ("lineage", "impact"):
            assert synced.client.get(f"/provenance/{route}/{node}").status_code == 404
    assert synced.client.get("/provenance/lineage/dataset-file:nope:vx").status_code == 422
