"""The OpenAPI of ``qops api serve`` against what the app does: schemathesis over ASGI.

The real app (``qops.console.app.create_app``) on the embedded MongoDB, with a recorded
calibration history (so real entity and execution ids exist) and catalog datasets (one with
a real file). Every operation of the schema is fuzzed with positive data (conforming to the
schema; part of the cases carry real ids, the others random ones) and negative data (not
conforming), and each answer is checked: no 500, the status code and the content type are
declared, the body conforms to the declared schema of its media type, schema-valid data is
not refused (422) and schema-invalid data is. Bounded: a few examples per operation and
mode, no shrinking, no example database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from pymongo.database import Database
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from qops.catalog.models import FileVersion
from qops.catalog.search import CatalogQueryService, DatasetQuery
from qops.console.app import ConsoleServices, create_app
from qops.console.auth import ConsoleAuth
from qops.mongo import Document
from qops.provenance.api import GRAPH_ID_PATTERN
from qops.provenance.models import DatasetEntity, Measured
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.integration.catalog.catalog_records import T0, record, save
from tests.integration.provenance.records import PROJECT, make_record, record_chain

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
]
# negative_data_rejection is left out: it counts a type mutation of a string query item
# (tag=false, a boolean for a string) as schema-violating, though a query carries only text.
OPAQUE = {"cursor"}
"""Parameters only the API itself makes: a positive case always carries a real one."""
EXAMPLES = 12
"""Generated cases per operation and mode: the whole test stays within a few tens of s."""
MEASURED = DatasetEntity(
    guid="aaaaaaaa-0000-0000-0000-00000000fit1", name="ramsey", run_id=3, source_db="lab.db"
)
"""A raw measurement a recorded version was fitted from."""


def _history(mongo_db: Database[Document]) -> dict[str, list[Any]]:
    """Record two calibrations (and a version whose execution id holds ``/``); their ids."""
    repository = MongoProvenanceRepository(mongo_db)
    repository.ensure_indexes()
    first = record_chain(repository, "exec-1", 5.0e9)
    second = record_chain(repository, "exec-2", 5.1e9)
    slashed = repository.record(
        make_record("run/7", "t/8", {"t2_echo": Measured(value=8e-5, unit="s")})
    )
    # A version fitted from a raw measurement, so /provenance/datasets/{guid} answers 200.
    fitted = make_record("exec-3", "t", {"t2_ramsey": Measured(value=2e-5, unit="s")})
    repository.record(fitted.model_copy(update={"datasets": [MEASURED]}))
    return {
        "entity_id": [
            *(first[name] for name in ("qubit_frequency", "rabi_amplitude", "t1")),
            *(second[name] for name in ("qubit_frequency", "rabi_amplitude", "t1")),
            *slashed.entity_ids.values(),
        ],
        "execution_id_before": ["exec-1"],
        "execution_id_after": ["exec-2", "run/7"],
        "parameter_name": ["t1", "qubit_frequency"],
        "qid": ["Q0"],
        "project_id": [PROJECT],
        "guid": [MEASURED.guid],
    }


def _datasets(mongo_db: Database[Document], tmp_path: Path) -> dict[str, list[Any]]:
    """Save catalog records, one of them with a real file; their ids."""
    content = b"\x89HDF\r\n\x1a\n" + bytes(range(256))
    path = tmp_path / "run-0.h5"
    path.write_bytes(content)
    with_file = record(0, tags=["t1"], attributes={"set-up": "fridge-1"}).model_copy(
        update={
            "files": [
                FileVersion(
                    name="run-0.h5",
                    version=1,
                    location=str(path),
                    size=len(content),
                    md5=hashlib.md5(content).hexdigest(),
                    rows=10,
                    complete=True,
                    created=T0,
                )
            ]
        }
    )
    records = save(mongo_db, with_file, record(1, tags=["rabi"]), record(2))
    first_page = CatalogQueryService(mongo_db).search(DatasetQuery(limit=1), facets=False)
    assert first_page.next_cursor is not None
    return {
        # Opaque: only a next_cursor is a cursor, so positive cases take a real one.
        "cursor": [first_page.next_cursor],
        "uuid": [r.uuid for r in records],
        "alt_uid": [r.alt_uid for r in records],
        "scope": [records[0].scope],
        "tag": ["t1"],
        "version": [1],
    }


@pytest.fixture
def app_and_ids(
    mongo_db: Database[Document], tmp_path: Path
) -> tuple[FastAPI, dict[str, list[Any]]]:
    catalog = CatalogQueryService(mongo_db)
    catalog.ensure_indexes()
    services = ConsoleServices(
        provenance=ProvenanceService(MongoProvenanceRepository(mongo_db), PROJECT),
        catalog=catalog,
    )
    ids = {**_history(mongo_db), **_datasets(mongo_db, tmp_path)}
    return create_app(services), ids


def _with_real_ids(
    case: Any, ids: dict[str, list[Any]], draw: Callable[[st.SearchStrategy[Any]], Any]
) -> None:
    """Give most parameters of a positive case a recorded value, so 200s are exercised."""
    for container in (case.path_parameters, case.query):
        if not container:
            continue
        for name in list(container):
            if name in OPAQUE or (name in ids and draw(st.integers(0, 3)) > 0):
                container[name] = draw(st.sampled_from(ids[name]))


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    ids: dict[str, list[Any]],
    seen: set[tuple[str, int, str]],
) -> str | None:
    """Run one operation's cases in one mode; the first failure's report, or None.

    Adds each answer's ``(operation, status, media type)`` to ``seen``.
    """

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE:
            _with_real_ids(case, ids, data.draw)
        response = case.call_and_validate(checks=CHECKS)
        media_type = response.headers.get("content-type", [""])[0].split(";")[0]
        seen.add((operation.label, response.status_code, media_type))

    try:
        run()
    except Unsatisfiable:
        # No case of this mode exists (an operation whose every parameter accepts any
        # string has no negative data).
        assert mode is GenerationMode.NEGATIVE, operation.label
    except (Failure, FailureGroup) as e:
        found = e.exceptions if isinstance(e, FailureGroup) else (e,)
        # The request that failed (schemathesis's curl line) and the answer it got.
        request = [line.strip() for line in str(e).splitlines() if "curl " in line]
        return f"{operation.label} [{mode.value}]: {' '.join(request[:1])}\n" + "\n".join(
            f"  - {failure.title}: {' / '.join(failure.message.splitlines()[:2])}"
            for failure in found
        )
    except Exception as e:  # the app raised (a 500): reported with the others
        return f"{operation.label} [{mode.value}]: the app raised {type(e).__name__}: {e}"
    return None


def test_openapi_fuzzed_every_answer_is_declared_and_conforms(
    app_and_ids: tuple[FastAPI, dict[str, list[Any]]],
) -> None:
    app, ids = app_and_ids
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {operation.label for operation in operations}
    assert {
        "GET /provenance/entities/{entity_id}",
        "GET /provenance/lineage/{entity_id}",
        "GET /datasets/{uuid}/file",
    } <= labels
    seen: set[tuple[str, int, str]] = set()
    failures = [
        failure
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := _fuzz(operation, mode, ids, seen)) is not None
    ]
    assert not failures, "\n\n".join(failures)
    # The recorded ids were reached: real answers were checked, not only errors.
    assert {
        ("GET /provenance/entities/{entity_id}", 200, "application/json"),
        ("GET /provenance/lineage/{entity_id}", 200, "application/json"),
        ("GET /provenance/lineage/{entity_id}", 200, "application/prov+json"),
        ("GET /provenance/impact/{entity_id}", 200, "application/prov+json"),
        ("GET /provenance/compare", 200, "application/json"),
        ("GET /provenance/datasets/{guid}", 200, "application/json"),
        ("GET /provenance/history", 200, "application/json"),
        ("GET /datasets/{uuid}", 200, "application/json"),
        ("GET /datasets/{uuid}/file", 200, "application/x-hdf5"),
        ("GET /provenance/entities/{entity_id}", 404, "application/json"),
        ("GET /provenance/entities/{entity_id}", 422, "application/json"),
    } <= seen, sorted(seen)


def test_openapi_prov_json_answer_conforms_to_its_declared_content(
    app_and_ids: tuple[FastAPI, dict[str, list[Any]]],
) -> None:
    app, ids = app_and_ids
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    t1 = next(i for i in ids["entity_id"] if i.startswith("t1:"))
    for route in ("lineage", "impact"):
        operation = schema[f"/provenance/{route}/{{entity_id}}"]["GET"]
        case = operation.Case(
            path_parameters={"entity_id": t1}, query={"format": "prov-json", "max_depth": 3}
        )
        response = case.call_and_validate(
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ]
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == ["application/prov+json"]
        assert f"qops:{t1}" in response.json()["entity"]


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def _query(operation: dict[str, Any], name: str) -> dict[str, Any]:
    found = next(p for p in operation["parameters"] if p["name"] == name)
    schema: dict[str, Any] = found["schema"]
    return schema.get("anyOf", [schema])[0]


def test_openapi_declares_every_error_status_and_enforced_bound(
    app_and_ids: tuple[FastAPI, dict[str, list[Any]]],
) -> None:
    app, _ = app_and_ids
    document = app.openapi()
    operations = _operations(document)
    api = {
        k: v for k, v in operations.items() if k.startswith(("GET /provenance", "GET /datasets"))
    }
    assert len(api) == 13
    for label, operation in api.items():
        assert {"422", "503"} <= set(operation["responses"]), label
        unprocessable = operation["responses"]["422"]["content"]["application/json"]["schema"]
        assert unprocessable == {"$ref": "#/components/schemas/UnprocessableBody"}, label
    for label in (
        "GET /provenance/entities/{entity_id}",
        "GET /provenance/lineage/{entity_id}",
        "GET /provenance/impact/{entity_id}",
        "GET /provenance/compare",
        "GET /provenance/datasets/{guid}",
        "GET /datasets/{uuid}",
        "GET /datasets/by-alt-uid",
        "GET /datasets/{uuid}/file",
    ):
        assert "404" in operations[label]["responses"], label
    lineage = operations["GET /provenance/lineage/{entity_id}"]
    assert set(lineage["responses"]["200"]["content"]) == {
        "application/json",
        "application/prov+json",
    }
    assert _query(lineage, "max_depth")["minimum"] == 1
    assert _query(lineage, "project_id")["minLength"] == 1
    assert _query(lineage, "entity_id")["pattern"] == GRAPH_ID_PATTERN
    entity = operations["GET /provenance/entities/{entity_id}"]
    assert _query(entity, "entity_id")["pattern"] == "^[^:]+:[^:]+:[^:]+:[^:]+$"
    assert _query(operations["GET /provenance/executions"], "limit")["minimum"] == 1
    changes = operations["GET /provenance/changes"]
    assert _query(changes, "within_hours")["exclusiveMinimum"] == 0
    assert _query(changes, "within_hours")["maximum"] == 24 * 365 * 100
    assert _query(operations["GET /provenance/compare"], "rel_tol")["minimum"] == 0
    assert _query(operations["GET /datasets"], "min_ranking")["maximum"] == 2**63 - 1
    components = document["components"]["schemas"]
    assert {"ErrorBody", "ValidationErrorBody", "ProvJsonDocument", "ProvJsonEntity"} <= set(
        components
    )


def test_openapi_with_authentication_declares_the_401_every_operation_answers(
    mongo_db: Database[Document],
) -> None:
    services = ConsoleServices(
        provenance=ProvenanceService(MongoProvenanceRepository(mongo_db), PROJECT),
        catalog=CatalogQueryService(mongo_db),
    )
    auth = ConsoleAuth(token=SecretStr("s3cret"), user="qops", password=None)
    app = create_app(services, auth=auth)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers={"Authorization": "Bearer s3cret"}
    )
    assert schema.raw_schema["components"]["securitySchemes"] == {
        "basic": {"type": "http", "scheme": "basic"},
        "bearer": {"type": "http", "scheme": "bearer"},
    }
    for path in ("/provenance/stats", "/datasets/{uuid}"):
        operation = schema[path]["GET"]
        case = operation.Case(path_parameters={"uuid": "x"} if "uuid" in path else {})
        response = case.call_and_validate(  # no credentials: the 401, as declared
            checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
        )
        assert response.status_code == 401
        assert response.json()["error"] == "NotAuthenticated"
