"""The console's provenance pages: parameter history, lineage and impact, executions, compare.

Thin handlers over :class:`~qops.provenance.service.ProvenanceService`; what a page shows is
computed by :mod:`qops.console.provenance_views`. Unknown ids raise qops "not found" errors
(a 404 page), malformed query parameters fail validation (a 422 page naming them).
"""

from __future__ import annotations

import json
from typing import Annotated, Protocol

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from qops.catalog.models import DatasetRecord
from qops.console.errors import UnknownParameterError
from qops.console.plotly_css import plotly_style_ids, plotly_stylesheet
from qops.console.provenance_views import (
    EDGE_STYLES,
    NODE_STYLES,
    Direction,
    RawMeasurement,
    dataset_url,
    entity_url,
    execution_rows,
    execution_url,
    format_delta,
    format_time,
    format_value,
    graph_dot,
    history_figure,
    history_rows,
    node_rows,
    parameter_url,
    raw_measurement,
    render_svg,
    run_label,
)
from qops.console.templating import render
from qops.provenance.ids import EntityKind, dataset_entity_id, entity_kind
from qops.provenance.models import DatasetEntity
from qops.provenance.service import MAX_DEPTH, MAX_LIMIT, ProvenanceService

router = APIRouter(prefix="/console", include_in_schema=False)

Depth = Annotated[int, Query(ge=1, le=MAX_DEPTH, description=f"Hops to follow, 1 to {MAX_DEPTH}.")]
DirectionQuery = Annotated[Direction, Query(description="lineage (ancestors) or impact.")]


class RunDatasets(Protocol):
    """What the provenance pages need of the catalog
    (:class:`qops.catalog.search.CatalogQueryService`): a run's datasets by its GUID."""

    def datasets_of_run(self, alt_uid: str) -> list[DatasetRecord]: ...


def provenance_service(request: Request) -> ProvenanceService:
    """The provenance service the app was created with."""
    service: ProvenanceService = request.app.state.provenance_service
    return service


@router.get("/parameters/{parameter_name}/{qid}")
def parameter_history(
    request: Request,
    parameter_name: Annotated[str, Path(min_length=1)],
    qid: Annotated[str, Path(min_length=1)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 500,
    chip: Annotated[
        str | None, Query(min_length=1, description="One chip's version chain; default: all.")
    ] = None,
) -> Response:
    """The versions of one parameter of one qid: a table and a plot of value over time.

    Versions are chained per chip: with ``chip`` the page shows that chip's chain, without
    it the versions of every chip, newest first, each with its chip.
    """
    service = provenance_service(request)
    history = service.history(parameter_name, qid, limit, chip_id=chip)
    if history.total_versions == 0:
        raise UnknownParameterError(parameter_name, qid, history.project_id)
    figure = history_figure(parameter_name, qid, history.versions)
    context = {
        "title": f"{parameter_name} of {qid}",
        "history": history,
        "rows": history_rows(history.versions),
        "chip": chip,
        "all_chips_url": None if chip is None else parameter_url(parameter_name, qid),
        "figure_json": None if figure is None else json.dumps(figure),
        "plotly_style_ids": plotly_style_ids(),
    }
    return render(request, "provenance_history.html", context)


def _graph_context(
    service: ProvenanceService, entity_id: str, direction: Direction, depth: int
) -> dict[str, object]:
    """What every entity page shows of its lineage or impact: the picture, its legend, the
    node list and the form that changes direction and depth."""
    if direction == "impact":
        graph = service.impact(entity_id, depth)
    else:
        graph = service.lineage(entity_id, depth)
    return {
        "other_direction_url": entity_url(
            entity_id, "impact" if direction == "lineage" else "lineage", depth
        ),
        "direction": direction,
        "depth": depth,
        "depths": list(range(1, 11)),
        "max_depth": MAX_DEPTH,
        "svg": render_svg(graph_dot(graph, depth)),
        "node_styles": list(NODE_STYLES.values()),
        "edge_styles": list(EDGE_STYLES.values()),
        "nodes": node_rows(graph, depth),
        "edge_count": len(graph.edges),
    }


def raw_measurements(request: Request, datasets: list[DatasetEntity]) -> list[RawMeasurement]:
    """``datasets`` with their catalog datasets, looked up by GUID (the catalog's
    ``alt_uid``, one query each)."""
    catalog: RunDatasets = request.app.state.catalog_service
    return [raw_measurement(d, catalog.datasets_of_run(d.guid)) for d in datasets]


# The path converter keeps an id whose parts hold "/" (linked as %2F) reachable.
@router.get("/entities/{entity_id:path}")
def entity_page(
    request: Request,
    entity_id: str,
    direction: DirectionQuery = "lineage",
    depth: Depth = 3,
) -> Response:
    """One entity and its lineage or impact graph as a picture.

    A parameter version shows its value and the raw measurements it was fitted from; a raw
    measurement (``dataset:{guid}``) or a synced file version (``dataset-file:...``) shows
    its own fields and its catalog dataset.
    """
    service = provenance_service(request)
    if entity_kind(entity_id) is not EntityKind.PARAMETER:
        return _other_entity_page(request, service, entity_id, direction, depth)
    version = service.entity(entity_id)
    context = {
        "title": f"{version.parameter_name} of {version.qid}, version {version.version}",
        "version": version,
        "value": format_value(version.value),
        "error": format_value(version.error),
        "valid_from": format_time(version.valid_from),
        "valid_until": format_time(version.valid_until) or "current",
        "history_url": parameter_url(version.parameter_name, version.qid, version.chip_id),
        "execution_url": execution_url(version.execution_id),
        "fitted_from": raw_measurements(request, service.fitted_from(version)),
        **_graph_context(service, entity_id, direction, depth),
    }
    return render(request, "provenance_entity.html", context)


def _other_entity_page(
    request: Request,
    service: ProvenanceService,
    entity_id: str,
    direction: Direction,
    depth: int,
) -> Response:
    entity = service.other_entity(entity_id)
    context: dict[str, object]
    if isinstance(entity, DatasetEntity):
        provenance = service.dataset(entity.guid)
        context = {
            "title": f"Raw measurement {run_label(entity)}",
            "raw": raw_measurements(request, [entity])[0],
            "derived": [
                {
                    "label": f"{v.parameter_name} {v.qid} v{v.version}",
                    "value": format_value(v.value),
                    "unit": v.unit,
                    "url": entity_url(v.entity_id),
                }
                for v in provenance.derived_versions
            ],
        }
    else:
        context = {
            "title": f"{entity.name}, file version {entity.version}",
            "file": entity,
            "created": format_time(entity.created),
            "catalog_url": dataset_url(entity.dataset_uuid),
            "dataset_url": entity_url(dataset_entity_id(entity.guid)),
            "previous_url": None
            if entity.previous_entity_id is None
            else entity_url(entity.previous_entity_id),
        }
    context["entity_id"] = entity_id
    context.update(_graph_context(service, entity_id, direction, depth))
    return render(request, "provenance_dataset_entity.html", context)


@router.get("/executions")
def executions_page(
    request: Request, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50
) -> Response:
    """Recent executions: time, task runs, the parameters each changed."""
    service = provenance_service(request)
    executions = service.executions(limit).executions
    versions = service.versions_of_executions([e.execution_id for e in executions])
    context = {
        "title": "Calibrations",
        "rows": execution_rows(executions, versions),
    }
    return render(request, "provenance_executions.html", context)


@router.get("/executions/{execution_id:path}")
def execution_page(request: Request, execution_id: str) -> Response:
    """One execution: its task runs and the versions they wrote; a form to compare it."""
    service = provenance_service(request)
    detail = service.execution(execution_id)
    recent = [e.execution_id for e in service.executions(50).executions]
    # Earlier executions first (the one before it preselected), then later ones.
    at = recent.index(execution_id) if execution_id in recent else len(recent)
    others = recent[at + 1 :] + recent[:at]
    versions = [
        {
            "name": v.parameter_name,
            "qid": v.qid,
            "version": v.version,
            "value": format_value(v.value),
            "error": format_value(v.error),
            "unit": v.unit,
            "task": v.task_name,
            "url": entity_url(v.entity_id),
            "history_url": parameter_url(v.parameter_name, v.qid, v.chip_id),
        }
        for v in detail.versions
    ]
    activities = [
        {
            "task": a.task_name,
            "qid": a.qid,
            "status": a.status.value,
            "started": format_time(a.started_at),
            "ended": format_time(a.ended_at),
            "error": a.error_message or "",
        }
        for a in detail.activities
    ]
    datasets = request.app.state.calibration_datasets
    context = {
        "title": f"Execution {execution_id}",
        "execution_id": execution_id,
        "activities": activities,
        "versions": versions,
        "others": others,
        "prefect_url": flow_run_url(request, execution_id),
        "datasets": [] if datasets is None else datasets.of_execution(execution_id),
    }
    return render(request, "provenance_execution.html", context)


def flow_run_url(request: Request, execution_id: str) -> str | None:
    """The Prefect UI page of the flow run an execution id names, if a UI URL is configured."""
    base: str | None = request.app.state.prefect_ui_url
    if not base or execution_id.startswith(("local-", "task-")):
        return None
    return f"{base.rstrip('/')}/runs/flow-run/{execution_id}"


@router.get("/compare")
def compare_page(
    request: Request,
    before: Annotated[str, Query(min_length=1, description="The earlier execution id.")],
    after: Annotated[str, Query(min_length=1, description="The later execution id.")],
) -> Response:
    """Parameters added, removed and changed (with deltas) from one execution to another."""
    service = provenance_service(request)
    result = service.compare(before, after)
    changed = [
        {
            "name": c.parameter_name,
            "qid": c.qid,
            "before": format_value(c.value_before),
            "after": format_value(c.value_after),
            "unit": c.unit,
            "delta": format_delta(c.delta, c.delta_percent),
            "history_url": parameter_url(c.parameter_name, c.qid),
        }
        for c in result.changed_parameters
    ]
    added = [
        {
            "name": a.parameter_name,
            "qid": a.qid,
            "value": format_value(a.value_after),
            "unit": a.unit,
            "history_url": parameter_url(a.parameter_name, a.qid),
        }
        for a in result.added_parameters
    ]
    removed = [
        {
            "name": r.parameter_name,
            "qid": r.qid,
            "value": format_value(r.value_before),
            "unit": r.unit,
            "history_url": parameter_url(r.parameter_name, r.qid),
        }
        for r in result.removed_parameters
    ]
    context = {
        "title": "Compare executions",
        "before": before,
        "after": after,
        "before_url": execution_url(before),
        "after_url": execution_url(after),
        "changed": changed,
        "added": added,
        "removed": removed,
        "unchanged": result.unchanged_count,
    }
    return render(request, "provenance_compare.html", context)


assets = APIRouter(include_in_schema=False)


@assets.get("/static/plotly.css")
def plotly_css() -> Response:
    """plotly.js's own style rules as a style sheet (see :mod:`qops.console.plotly_css`)."""
    return Response(
        plotly_stylesheet(),
        media_type="text/css",
        headers={"cache-control": "public, max-age=3600"},
    )
