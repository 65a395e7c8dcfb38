"""The catalog's HTTP API over the real app (create_app) on the embedded MongoDB."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from qops.catalog.search import CatalogQueryService
from qops.config import MongoSettings
from qops.console.app import ConsoleServices, create_app
from qops.mongo import Document
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.integration.catalog.catalog_records import record, save
from tests.integration.catalog.test_read_files import sync_lab

HOSTILE = '<script>alert("x")</script>"><img src=x onerror=alert(1)>'


@pytest.fixture
def client(mongo_db: Database[Document]) -> TestClient:
    catalog = CatalogQueryService(mongo_db)
    catalog.ensure_indexes()
    services = ConsoleServices(
        provenance=ProvenanceService(MongoProvenanceRepository(mongo_db), "catalog-test"),
        catalog=catalog,
    )
    return TestClient(create_app(services))


@pytest.fixture
def synced(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> dict[str, str]:
    return sync_lab(tmp_path / "lab.db", tmp_path / "files", mongo_settings, mongo_db)


def test_search_over_http_by_tag_attribute_and_time(
    client: TestClient, mongo_db: Database[Document]
) -> None:
    records = save(
        mongo_db,
        record(0, tags=["t1"], attributes={"set-up": "fridge-1", "qh.qubit": "Q1"}),
        record(1, tags=["t1"], attributes={"set-up": "fridge-1", "qh.qubit": "Q2"}),
        record(2, tags=["t1"], attributes={"set-up": "fridge-2", "qh.qubit": "Q1"}),
        record(3, tags=["rabi"], attributes={"set-up": "fridge-1", "qh.qubit": "Q1"}),
    )
    answer = client.get(
        "/datasets",
        params=[
            ("tag", "t1"),
            ("attr", "qh.qubit=Q1"),
            ("set_up", "fridge-1"),
            ("collected_after", "2026-11-01T08:00:00Z"),
            ("collected_before", "2026-11-01T12:00"),
        ],
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [d["uuid"] for d in body["datasets"]] == [records[0].uuid]
    assert body["total"] == 1
    assert body["next_cursor"] is None
    assert body["facets"]["tags"] == [{"value": "t1", "count": 1}]
    assert body["facets"]["set_ups"] == [{"value": "fridge-1", "count": 1}]


def test_search_over_http_pages_with_the_cursor(
    client: TestClient, mongo_db: Database[Document]
) -> None:
    save(mongo_db, *(record(i) for i in range(7)))
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 3, "facets": "false"}
    while True:
        body = client.get("/datasets", params=params).json()
        assert body["total"] == 7
        assert body["facets"] is None
        seen += [d["uuid"] for d in body["datasets"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert len(seen) == len(set(seen)) == 7


def test_get_dataset_by_uuid_and_alt_uid(client: TestClient, mongo_db: Database[Document]) -> None:
    (saved,) = save(mongo_db, record(5, scope="scope-9"))
    by_id = client.get(f"/datasets/{saved.uuid}")
    assert by_id.status_code == 200
    assert by_id.json()["alt_uid"] == saved.alt_uid
    by_alt = client.get(
        "/datasets/by-alt-uid", params={"scope": "scope-9", "alt_uid": saved.alt_uid}
    )
    assert by_alt.status_code == 200
    assert by_alt.json()["uuid"] == saved.uuid


def test_hostile_text_round_trips_unchanged_in_json(
    client: TestClient, mongo_db: Database[Document]
) -> None:
    (saved,) = save(
        mongo_db,
        record(
            0,
            name=HOSTILE,
            description=HOSTILE,
            tags=[HOSTILE],
            attributes={HOSTILE: HOSTILE, "note": HOSTILE, "set-up": HOSTILE},
        ),
    )
    answer = client.get("/datasets", params={"tag": HOSTILE, "attr": f"note={HOSTILE}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    (found,) = answer.json()["datasets"]
    assert found["name"] == HOSTILE
    assert found["tags"] == [HOSTILE]
    assert found["attributes"][HOSTILE] == HOSTILE
    assert answer.json()["facets"]["set_ups"] == [{"value": HOSTILE, "count": 1}]
    assert client.get(f"/datasets/{saved.uuid}").json()["description"] == HOSTILE
    text_search = client.get("/datasets", params={"q": HOSTILE}).json()
    assert [d["uuid"] for d in text_search["datasets"]] == [saved.uuid]


def test_download_streams_the_stored_hdf5_file(
    client: TestClient, synced: dict[str, str], mongo_db: Database[Document]
) -> None:
    record_doc = mongo_db.datasets.find_one({"alt_uid": synced["2d"]})
    assert record_doc is not None
    (file,) = record_doc["files"]
    answer = client.get(f"/datasets/{record_doc['_id']}/file")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-hdf5"
    assert f'filename="{file["name"]}"' in answer.headers["content-disposition"]
    assert answer.content == Path(file["location"]).read_bytes()
    assert hashlib.md5(answer.content, usedforsecurity=False).hexdigest() == file["md5"]
    same = client.get(f"/datasets/{record_doc['_id']}/file", params={"version": 1})
    assert same.content == answer.content


def test_download_of_a_missing_file_is_404_saying_so(
    client: TestClient, synced: dict[str, str], mongo_db: Database[Document]
) -> None:
    record_doc = mongo_db.datasets.find_one({"alt_uid": synced["1d"]})
    assert record_doc is not None
    Path(record_doc["files"][0]["location"]).unlink()
    answer = client.get(f"/datasets/{record_doc['_id']}/file")
    assert answer.status_code == 404
    assert answer.json()["error"] == "DatasetFileMissingError"
    assert "is missing" in answer.json()["detail"]
    version = client.get(f"/datasets/{record_doc['_id']}/file", params={"version": 3})
    assert version.status_code == 404
    assert version.json()["error"] == "FileVersionNotFoundError"


@pytest.mark.parametrize(
    "path",
    [
        "/datasets/no-such-uuid",
        "/datasets/no-such-uuid/file",
        "/datasets/by-alt-uid?scope=scope-1&alt_uid=nope",
    ],
)
def test_unknown_ids_are_404(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.json()["error"] == "DatasetNotFoundError"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"attr": "no-equals-sign"}, "attr"),
        ({"attr": "=value"}, "attr"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"collected_after": "yesterday"}, "collected_after"),
        ({"collected_before": "2026-13-45"}, "collected_before"),
        ({"status": "finished"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"min_ranking": "high"}, "min_ranking"),
        ({"min_ranking": str(2**63)}, "min_ranking"),  # beyond 64 bits: was a 500
        ({"facets": "maybe"}, "facets"),
    ],
)
def test_malformed_parameters_are_422_naming_the_parameter(
    client: TestClient, params: dict[str, str], parameter: str
) -> None:
    answer = client.get("/datasets", params=params)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    if isinstance(detail, str):
        assert detail.startswith(f"{parameter}=")
    else:
        assert detail[0]["loc"][:2] == ["query", parameter]  # an attr item: [.., "attr", 0]


def test_bad_version_is_422_and_routes_are_in_openapi(client: TestClient) -> None:
    answer = client.get("/datasets/x/file", params={"version": "0"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "version"]
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/datasets",
        "/datasets/by-alt-uid",
        "/datasets/{uuid}",
        "/datasets/{uuid}/file",
    } <= set(paths)
