"""The console's chip pages: chips known, and per chip its current parameters, state and
latest calibrations.

The values shown are exactly what the chip's 2300 backend serves with get_dynamic: they come
from the same :class:`~qops.backend.sources.CalibrationSource` (by default
:class:`~qops.backend.provenance_source.ProvenanceCalibrationSource` over the provenance
store, as ``qops backend serve`` reads it). The state is resolved from the shared backend
state store as the backend resolves it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qops.backend.errors import CalibrationUnavailableError, StateStoreError
from qops.backend.provenance_source import ProvenanceCalibrationSource
from qops.backend.sources import CalibrationSource
from qops.backend.state import BackendStateStore
from qops.console.chip_data import CalibrationDatasets, DatasetLink
from qops.console.chip_views import StateView, chip_parameters, state_view
from qops.console.errors import UnknownChipError
from qops.console.provenance import flow_run_url, provenance_service
from qops.console.provenance_views import execution_url, format_time
from qops.console.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

LATEST_CALIBRATIONS = 10
"""Calibrations listed on a chip's page."""


def calibration_source(request: Request) -> CalibrationSource:
    """The source get_dynamic reads: the configured one, else the provenance store."""
    configured: CalibrationSource | None = request.app.state.calibration_source
    if configured is not None:
        return configured
    service = provenance_service(request)
    return ProvenanceCalibrationSource(service.repository, service.default_project_id)


def chip_state(request: Request, chip_id: str) -> StateView:
    """The chip's backend state, or UNKNOWN with why."""
    store: BackendStateStore | None = request.app.state.backend_state
    if store is None:
        return state_view(None)
    try:
        return state_view(store.marks(chip_id))
    except StateStoreError as e:
        return state_view(None, str(e))


@dataclass(frozen=True)
class CalibrationRow:
    """One of the latest calibrations of a chip."""

    execution_id: str
    url: str
    started_at: str
    ended_at: str
    task_count: int
    version_count: int
    prefect_url: str | None
    datasets: list[DatasetLink]


@router.get("/chips")
def chips_page(request: Request) -> Response:
    """Every chip with a recorded calibration, with its state."""
    service = provenance_service(request)
    chips = [
        {"chip_id": chip_id, "state": chip_state(request, chip_id)}
        for chip_id in service.chip_ids()
    ]
    return render(request, "chip_list.html", {"title": "Chips", "chips": chips})


@router.get("/chips/{chip_id}")
def chip_page(request: Request, chip_id: str) -> Response:
    """A chip's current parameters per qubit and pair, its state, its latest calibrations."""
    service = provenance_service(request)
    project = service.default_project_id
    values_failure: str | None = None
    try:
        values = calibration_source(request).current_parameters(chip_id)
    except CalibrationUnavailableError as e:
        values, values_failure = [], str(e)
    known = chip_id in service.chip_ids()
    if not known and not values and values_failure is None:
        raise UnknownChipError(chip_id, project)
    versions = service.current_versions(chip_id)
    executions = service.executions(LATEST_CALIBRATIONS, chip_id=chip_id).executions
    written = service.versions_of_executions([e.execution_id for e in executions])
    datasets: CalibrationDatasets | None = request.app.state.calibration_datasets
    calibrations = [
        CalibrationRow(
            execution_id=e.execution_id,
            url=execution_url(e.execution_id),
            started_at=format_time(e.started_at),
            ended_at=format_time(e.ended_at),
            task_count=e.task_count,
            version_count=sum(1 for v in written if v.execution_id == e.execution_id),
            prefect_url=flow_run_url(request, e.execution_id),
            datasets=[] if datasets is None else datasets.of_execution(e.execution_id),
        )
        for e in executions
    ]
    context = {
        "title": f"Chip {chip_id}",
        "chip_id": chip_id,
        "parameters": chip_parameters(values, versions),
        "values_failure": values_failure,
        "state": chip_state(request, chip_id),
        "calibrations": calibrations,
        "prefect_configured": bool(request.app.state.prefect_ui_url),
    }
    return render(request, "chip.html", context)
