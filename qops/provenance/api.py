"""The provenance HTTP API (FastAPI): thin routers over :class:`ProvenanceService`.

:func:`create_app` is the factory; the service is handed in by the composition root and
reaches each endpoint through ``Depends``. One exception handler turns qops errors into
HTTP statuses: unknown things 404, bad input 422, an unreachable database 503. Each route
declares every status it answers with and its body (:mod:`qops.http_errors`), and the
bounds it enforces; ``format=prov-json`` answers are ``application/prov+json`` with the
PROV-JSON schema, so the declared 200 schema of each media type holds.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse

from qops.errors import MongoUnavailableError, NotFoundError, QopsError
from qops.http_errors import error_responses
from qops.mongo import UNREACHABLE_ERRORS, unavailable
from qops.provenance.models import (
    ChangesResponse,
    CompareResponse,
    DatasetProvenance,
    ExecutionsResponse,
    GraphResponse,
    HistoryResponse,
    ParameterVersion,
    StatsResponse,
)
from qops.provenance.prov_json import MEDIA_TYPE as PROV_JSON_MEDIA_TYPE
from qops.provenance.prov_json import SCHEMA_NAME as PROV_JSON_SCHEMA
from qops.provenance.prov_json import openapi_schemas
from qops.provenance.service import (
    DEFAULT_REL_TOL,
    MAX_DEPTH,
    MAX_LIMIT,
    MAX_WITHIN_HOURS,
    ProvenanceService,
)

logger = logging.getLogger(__name__)


def get_service(request: Request) -> ProvenanceService:
    """The service the app was created with."""
    service: ProvenanceService = request.app.state.provenance_service
    return service


Service = Annotated[ProvenanceService, Depends(get_service)]
ProjectId = Annotated[
    str | None,
    Query(min_length=1, description="Project to query; default QOPS_PROJECT_ID of the server."),
]
ENTITY_ID_PATTERN = "^[^:]+:[^:]+:[^:]+:[^:]+$"
"""Four non-empty ``:``-free parts (``qops.provenance.ids``); a part may hold ``/``."""
EntityId = Annotated[
    str,
    Path(
        description="{parameter_name}:{qid}:{execution_id}:{task_id}; a part may contain '/' "
        "(sent as is or as %2F).",
        # Declared, and checked by the service (a 422 naming the malformed id).
        json_schema_extra={"pattern": ENTITY_ID_PATTERN},
    ),
]
GRAPH_ID_PATTERN = "^(?:[^:]+:[^:]+:[^:]+:[^:]+|dataset:[^:]+|dataset-file:[^:]+:v[0-9]+)$"
"""A parameter version's id, ``dataset:{guid}`` or ``dataset-file:{dataset_uuid}:v{n}``."""
GraphEntityId = Annotated[
    str,
    Path(
        description="A parameter version ({parameter_name}:{qid}:{execution_id}:{task_id}), "
        "a raw measurement (dataset:{guid}) or a synced file version "
        "(dataset-file:{dataset_uuid}:v{version}); a part may contain '/'.",
        json_schema_extra={"pattern": GRAPH_ID_PATTERN},
    ),
]
Guid = Annotated[
    str,
    Path(
        description="The QCoDeS GUID of the run; it may contain '/' but not ':'.",
        json_schema_extra={"pattern": "^[^:]+$"},
    ),
]
MaxDepth = Annotated[
    int, Query(ge=1, description=f"Hops to follow, at least 1; larger than {MAX_DEPTH} is capped.")
]
Limit = Annotated[
    int, Query(ge=1, description=f"Rows to return, at least 1; larger than {MAX_LIMIT} is capped.")
]
ChipId = Annotated[
    str | None,
    Query(min_length=1, description="Chip whose version chain to return; default every chip."),
]
OutputFormat = Annotated[
    Literal["json", "prov-json"],
    Query(
        alias="format",
        description=f"json (application/json), or prov-json: a W3C PROV-JSON document "
        f"({PROV_JSON_MEDIA_TYPE}).",
    ),
]

router = APIRouter(prefix="/provenance", tags=["provenance"])
_GRAPH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The graph (format=json), or a W3C PROV-JSON document "
        f"(format=prov-json, {PROV_JSON_MEDIA_TYPE}).",
        "content": {
            PROV_JSON_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{PROV_JSON_SCHEMA}"}}
        },
    },
    **error_responses(404, 422, 503),
}


# The entity routes take the path converter: an id whose parts hold "/" stays reachable.
@router.get(
    "/entities/{entity_id:path}",
    response_model=ParameterVersion,
    responses=error_responses(404, 422, 503),
)
def get_entity(
    entity_id: EntityId, service: Service, project_id: ProjectId = None
) -> ParameterVersion:
    """One parameter version."""
    return service.entity(entity_id, project_id)


@router.get(
    "/datasets/{guid:path}",
    response_model=DatasetProvenance,
    responses=error_responses(404, 422, 503),
)
def get_dataset(guid: Guid, service: Service, project_id: ProjectId = None) -> DatasetProvenance:
    """A raw measurement (QCoDeS run): its synced file versions with their sync activity,
    the parameter versions fitted from it and the activities that used it."""
    return service.dataset(guid, project_id)


@router.get("/history", response_model=HistoryResponse, responses=error_responses(422, 503))
def get_history(
    parameter_name: Annotated[str, Query(min_length=1)],
    qid: Annotated[str, Query(min_length=1)],
    service: Service,
    limit: Limit = 50,
    project_id: ProjectId = None,
    chip_id: ChipId = None,
) -> HistoryResponse:
    """Versions of a parameter of a qid, newest first, with ``total_versions``."""
    return service.history(parameter_name, qid, limit, project_id, chip_id)


def _graph_response(
    service: ProvenanceService,
    entity_id: str,
    max_depth: int,
    project_id: str | None,
    output: Literal["json", "prov-json"],
    direction: Literal["lineage", "impact"],
) -> GraphResponse | JSONResponse:
    if output == "prov-json":
        document = service.export_prov_json(entity_id, max_depth, project_id, direction=direction)
        return JSONResponse(document, media_type=PROV_JSON_MEDIA_TYPE)
    if direction == "impact":
        return service.impact(entity_id, max_depth, project_id)
    return service.lineage(entity_id, max_depth, project_id)


@router.get("/lineage/{entity_id:path}", response_model=GraphResponse, responses=_GRAPH_RESPONSES)
def get_lineage(
    entity_id: GraphEntityId,
    service: Service,
    max_depth: MaxDepth = 5,
    project_id: ProjectId = None,
    output_format: OutputFormat = "json",
) -> GraphResponse | JSONResponse:
    """Ancestors of an entity (``format=prov-json`` for a W3C PROV-JSON document)."""
    return _graph_response(service, entity_id, max_depth, project_id, output_format, "lineage")


@router.get("/impact/{entity_id:path}", response_model=GraphResponse, responses=_GRAPH_RESPONSES)
def get_impact(
    entity_id: GraphEntityId,
    service: Service,
    max_depth: MaxDepth = 5,
    project_id: ProjectId = None,
    output_format: OutputFormat = "json",
) -> GraphResponse | JSONResponse:
    """Descendants of an entity (``format=prov-json`` for a W3C PROV-JSON document)."""
    return _graph_response(service, entity_id, max_depth, project_id, output_format, "impact")


@router.get("/compare", response_model=CompareResponse, responses=error_responses(404, 422, 503))
def get_compare(
    execution_id_before: str,
    execution_id_after: str,
    service: Service,
    rel_tol: Annotated[
        float,
        Query(ge=0, allow_inf_nan=False, description="Relative tolerance of 'unchanged', >= 0."),
    ] = DEFAULT_REL_TOL,
    project_id: ProjectId = None,
) -> CompareResponse:
    """Parameters added, removed and changed between two executions."""
    return service.compare(execution_id_before, execution_id_after, rel_tol, project_id)


@router.get("/stats", response_model=StatsResponse, responses=error_responses(422, 503))
def get_stats(service: Service, project_id: ProjectId = None) -> StatsResponse:
    """Counts of entities, activities, relations by type and executions."""
    return service.stats(project_id)


@router.get("/executions", response_model=ExecutionsResponse, responses=error_responses(422, 503))
def get_executions(
    service: Service, limit: Limit = 20, project_id: ProjectId = None
) -> ExecutionsResponse:
    """Recent executions with their time and task count."""
    return service.executions(limit, project_id)


@router.get("/changes", response_model=ChangesResponse, responses=error_responses(422, 503))
def get_changes(
    service: Service,
    limit: Limit = 20,
    within_hours: Annotated[
        float,
        Query(
            gt=0,
            le=MAX_WITHIN_HOURS,
            allow_inf_nan=False,
            description=f"The window, in hours: > 0 and <= {MAX_WITHIN_HOURS}.",
        ),
    ] = 24.0,
    project_id: ProjectId = None,
    chip_id: Annotated[
        str | None,
        Query(min_length=1, description="Only this chip's changes; default every chip."),
    ] = None,
) -> ChangesResponse:
    """Recent parameter changes with previous value and delta."""
    return service.changes(limit, within_hours, project_id, chip_id)


def status_of(error: QopsError) -> int:
    """The HTTP status of a qops error: 404 not found, 503 database unreachable, else 422.

    A qops error raised from one of pymongo's connection failures (the backend's state
    store and calibration source wrap theirs) is a 503 too: the database did not answer.
    The console's app answers with the same statuses.
    """
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, MongoUnavailableError) or isinstance(error.__cause__, UNREACHABLE_ERRORS):
        return 503
    return 422


async def _qops_error(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, UNREACHABLE_ERRORS):
        error = unavailable(error)
    assert isinstance(error, QopsError)
    status = status_of(error)
    logger.info("%s %s -> %d: %s", request.method, request.url.path, status, error)
    return JSONResponse({"detail": str(error), "error": type(error).__name__}, status)


def create_app(service: ProvenanceService) -> FastAPI:
    """Return the HTTP app serving ``service`` (OpenAPI at ``/docs``)."""
    app = FastAPI(
        title="qops provenance",
        description="W3C PROV-DM lineage of calibration parameters.",
        version="1",
    )
    app.state.provenance_service = service
    app.include_router(router)
    app.add_exception_handler(QopsError, _qops_error)
    for unreachable in UNREACHABLE_ERRORS:
        app.add_exception_handler(unreachable, _qops_error)
    use_openapi_with_prov_json(app)
    return app


def use_openapi_with_prov_json(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI carry the PROV-JSON component schemas the routes refer to.

    FastAPI builds component schemas from pydantic models only; the PROV-JSON document's
    schema is the JSON Schema file the exports are tested against
    (:func:`qops.provenance.prov_json.openapi_schemas`), added once to the generated document.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI's, built once and kept in app.openapi_schema
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if PROV_JSON_SCHEMA not in schemas:
            schemas.update(openapi_schemas())
        return document

    app.openapi = openapi  # type: ignore[method-assign]
