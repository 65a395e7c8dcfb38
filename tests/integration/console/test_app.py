"""The console's HTTP app over the embedded MongoDB: pages, errors, headers, static files."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from qops.catalog.search import CatalogQueryService
from qops.console.app import ConsoleServices, create_app
from qops.console.security import CONTENT_SECURITY_POLICY
from qops.mongo import Document
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService


@pytest.fixture
def client(mongo_db: Database[Document]) -> TestClient:
    repository = MongoProvenanceRepository(mongo_db)
    repository.ensure_indexes()
    services = ConsoleServices(
        provenance=ProvenanceService(repository, "console-test"),
        catalog=CatalogQueryService(mongo_db),
    )
    return TestClient(create_app(services))


def test_home_page_served_with_security_headers(client: TestClient) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert '<a href="/console/datasets">' in answer.text
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_unknown_console_page_is_html_404_and_unknown_api_path_json_404(
    client: TestClient,
) -> None:
    page = client.get("/console/no-such-page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text
    api = client.get("/provenance/entities/t1:Q0:nope:nope")
    assert api.status_code == 404
    assert api.json()["error"] == "EntityNotFoundError"


def test_static_files_and_plotly_served_by_the_server_itself(client: TestClient) -> None:
    css = client.get("/static/qops.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    plotly_js = client.get("/static/vendor/plotly/plotly.min.js")
    assert plotly_js.status_code == 200
    assert "plotly" in plotly_js.text[:2000].lower()
    assert len(plotly_js.content) > 1_000_000


def test_malformed_api_parameter_is_422_naming_it(client: TestClient) -> None:
    answer = client.get("/provenance/executions", params={"limit": "many"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "limit"]


def test_qops_error_from_an_unreachable_database_is_503() -> None:
    """A wrapped pymongo connection failure (as the backend state store raises) is a 503."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    from qops.backend.errors import StateStoreError
    from qops.process import free_port
    from qops.provenance.api import status_of

    client: MongoClient[dict[str, object]] = MongoClient(
        f"mongodb://127.0.0.1:{free_port()}/", serverSelectionTimeoutMS=200
    )
    try:
        client.admin.command("ping")
    except PyMongoError as e:
        wrapped = StateStoreError("chip-a", f"cannot read backend_state: {e}")
        wrapped.__cause__ = e
    finally:
        client.close()
    assert status_of(wrapped) == 503
    assert status_of(StateStoreError("chip-a", "a stored mark is malformed")) == 422
