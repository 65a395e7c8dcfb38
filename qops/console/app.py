"""The HTTP app of ``qops api serve``: the JSON APIs and the console's pages.

:func:`create_app` is the factory; the composition root (``qops.cli``) builds the services
and hands them in, and endpoints reach them through ``request.app.state``. One set of
exception handlers answers for all of it: unknown things 404, bad input 422 naming the
parameter, an unreachable database 503 (a :class:`~qops.errors.MongoUnavailableError` or
pymongo's own connection failure), as a page on console paths and as JSON elsewhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly
from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from qops.backend.sources import CalibrationSource
from qops.backend.state import BackendStateStore
from qops.catalog.api import router as catalog_router
from qops.catalog.search import CatalogQueryService
from qops.console.auth import AuthMiddleware, ConsoleAuth
from qops.console.chip import router as chip_router
from qops.console.chip_data import CalibrationDatasets
from qops.console.datasets import router as datasets_router
from qops.console.health import router as health_pages
from qops.console.provenance import assets as provenance_assets
from qops.console.provenance import router as provenance_pages
from qops.console.security import SecurityHeadersMiddleware
from qops.console.templating import render, wants_html
from qops.errors import QopsError
from qops.maintenance.api import router as maintenance_router
from qops.maintenance.health import HealthService
from qops.maintenance.policy import MaintenanceSettings
from qops.mongo import UNREACHABLE_ERRORS, unavailable
from qops.provenance.api import router as provenance_router
from qops.provenance.api import status_of, use_openapi_with_prov_json
from qops.provenance.service import ProvenanceService

logger = logging.getLogger(__name__)

_STATIC = Path(__file__).parent / "static"
_PLOTLY_JS = Path(plotly.__file__).parent / "package_data"


@dataclass(frozen=True)
class ConsoleServices:
    """What the app serves, built by the composition root.

    Attributes:
        provenance: Calibration provenance queries (``/provenance/...`` and its pages).
        catalog: Dataset search and files (``/datasets/...`` and its pages).
        calibration_source: What the chip page shows as current values: the source the
            2300 backend's get_dynamic reads; ``None``: the provenance store of the project.
        backend_state: The shared backend state store (chip page state); ``None``: unknown.
        calibration_datasets: The catalog datasets of a calibration; ``None``: not linked.
        prefect_ui_url: The Prefect UI, for links to calibration flow runs; ``None``: none.
        health: Chip health (``/maintenance/...``); ``None``: over ``provenance`` with the
            policy of :class:`~qops.maintenance.policy.MaintenanceSettings`.
    """

    provenance: ProvenanceService
    catalog: CatalogQueryService
    calibration_source: CalibrationSource | None = None
    backend_state: BackendStateStore | None = None
    calibration_datasets: CalibrationDatasets | None = None
    prefect_ui_url: str | None = None
    health: HealthService | None = None


pages = APIRouter(include_in_schema=False)


@pages.get("/")
def home(request: Request) -> Response:
    """The console's start page."""
    return render(request, "home.html", {"title": "qops"})


def _error_answer(request: Request, status: int, title: str, detail: str, kind: str) -> Response:
    if wants_html(request):
        context = {"title": title, "status": status, "detail": detail}
        return render(request, "error.html", context, status=status)
    return JSONResponse({"detail": detail, "error": kind}, status)


async def _qops_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, QopsError)
    status = status_of(error)
    logger.info("%s %s -> %d: %s", request.method, request.url.path, status, error)
    title = {404: "Not found", 503: "Database unavailable"}.get(status, "Bad request")
    return _error_answer(request, status, title, str(error), type(error).__name__)


async def _mongo_unreachable(request: Request, error: Exception) -> Response:
    # A pymongo connection failure on a client that was connected: the same 503 as a
    # MongoUnavailableError (qops.mongo.unavailable is where one becomes the other).
    assert isinstance(error, UNREACHABLE_ERRORS)
    return await _qops_error(request, unavailable(error))


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    if not wants_html(request):
        # qops.http_errors.ValidationErrorBody, as FastAPI's own handler encodes it.
        return JSONResponse({"detail": jsonable_encoder(error.errors())}, 422)
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "query")
        problems.append(f"{where}: {item.get('msg', 'invalid')}")
    return _error_answer(request, 422, "Bad request", "; ".join(problems), "RequestValidationError")


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if not wants_html(request):
        # qops.http_errors.ErrorBody, like every other error of a JSON path.
        body = {"detail": str(error.detail), "error": "HTTPException"}
        return JSONResponse(body, error.status_code, headers=error.headers)
    title = "Not found" if error.status_code == 404 else "Error"
    answer = _error_answer(request, error.status_code, title, str(error.detail), "HTTPException")
    if error.headers:
        answer.headers.update(error.headers)
    return answer


def create_app(services: ConsoleServices, auth: ConsoleAuth | None = None) -> FastAPI:
    """Return the app serving the JSON APIs (OpenAPI at ``/docs``) and the console pages.

    Args:
        services: What the endpoints serve.
        auth: Credentials every request must carry (a 401 otherwise, on every path);
            ``None`` serves anyone (only for a loopback address, see
            :func:`qops.console.auth.check_bind`).
    """
    app = FastAPI(
        title="qops",
        description=(
            "The dataset catalog, calibration provenance and the console of the qops lab "
            "operations."
        ),
        version="1",
    )
    app.state.provenance_service = services.provenance
    app.state.calibration_source = services.calibration_source
    app.state.backend_state = services.backend_state
    app.state.calibration_datasets = services.calibration_datasets
    app.state.prefect_ui_url = services.prefect_ui_url
    app.include_router(provenance_router)
    app.state.health_service = services.health or HealthService(
        services.provenance, MaintenanceSettings().policy()
    )
    app.include_router(maintenance_router)
    app.state.catalog_service = services.catalog
    app.include_router(catalog_router)
    app.include_router(pages)
    app.include_router(datasets_router)
    app.include_router(provenance_pages)
    app.include_router(chip_router)
    app.include_router(health_pages)
    app.include_router(provenance_assets)
    # plotly.js comes out of the installed plotly package: nothing is loaded from elsewhere.
    app.mount("/static/vendor/plotly", StaticFiles(directory=_PLOTLY_JS), name="plotly")
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    app.add_exception_handler(QopsError, _qops_error)
    for unreachable in UNREACHABLE_ERRORS:
        app.add_exception_handler(unreachable, _mongo_unreachable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    if auth is not None:
        # Added before the security headers so that they wrap it: a 401 carries them too.
        app.add_middleware(AuthMiddleware, auth=auth)
    app.add_middleware(SecurityHeadersMiddleware)
    use_openapi_with_prov_json(app)
    if auth is not None:
        _declare_authentication(app, auth)
    return app


def _declare_authentication(app: FastAPI, auth: ConsoleAuth) -> None:
    """Make the OpenAPI state what :class:`AuthMiddleware` does: credentials, else a 401.

    HTTP Basic always, a bearer token when one is configured; every operation declares the
    401 and its body (an :class:`~qops.http_errors.ErrorBody`, ``"error":
    "NotAuthenticated"``).
    """
    generate = app.openapi
    schemes = {"basic": {"type": "http", "scheme": "basic"}}
    if auth.token is not None:
        schemes["bearer"] = {"type": "http", "scheme": "bearer"}
    unauthorized = {
        "description": "No valid credentials (a WWW-Authenticate challenge is sent).",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }

    def openapi() -> dict[str, Any]:
        document = generate()
        if "securitySchemes" not in document.setdefault("components", {}):
            document["components"]["securitySchemes"] = schemes
            document["security"] = [{name: []} for name in schemes]
            for item in document.get("paths", {}).values():
                for operation in item.values():
                    operation.setdefault("responses", {})["401"] = unauthorized
        return document

    app.openapi = openapi  # type: ignore[method-assign]
