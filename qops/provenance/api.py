"""The provenance HTTP API (FastAPI): thin routers over :class:`ProvenanceService`.

:func:`create_app` is the factory; the service is handed in by the composition root and
reaches each endpoint through ``Depends``. One exception handler turns qops errors into
HTTP statuses: unknown things 404, bad input 422, an unreachable database 503.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from qops.errors import MongoUnavailableError, NotFoundError, QopsError
from qops.mongo import UNREACHABLE_ERRORS, unavailable
from qops.provenance.models import (
    ChangesResponse,
    CompareResponse,
    ExecutionsResponse,
    GraphResponse,
    HistoryResponse,
    ParameterVersion,
    StatsResponse,
)
from qops.provenance.service import DEFAULT_REL_TOL, ProvenanceService

logger = logging.getLogger(__name__)


def get_service(request: Request) -> ProvenanceService:
    """The service the app was created with."""
    service: ProvenanceService = request.app.state.provenance_service
    return service


Service = Annotated[ProvenanceService, Depends(get_service)]
ProjectId = Annotated[
    str | None, Query(description="Project to query; default QOPS_PROJECT_ID of the server.")
]
MaxDepth = Annotated[int, Query(description="Hops to follow; must be >= 1, capped at 50.")]

router = APIRouter(prefix="/provenance", tags=["provenance"])


@router.get("/entities/{entity_id}", response_model=ParameterVersion)
def get_entity(entity_id: str, service: Service, project_id: ProjectId = None) -> ParameterVersion:
    """One parameter version."""
    return service.entity(entity_id, project_id)


@router.get("/history", response_model=HistoryResponse)
def get_history(
    parameter_name: str,
    qid: str,
    service: Service,
    limit: int = 50,
    project_id: ProjectId = None,
    chip_id: Annotated[
        str | None, Query(description="Chip whose version chain to return; default every chip.")
    ] = None,
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
        return JSONResponse(document, media_type="application/json")
    if direction == "impact":
        return service.impact(entity_id, max_depth, project_id)
    return service.lineage(entity_id, max_depth, project_id)


@router.get("/lineage/{entity_id}", response_model=GraphResponse)
def get_lineage(
    entity_id: str,
    service: Service,
    max_depth: MaxDepth = 5,
    project_id: ProjectId = None,
    output_format: Annotated[Literal["json", "prov-json"], Query(alias="format")] = "json",
) -> GraphResponse | JSONResponse:
    """Ancestors of an entity (``format=prov-json`` for a W3C PROV-JSON document)."""
    return _graph_response(service, entity_id, max_depth, project_id, output_format, "lineage")


@router.get("/impact/{entity_id}", response_model=GraphResponse)
def get_impact(
    entity_id: str,
    service: Service,
    max_depth: MaxDepth = 5,
    project_id: ProjectId = None,
    output_format: Annotated[Literal["json", "prov-json"], Query(alias="format")] = "json",
) -> GraphResponse | JSONResponse:
    """Descendants of an entity (``format=prov-json`` for a W3C PROV-JSON document)."""
    return _graph_response(service, entity_id, max_depth, project_id, output_format, "impact")


@router.get("/compare", response_model=CompareResponse)
def get_compare(
    execution_id_before: str,
    execution_id_after: str,
    service: Service,
    rel_tol: float = DEFAULT_REL_TOL,
    project_id: ProjectId = None,
) -> CompareResponse:
    """Parameters added, removed and changed between two executions."""
    return service.compare(execution_id_before, execution_id_after, rel_tol, project_id)


@router.get("/stats", response_model=StatsResponse)
def get_stats(service: Service, project_id: ProjectId = None) -> StatsResponse:
    """Counts of entities, activities, relations by type and executions."""
    return service.stats(project_id)


@router.get("/executions", response_model=ExecutionsResponse)
def get_executions(
    service: Service, limit: int = 20, project_id: ProjectId = None
) -> ExecutionsResponse:
    """Recent executions with their time and task count."""
    return service.executions(limit, project_id)


@router.get("/changes", response_model=ChangesResponse)
def get_changes(
    service: Service,
    limit: int = 20,
    within_hours: float = 24.0,
    project_id: ProjectId = None,
    chip_id: Annotated[
        str | None, Query(description="Only this chip's changes; default every chip.")
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
    return app
