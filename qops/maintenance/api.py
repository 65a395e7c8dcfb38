"""The maintenance HTTP API: a chip's health and the steps to run (thin over HealthService)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from qops.http_errors import error_responses
from qops.maintenance.health import ChipHealth, HealthService


def get_health_service(request: Request) -> HealthService:
    """The service the app was created with."""
    service: HealthService = request.app.state.health_service
    return service


Service = Annotated[HealthService, Depends(get_health_service)]

router = APIRouter(prefix="/maintenance", tags=["maintenance"])


@router.get("/health", response_model=ChipHealth, responses=error_responses(404, 422, 503))
def get_health(
    chip_id: Annotated[str, Query(min_length=1, description="The chip to judge.")],
    service: Service,
    project_id: Annotated[
        str | None,
        Query(min_length=1, description="Project; default QOPS_PROJECT_ID of the server."),
    ] = None,
    target: Annotated[
        list[str] | None,
        Query(
            min_length=1,
            description="A qubit or pair of the chip (repeatable); missing ones are reported.",
        ),
    ] = None,
) -> ChipHealth:
    """Stale, out-of-spec, degrading and missing parameters of a chip, and the steps to run."""
    return service.chip_health(chip_id, project_id, target)
