"""The console's dataset pages: search with facets, one dataset, its quick-look plot.

- ``GET /console/datasets``: a plain GET form (free text, tag, attribute, set-up, status,
  collected range), facet counts that link to the narrowed search, the results newest
  first, the total and a link to the next page (the catalog's cursor). No script needed.
- ``GET /console/datasets/{uuid}``: every field of the record, its file versions, the
  provenance of its run (each file version's sync, the parameter versions fitted from
  the run, links to its lineage and impact), the
  download link (``/datasets/{uuid}/file``) and the plot, which ``datasets-plot.js``
  fetches from the endpoint below (no inline script: the content security policy).
- ``GET /console/datasets/{uuid}/plot``: the plot as JSON, reduced on the server to the
  plot's pixel size (see :mod:`qops.console.plotting`).

Query values come in as text and are parsed here, so a blank form field means "no filter"
and a malformed one is a 422 naming the parameter.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Protocol
from urllib.parse import urlencode

import xarray as xr
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError

from qops.catalog.errors import DatasetFileMissingError, FileVersionNotFoundError
from qops.catalog.models import DatasetRecord, DatasetStatus
from qops.catalog.search import DatasetFile, DatasetPage, DatasetQuery
from qops.console.plotly_css import plotly_style_ids
from qops.console.plotting import MAX_PIXELS, MIN_PIXELS, parse_slices, plot_data
from qops.console.provenance_views import entity_url, format_time, format_value
from qops.console.templating import render
from qops.errors import QopsError
from qops.provenance.errors import EntityNotFoundError, InvalidEntityIdError
from qops.provenance.service import ProvenanceService

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/console/datasets", include_in_schema=False)

_DATETIME = TypeAdapter(datetime)


class DatasetCatalog(Protocol):
    """What the pages need of the catalog (``qops.catalog.search.CatalogQueryService``)."""

    def search(self, query: DatasetQuery, *, facets: bool = True) -> DatasetPage: ...

    def get(self, uuid: str) -> DatasetRecord: ...

    def file(self, uuid: str, version: int | None = None) -> DatasetFile: ...

    def open_dataset(self, uuid: str, version: int | None = None) -> xr.Dataset | xr.DataTree: ...

    def datasets_of_run(self, alt_uid: str) -> list[DatasetRecord]: ...


class ConsoleParameterError(QopsError):
    """A console page's query parameter has a value that cannot be used.

    Args:
        parameter: The query parameter's name.
        reason: What is wrong with the value.
    """

    def __init__(self, parameter: str, reason: str) -> None:
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"invalid query parameter {parameter}: {reason}")


def _catalog(request: Request) -> DatasetCatalog:
    catalog: DatasetCatalog = request.app.state.catalog_service
    return catalog


def _blank(value: str | None) -> str | None:
    return None if value is None or not value.strip() else value.strip()


def _time(parameter: str, value: str | None) -> datetime | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        moment = _DATETIME.validate_python(value)
    except ValidationError as e:
        raise ConsoleParameterError(parameter, f"{value!r} is not a date or ISO time") from e
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _until(value: str | None) -> datetime | None:
    """``collected_before``: a date alone (the form's date field) includes that whole day."""
    moment = _time("collected_before", value)
    if moment is not None and value is not None and _DATE_ONLY.match(value.strip()):
        moment += timedelta(days=1)
    return moment


def _attributes(values: list[str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for value in values:
        if not value.strip():
            continue
        key, sep, wanted = value.partition("=")
        if not sep or not key.strip():
            raise ConsoleParameterError("attr", f"{value!r} is not key=value")
        attributes[key.strip()] = wanted.strip()
    return attributes


def _status(value: str | None) -> DatasetStatus | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        return DatasetStatus(value)
    except ValueError as e:
        allowed = ", ".join(s.value for s in DatasetStatus)
        raise ConsoleParameterError("status", f"{value!r} is not one of {allowed}") from e


def _ranking(value: str | None) -> int | None:
    value = _blank(value)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as e:
        raise ConsoleParameterError("min_ranking", f"{value!r} is not an integer") from e


def _with(params: list[tuple[str, str]], **changes: str | None) -> str:
    """Return the search URL of ``params`` with ``changes`` (None removes; cursor dropped)."""
    kept = [(k, v) for k, v in params if k not in changes and k != "cursor"]
    kept += [(k, v) for k, v in changes.items() if v is not None]
    return "/console/datasets" + (f"?{urlencode(kept)}" if kept else "")


def _adding(params: list[tuple[str, str]], key: str, value: str) -> str:
    kept = [(k, v) for k, v in params if k != "cursor"]
    if (key, value) not in kept:
        kept.append((key, value))
    return f"/console/datasets?{urlencode(kept)}"


def _removing(params: list[tuple[str, str]], key: str, value: str) -> str:
    kept = [(k, v) for k, v in params if (k, v) != (key, value) and k != "cursor"]
    return "/console/datasets" + (f"?{urlencode(kept)}" if kept else "")


@router.get("")
def search_page(
    request: Request,
    q: str | None = None,
    tag: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    attr: Annotated[list[str], Query()] = [],  # noqa: B006
    set_up: str | None = None,
    status: str | None = None,
    collected_after: str | None = None,
    collected_before: str | None = None,
    min_ranking: str | None = None,
    source: str | None = None,
    scope: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """The search page: form, facets, results, total, next page."""
    tags = [t.strip() for t in tag if t.strip()]
    attributes = _attributes(attr)
    query = DatasetQuery(
        text=_blank(q),
        tags=tags,
        attributes=attributes,
        set_up=_blank(set_up),
        status=_status(status),
        collected_after=_time("collected_after", collected_after),
        collected_before=_until(collected_before),
        min_ranking=_ranking(min_ranking),
        source=_blank(source),
        scope=_blank(scope),
        cursor=_blank(cursor),
        limit=limit,
    )
    page = _catalog(request).search(query, facets=True)
    # The current search as (name, value) pairs, blanks left out: facet and chip links
    # add or remove one pair of it.
    params = [
        (k, v.strip()) for k, v in request.query_params.multi_items() if v.strip() and k != "cursor"
    ]
    active = [
        {"label": f"{k}: {v}", "url": _removing(params, k, v)} for k, v in params if k != "limit"
    ]
    facets = page.facets
    facet_groups: list[dict[str, object]] = []
    if facets is not None:
        facet_groups.append(
            {
                "title": "Tags",
                "items": [
                    {
                        "value": f.value,
                        "count": f.count,
                        "url": _adding(params, "tag", f.value),
                        "active": f.value in tags,
                    }
                    for f in facets.tags
                ],
            }
        )
        facet_groups.append(
            {
                "title": "Set-ups",
                "items": [
                    {
                        "value": f.value,
                        "count": f.count,
                        "url": _with(params, set_up=f.value),
                        "active": f.value == _blank(set_up),
                    }
                    for f in facets.set_ups
                ],
            }
        )
        for key, counts in facets.attributes.items():
            facet_groups.append(
                {
                    "title": key,
                    "items": [
                        {
                            "value": f.value,
                            "count": f.count,
                            "url": _adding(params, "attr", f"{key}={f.value}"),
                            "active": attributes.get(key) == f.value,
                        }
                        for f in counts
                    ],
                }
            )
    next_url = None
    if page.next_cursor:
        next_url = "/console/datasets?" + urlencode([*params, ("cursor", page.next_cursor)])
    context = {
        "title": "Datasets",
        "form": {
            "q": _blank(q) or "",
            "tags": tags,
            "attrs": [f"{k}={v}" for k, v in attributes.items()],
            "set_up": _blank(set_up) or "",
            "status": _blank(status) or "",
            "collected_after": _blank(collected_after) or "",
            "collected_before": _blank(collected_before) or "",
            "min_ranking": _blank(min_ranking) or "",
            "limit": limit,
        },
        "statuses": [s.value for s in DatasetStatus],
        "page": page,
        "rows": [_row(record) for record in page.datasets],
        "facet_groups": facet_groups,
        "active": active,
        "next_url": next_url,
        "first_url": _with(params) if _blank(cursor) else None,
    }
    return render(request, "datasets.html", context)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _row(record: DatasetRecord) -> dict[str, object]:
    return {
        "uuid": record.uuid,
        "name": record.name,
        "collected": _when(record.collected),
        "tags": record.tags,
        "set_up": record.attributes.get("set-up", ""),
        "status": record.status.value,
        "ranking": record.ranking,
        "url": f"/console/datasets/{record.uuid}",
    }


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _file_problem(catalog: DatasetCatalog, record: DatasetRecord) -> str | None:
    """Why the dataset's data cannot be plotted or downloaded (None: the file is there)."""
    if not record.files:
        return "This dataset has no data file yet."
    try:
        found = catalog.file(record.uuid)
    except (DatasetFileMissingError, FileVersionNotFoundError) as e:
        return f"The data file is missing: {e}."
    if isinstance(found.path, Path) and not found.path.is_file():
        return (
            f"The data file is missing: version {found.file.version} ({found.file.name}) "
            f"is not at {found.path}. The metadata is what the catalog recorded."
        )
    # A file in an object store is only opened when plotted or downloaded.
    return None


def _provenance(request: Request, record: DatasetRecord) -> dict[str, object] | None:
    """The provenance section of a dataset page: its run's synced file versions with their
    sync, the parameter versions fitted from the run, links to its graphs; ``None`` if
    nothing is recorded of the run (one provenance query of four commands)."""
    service: ProvenanceService = request.app.state.provenance_service
    try:
        found = service.dataset(record.alt_uid)
    except (EntityNotFoundError, InvalidEntityIdError):
        return None
    files = []
    for f in found.files:
        if f.file.dataset_uuid != record.uuid:
            continue  # the same run synced into another scope
        sync = f.generated_by
        files.append(
            {
                "version": f.file.version,
                "url": entity_url(f.file.entity_id),
                "synced": "" if sync is None else format_time(sync.started_at),
                "source": f.file.source,
                "host": "" if sync is None or sync.agent is None else sync.agent.host or "",
                "agent": "" if sync is None or sync.agent is None else sync.agent.name,
            }
        )
    return {
        "files": files,
        "derived": [
            {
                "label": f"{v.parameter_name} {v.qid} v{v.version}",
                "value": format_value(v.value),
                "unit": v.unit,
                "task": v.task_name,
                "url": entity_url(v.entity_id),
            }
            for v in found.derived_versions
        ],
        "raw_url": entity_url(found.entity_id),
        "impact_url": entity_url(found.entity_id, "impact"),
        "lineage_url": entity_url(found.entity_id, "lineage"),
    }


@router.get("/{uuid}")
def dataset_page(request: Request, uuid: str) -> Response:
    """One dataset: metadata, attributes, file versions, download link and plot."""
    catalog = _catalog(request)
    record = catalog.get(uuid)
    problem = _file_problem(catalog, record)
    files = [
        {
            "name": f.name,
            "version": f.version,
            "size": _size(f.size),
            "rows": f.rows,
            "complete": f.complete,
            "created": _when(f.created),
            "md5": f.md5,
            "url": f"/datasets/{record.uuid}/file?version={f.version}",
        }
        for f in sorted(record.files, key=lambda f: f.version, reverse=True)
    ]
    context = {
        "title": record.name or record.uuid,
        "record": record,
        "provenance": _provenance(request, record),
        "collected": _when(record.collected),
        "synced_at": _when(record.synced_at),
        "attributes": sorted(record.attributes.items()),
        "files": files,
        "problem": problem,
        "download_url": f"/datasets/{record.uuid}/file",
        "plot_url": f"/console/datasets/{record.uuid}/plot",
        "plotly_style_ids": plotly_style_ids(),
    }
    return render(request, "datasets_show.html", context)


@router.get("/{uuid}/plot")
def dataset_plot(
    request: Request,
    uuid: str,
    var: str | None = None,
    slice: Annotated[list[str], Query()] = [],  # noqa: B006 - the parameter's public name
    width: Annotated[int, Query(ge=MIN_PIXELS, le=MAX_PIXELS)] = 900,
    height: Annotated[int, Query(ge=MIN_PIXELS, le=MAX_PIXELS)] = 500,
) -> Response:
    """The quick-look plot of the dataset's latest file as JSON (Plotly traces and layout).

    The ``Server-Timing`` header gives the time to open the file and to reduce the data.
    """
    catalog = _catalog(request)
    slices = parse_slices(slice)
    started = time.perf_counter()
    data = catalog.open_dataset(uuid)
    opened = time.perf_counter()
    plot = plot_data(data, variable=_blank(var), slices=slices, width=width, height=height)
    body = plot.model_dump_json()
    reduced = time.perf_counter()
    open_ms, reduce_ms = (opened - started) * 1e3, (reduced - opened) * 1e3
    logger.debug(
        "plot of %s (%s): open %.1f ms, reduce %.1f ms, %d bytes",
        uuid,
        plot.variable,
        open_ms,
        reduce_ms,
        len(body),
    )
    timing = f"open;dur={open_ms:.1f}, reduce;dur={reduce_ms:.1f}"
    return Response(body, media_type="application/json", headers={"Server-Timing": timing})


__all__ = ["ConsoleParameterError", "DatasetCatalog", "router"]
