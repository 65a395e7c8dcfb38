"""The catalog's HTTP API (FastAPI): thin routers over :class:`CatalogQueryService`.

The service is built by the composition root and reaches the endpoints through
``request.app.state.catalog_service``; the app's exception handlers answer for the qops
errors it raises (unknown datasets 404, malformed parameters 422 naming the parameter).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import Field

from qops.catalog.errors import DatasetFileMissingError
from qops.catalog.models import DatasetRecord, DatasetStatus
from qops.catalog.search import (
    CHUNK_BYTES,
    CatalogQueryService,
    DatasetPage,
    DatasetQuery,
    parse_attributes,
)
from qops.http_errors import error_responses

HDF5_MEDIA_TYPE = "application/x-hdf5"
ATTRIBUTE_PATTERN = "^[^=]+="
"""``key=value`` with a non-empty key (the first ``=`` separates)."""


def get_service(request: Request) -> CatalogQueryService:
    """The catalog service the app was created with."""
    service: CatalogQueryService = request.app.state.catalog_service
    return service


Service = Annotated[CatalogQueryService, Depends(get_service)]

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.get("", response_model=DatasetPage, responses=error_responses(422, 503))
def search_datasets(
    service: Service,
    q: Annotated[str | None, Query(description="Free text in name or description.")] = None,
    tag: Annotated[list[str] | None, Query(description="Tags, all required.")] = None,
    attr: Annotated[
        list[Annotated[str, Field(pattern=ATTRIBUTE_PATTERN)]] | None,
        Query(description="key=value attributes (a non-empty key), all required."),
    ] = None,
    min_ranking: Annotated[
        int | None,
        # A 64-bit integer, as MongoDB stores rankings (a larger one is refused, not a 500).
        Query(ge=-(2**63), le=2**63 - 1, description="Least ranking (a 64-bit integer)."),
    ] = None,
    collected_after: Annotated[
        datetime | None, Query(description="ISO time, inclusive (naive: UTC).")
    ] = None,
    collected_before: Annotated[
        datetime | None, Query(description="ISO time, exclusive (naive: UTC).")
    ] = None,
    source: Annotated[str | None, Query(description="Sync source name.")] = None,
    set_up: Annotated[str | None, Query(description="The set-up attribute.")] = None,
    scope: Annotated[str | None, Query(description="Scope.")] = None,
    status: Annotated[DatasetStatus | None, Query(description="Dataset status.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Datasets per page.")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    facets: Annotated[bool, Query(description="Count tags, set-ups and attributes.")] = True,
) -> DatasetPage:
    """Datasets matching every given filter, newest first, with the total and facet counts."""
    query = DatasetQuery(
        text=q or None,
        tags=tag or [],
        attributes=parse_attributes(attr or []),
        min_ranking=min_ranking,
        collected_after=collected_after,
        collected_before=collected_before,
        source=source,
        set_up=set_up,
        scope=scope,
        status=status,
        limit=limit,
        cursor=cursor or None,
    )
    return service.search(query, facets=facets)


@router.get("/by-alt-uid", response_model=DatasetRecord, responses=error_responses(404, 422, 503))
def get_dataset_by_alt_uid(scope: str, alt_uid: str, service: Service) -> DatasetRecord:
    """The dataset of ``alt_uid`` (a QCoDeS guid) in ``scope``."""
    return service.get_by_alt_uid(scope, alt_uid)


@router.get("/{uuid}", response_model=DatasetRecord, responses=error_responses(404, 422, 503))
def get_dataset(uuid: str, service: Service) -> DatasetRecord:
    """One dataset: its metadata and file versions."""
    return service.get(uuid)


@router.get(
    "/{uuid}/file",
    response_class=Response,
    responses={
        200: {
            "content": {HDF5_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The HDF5 file.",
        },
        **error_responses(404, 422, 503),
    },
)
def download_dataset_file(
    uuid: str,
    service: Service,
    version: Annotated[
        int | None, Query(ge=1, description="File version; latest if absent.")
    ] = None,
) -> Response:
    """The dataset's HDF5 file (latest or ``version``), streamed."""
    dataset_file = service.file(uuid, version)
    name = dataset_file.file.name
    if isinstance(dataset_file.path, Path):
        if not dataset_file.path.is_file():
            raise DatasetFileMissingError(
                uuid, dataset_file.file.version, dataset_file.file.location, "no such file"
            )
        return FileResponse(
            dataset_file.path, media_type=HDF5_MEDIA_TYPE, filename=name, stat_result=None
        )
    handle = service.open_bytes(dataset_file)

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(CHUNK_BYTES):
                yield block

    return StreamingResponse(
        chunks(),
        media_type=HDF5_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
