"""The console's chip health page: what needs recalibrating on a chip, and why.

The judgement is :class:`~qops.maintenance.health.HealthService`'s, the same as
``GET /maintenance/health`` and ``qops maintenance health``: stale, out-of-spec, degrading
and missing parameters, and the calibration steps that would fix them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response

from qops.console.provenance_views import entity_url, format_time, format_value, parameter_url
from qops.console.templating import render
from qops.maintenance.api import get_health_service
from qops.maintenance.health import ParameterHealth

router = APIRouter(prefix="/console", include_in_schema=False)


@dataclass(frozen=True)
class HealthRow:
    """One parameter of the health table."""

    parameter_name: str
    qid: str
    value: str
    unit: str
    version: str
    measured: str
    age: str
    trend: str
    findings: list[str]
    reasons: list[str]
    history_url: str | None
    entity_url: str | None


def _row(health: ParameterHealth, chip_id: str) -> HealthRow:
    trend = "-"
    if health.worsening_versions:
        trend = f"worse {health.worsening_versions}x in a row"
    elif health.direction.value != "none" and health.version is not None:
        trend = "steady or better"
    return HealthRow(
        parameter_name=health.parameter_name,
        qid=health.qid,
        value=format_value(health.value),
        unit=health.unit,
        version="-" if health.version is None else f"v{health.version}",
        measured=format_time(health.valid_from),
        age="-" if health.age_hours is None else f"{health.age_hours:.1f}\u00a0h",
        trend=trend,
        findings=[str(f) for f in health.findings],
        reasons=health.reasons,
        history_url=None
        if health.version is None
        else parameter_url(health.parameter_name, health.qid, chip_id),
        entity_url=None if health.entity_id is None else entity_url(health.entity_id),
    )


@router.get("/chips/{chip_id}/health")
def chip_health_page(request: Request, chip_id: str) -> Response:
    """A chip's stale, out-of-spec, degrading and missing parameters and the steps to run."""
    report = get_health_service(request).chip_health(chip_id)
    rows = [_row(p, chip_id) for p in report.parameters]
    context = {
        "title": f"Health of chip {chip_id}",
        "chip_id": chip_id,
        "report": report,
        "flagged": [r for r in rows if r.findings],
        "rows": rows,
        "generated_at": format_time(report.generated_at),
    }
    return render(request, "chip_health.html", context)
