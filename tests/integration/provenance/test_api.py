"""The provenance HTTP API over the embedded MongoDB, through a real HTTP client."""

from __future__ import annotations

import json
import math
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest
from fastapi.testclient import TestClient
from prov.model import ProvDocument

from qops.provenance.api import create_app
from qops.provenance.models import Measured
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.integration.provenance.records import make_record, record_chain

SCHEMA = Path(__file__).parents[3] / "schemas" / "prov-json" / "prov-json.schema.json"


@pytest.fixture
def client(service: ProvenanceService) -> TestClient:
    return TestClient(create_app(service))


def test_api_entity_nan_and_inf_are_json_safe(
    client: TestClient, repository: MongoProvenanceRepository
) -> None:
    result = repository.record(
        make_record("e1", "t", {"t1": Measured(value=math.nan, unit="s", error=math.inf)})
    )
    response = client.get(f"/provenance/entities/{result.entity_ids['t1']}")
    assert response.status_code == 200
    body = json.loads(response.text)  # strict JSON: no NaN tokens
    assert body["value"] == "NaN"
    assert body["value_type"] == "float"
    assert body["error"] == "Infinity"
    assert body["unit"] == "s"
    assert body["valid_until"] is None
    assert body["valid_from"].endswith("Z") or body["valid_from"].endswith("+00:00")


def test_api_unknown_entity_404_and_malformed_422(client: TestClient) -> None:
    missing = client.get("/provenance/entities/t1:Q0:nope:nope")
    assert missing.status_code == 404
    assert "no parameter version 't1:Q0:nope:nope'" in missing.json()["detail"]
    malformed = client.get("/provenance/entities/not-an-entity")
    assert malformed.status_code == 422
    assert "malformed" in malformed.json()["detail"]


def test_api_lineage_shape_and_bad_depths(
    client: TestClient, repository: MongoProvenanceRepository
) -> None:
    ids = record_chain(repository, "e1", 5e9)
    response = client.get(f"/provenance/lineage/{ids['t1']}", params={"max_depth": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["origin"]["node_id"] == ids["t1"]
    assert body["origin"]["entity"]["parameter_name"] == "t1"
    node_ids = {n["node_id"] for n in body["nodes"]} | {ids["t1"]}
    assert ids["qubit_frequency"] in node_ids
    assert all({e["source_id"], e["target_id"]} <= node_ids for e in body["edges"])
    assert {e["relation_type"] for e in body["edges"]} == {
        "wasGeneratedBy",
        "used",
        "wasDerivedFrom",
    }
    for bad in ("0", "-1", "abc"):
        assert client.get(f"/provenance/lineage/{ids['t1']}?max_depth={bad}").status_code == 422
    capped = client.get(f"/provenance/impact/{ids['qubit_frequency']}?max_depth=100000")
    assert capped.status_code == 200
    assert capped.json()["max_depth"] == 50


def test_api_lineage_prov_json_is_valid_and_readable_by_prov(
    client: TestClient, repository: MongoProvenanceRepository
) -> None:
    record_chain(repository, "e1", 5.0e9)
    ids = record_chain(repository, "e2", 5.1e9)
    response = client.get(f"/provenance/lineage/{ids['t1']}?max_depth=4&format=prov-json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/prov+json"  # declared as such
    document = response.json()
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))

    again = client.get(f"/provenance/lineage/{ids['t1']}?max_depth=4&format=prov-json").json()
    assert again == document  # stable ids

    parsed = ProvDocument.deserialize(content=response.text, format="json")
    entity_ids = {str(r.identifier) for r in parsed.get_records() if r.is_element()}
    assert f"qops:{ids['t1']}" in entity_ids
    assert f"qops:{ids['qubit_frequency']}" in entity_ids
    kinds = {type(r).__name__ for r in parsed.get_records()}
    assert {
        "ProvEntity",
        "ProvActivity",
        "ProvAgent",
        "ProvGeneration",
        "ProvUsage",
        "ProvDerivation",
        "ProvAssociation",
    } <= kinds
    start = document["activity"][f"qops:{ids['t1_activity']}"]["prov:startTime"]
    assert start.endswith("+00:00")


def test_api_history_of_one_chip_and_of_every_chip(
    client: TestClient, repository: MongoProvenanceRepository
) -> None:
    repository.record(make_record("e1", "t", {"t1": 4e-5}, chip_id="chip-a"))
    repository.record(make_record("e2", "t", {"t1": 5e-5}, chip_id="chip-a"))
    repository.record(make_record("e3", "t", {"t1": 6e-5}, chip_id="chip-b"))
    params = {"parameter_name": "t1", "qid": "Q0"}

    chip_a = client.get("/provenance/history", params={**params, "chip_id": "chip-a"})
    chip_b = client.get("/provenance/history", params={**params, "chip_id": "chip-b"})
    every = client.get("/provenance/history", params=params)

    assert chip_a.status_code == chip_b.status_code == every.status_code == 200
    assert [(v["chip_id"], v["version"]) for v in chip_a.json()["versions"]] == [
        ("chip-a", 2),
        ("chip-a", 1),
    ]
    assert chip_a.json()["chip_id"] == "chip-a"
    assert [(v["chip_id"], v["version"]) for v in chip_b.json()["versions"]] == [("chip-b", 1)]
    assert chip_b.json()["versions"][0]["previous_entity_id"] is None
    assert every.json()["total_versions"] == 3
    assert every.json()["chip_id"] is None
    empty = client.get("/provenance/history", params={**params, "chip_id": ""})
    assert empty.status_code == 422
    assert empty.json()["detail"][0]["loc"] == ["query", "chip_id"]  # declared: minLength 1


def test_api_history_compare_changes_stats_executions(
    client: TestClient, repository: MongoProvenanceRepository
) -> None:
    record_chain(repository, "e1", 5.0e9)
    record_chain(repository, "e2", 5.1e9)

    history = client.get(
        "/provenance/history", params={"parameter_name": "qubit_frequency", "qid": "Q0"}
    ).json()
    assert history["total_versions"] == 2
    assert [v["version"] for v in history["versions"]] == [2, 1]

    compare = client.get(
        "/provenance/compare", params={"execution_id_before": "e1", "execution_id_after": "e2"}
    ).json()
    assert {c["parameter_name"] for c in compare["changed_parameters"]} == {
        "qubit_frequency",
        "rabi_amplitude",
    }
    assert compare["unchanged_count"] == 1
    assert (
        client.get(
            "/provenance/compare",
            params={"execution_id_before": "e1", "execution_id_after": "nope"},
        ).status_code
        == 404
    )

    changes = client.get("/provenance/changes", params={"limit": 2, "within_hours": 1}).json()
    assert changes["total_count"] == 6
    assert len(changes["changes"]) == 2
    assert client.get("/provenance/changes?within_hours=-1").status_code == 422

    stats = client.get("/provenance/stats").json()
    assert stats["total_entities"] == 6
    assert stats["total_executions"] == 2

    executions = client.get("/provenance/executions?limit=1").json()
    assert [e["execution_id"] for e in executions["executions"]] == ["e2"]

    other = client.get("/provenance/stats?project_id=elsewhere").json()
    assert other["total_entities"] == 0


def test_api_openapi_docs_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/provenance/lineage/{entity_id}" in paths


def test_api_compare_of_another_projects_execution_is_404_like_an_unknown_one(
    client: TestClient, repository: MongoProvenanceRepository
) -> None:
    record_chain(repository, "e1", 5.0e9)
    repository.record(make_record("other-run", "t", {"f": 1.0}, project_id="elsewhere"))

    def compare(after: str) -> tuple[int, str]:
        response = client.get(
            "/provenance/compare", params={"execution_id_before": "e1", "execution_id_after": after}
        )
        return response.status_code, response.json()["detail"]

    status, detail = compare("other-run")
    assert status == 404
    unknown_status, unknown_detail = compare("never-ran")
    assert unknown_status == 404
    assert detail == unknown_detail.replace("never-ran", "other-run")


def test_api_lineage_depth_boundary_edges_in_json_and_prov_json(
    client: TestClient, repository: MongoProvenanceRepository
) -> None:
    ids = record_chain(repository, "e1", 5.0e9)
    # depth 1 of t1: its task, the frequency and rabi; rabi was derived from the frequency
    body = client.get(f"/provenance/lineage/{ids['t1']}", params={"max_depth": 1}).json()
    edges = {(e["relation_type"], e["source_id"], e["target_id"]) for e in body["edges"]}
    assert ("wasDerivedFrom", ids["rabi_amplitude"], ids["qubit_frequency"]) in edges
    document = client.get(
        f"/provenance/lineage/{ids['t1']}", params={"max_depth": 1, "format": "prov-json"}
    ).json()
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert {
        "prov:generatedEntity": f"qops:{ids['rabi_amplitude']}",
        "prov:usedEntity": f"qops:{ids['qubit_frequency']}",
    } in document["wasDerivedFrom"].values()
    kinds = ("wasGeneratedBy", "used", "wasDerivedFrom")
    assert sum(len(document.get(kind, {})) for kind in kinds) == len(edges)


def test_api_entity_id_holding_a_slash_is_recorded_and_reachable(
    client: TestClient, repository: MongoProvenanceRepository
) -> None:
    # Recording side: "/" is allowed in every part but ":"-free ones stay the rule.
    recorded = repository.record(
        make_record("run/7", "task/8", {"t1": Measured(value=5e-5, unit="s")}, qid="Q0")
    )
    entity_id = recorded.entity_ids["t1"]
    assert entity_id == "t1:Q0:run/7:task/8"
    # HTTP side: the entity routes take the whole rest of the path, "/" sent as is or as %2F.
    for sent in (entity_id, quote(entity_id, safe="")):
        entity = client.get(f"/provenance/entities/{sent}")
        assert entity.status_code == 200, entity.text
        assert entity.json()["entity_id"] == entity_id
        for route in ("lineage", "impact"):
            graph = client.get(f"/provenance/{route}/{sent}", params={"max_depth": 2})
            assert graph.status_code == 200, graph.text
            assert graph.json()["origin"]["node_id"] == entity_id
    document = client.get(f"/provenance/lineage/{entity_id}", params={"format": "prov-json"})
    assert f"qops:{entity_id}" in document.json()["entity"]
    missing = client.get("/provenance/entities/t1:Q0:run/8:task/8")
    assert missing.status_code == 404
    assert missing.json()["error"] == "EntityNotFoundError"


def test_api_history_with_kebab_and_camel_case_task_names_reads_both(
    client: TestClient, repository: MongoProvenanceRepository
) -> None:
    # A version recorded before task names were CamelCase, then one recorded after.
    repository.record(make_record("e1", "t1", {"t1": 4e-5}, task_name="check-t1"))
    repository.record(make_record("e2", "t2", {"t1": 5e-5}, task_name="CheckT1"))
    history = client.get("/provenance/history", params={"parameter_name": "t1", "qid": "Q0"})
    assert history.status_code == 200
    assert [v["task_name"] for v in history.json()["versions"]] == ["CheckT1", "check-t1"]
    changes = client.get("/provenance/changes").json()["changes"]
    assert changes[0]["task_name"] == "CheckT1"
    assert changes[0]["previous_value"] == 4e-5
