"""``qops datasets search|show|download``: find datasets in the catalog and fetch their files.

Reads MongoDB only (no Prefect, no QCoDeS). Tables by default, ``--json`` for the same
answers the HTTP API gives.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from qops.catalog.errors import InvalidDatasetQueryError
from qops.catalog.models import DatasetRecord, DatasetStatus
from qops.catalog.search import (
    CHUNK_BYTES,
    CatalogQueryService,
    DatasetPage,
    DatasetQuery,
    parse_attributes,
)
from qops.cli.common import fail
from qops.config import MongoSettings
from qops.mongo import database
from qops.timeutil import as_utc

app = typer.Typer(help="Search the dataset catalog and download files.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _service() -> CatalogQueryService:
    service = CatalogQueryService(database(MongoSettings()))
    service.ensure_indexes()
    return service


def _time(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError as e:
        raise InvalidDatasetQueryError(
            option, value, "an ISO 8601 date or time (2026-12-01, 2026-12-01T18:00+01:00)"
        ) from e


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return as_utc(value).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_text(c).replace("\n", " ") for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_page(page: DatasetPage) -> None:
    _table(
        ["collected", "uuid", "name", "status", "set-up", "tags"],
        [
            [
                d.collected,
                d.uuid,
                _shorten(d.name, 40),
                d.status.value,
                d.attributes.get("set-up"),
                _shorten(", ".join(d.tags), 50),
            ]
            for d in page.datasets
        ],
    )
    shown = len(page.datasets)
    typer.echo(f"{shown} of {page.total} datasets")
    if page.next_cursor:
        typer.echo(f"more: --cursor {page.next_cursor}")


@app.command()
def search(
    text: Annotated[str | None, typer.Option(help="Free text in name or description.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable; all).")] = None,
    attr: Annotated[
        list[str] | None, typer.Option("--attr", help="key=value (repeatable; all).")
    ] = None,
    after: Annotated[str | None, typer.Option(help="Collected at or after (ISO; UTC).")] = None,
    before: Annotated[str | None, typer.Option(help="Collected before (ISO; UTC).")] = None,
    source: Annotated[str | None, typer.Option(help="Sync source.")] = None,
    set_up: Annotated[str | None, typer.Option("--set-up", help="The set-up attribute.")] = None,
    scope: Annotated[str | None, typer.Option(help="Scope.")] = None,
    status: Annotated[DatasetStatus | None, typer.Option(help="Dataset status.")] = None,
    min_ranking: Annotated[int | None, typer.Option(help="Least ranking.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Datasets per page.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Datasets matching every given filter, newest first."""
    query = DatasetQuery(
        text=text,
        tags=tag or [],
        attributes=parse_attributes(attr or [], "--attr"),
        min_ranking=min_ranking,
        collected_after=_time("--after", after),
        collected_before=_time("--before", before),
        source=source,
        set_up=set_up,
        scope=scope,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    page = _service().search(query, facets=as_json)
    if as_json:
        typer.echo(page.model_dump_json(indent=2))
        return
    _print_page(page)


def _print_record(record: DatasetRecord) -> None:
    fields = [
        ("uuid", record.uuid),
        ("name", record.name),
        ("collected", _text(record.collected)),
        ("status", record.status.value),
        ("scope", record.scope),
        ("alt_uid", record.alt_uid),
        ("source", record.source),
        ("ranking", record.ranking),
        ("synced_at", _text(record.synced_at)),
        ("tags", ", ".join(record.tags) or "-"),
    ]
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        typer.echo(f"{key.ljust(width)}  {value}")
    typer.echo("description:")
    for line in (record.description or "-").splitlines():
        typer.echo(f"  {line}")
    typer.echo("attributes:")
    for key, value in sorted(record.attributes.items()):
        typer.echo(f"  {key} = {value}")
    typer.echo("files:")
    if not record.files:
        typer.echo("  none")
        return
    _table(
        ["version", "name", "size", "rows", "complete", "created", "md5", "location"],
        [
            [f.version, f.name, f.size, f.rows, f.complete, f.created, f.md5, f.location]
            for f in record.files
        ],
    )


@app.command()
def show(
    uuid: Annotated[str | None, typer.Argument(help="The dataset's uuid.")] = None,
    alt_uid: Annotated[
        str | None, typer.Option("--alt-uid", help="Look up by alt_uid (QCoDeS guid).")
    ] = None,
    scope: Annotated[str | None, typer.Option(help="The scope of --alt-uid.")] = None,
    as_json: JsonOption = False,
) -> None:
    """A dataset's metadata and file versions (by uuid, or --alt-uid with --scope)."""
    if (uuid is None) == (alt_uid is None):
        fail("give either a dataset uuid or --alt-uid (with --scope)")
    service = _service()
    if alt_uid is not None:
        if scope is None:
            fail("--alt-uid needs --scope")
        record = service.get_by_alt_uid(scope, alt_uid)
    else:
        assert uuid is not None
        record = service.get(uuid)
    if as_json:
        typer.echo(record.model_dump_json(indent=2))
        return
    _print_record(record)


@app.command()
def download(
    uuid: Annotated[str, typer.Argument(help="The dataset's uuid.")],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File or directory (default: the file's name here)."),
    ] = None,
    version: Annotated[
        int | None, typer.Option(min=1, help="File version (default latest).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Copy a dataset's HDF5 file (latest or --version) to a local file."""
    service = _service()
    dataset_file = service.file(uuid, version)
    target = output if output is not None else Path(dataset_file.file.name)
    if target.is_dir():
        target = target / dataset_file.file.name
    partial = target.with_name(target.name + ".partial")
    try:
        with service.open_bytes(dataset_file) as source, open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink, CHUNK_BYTES)
        os.replace(partial, target)
    except OSError as e:
        partial.unlink(missing_ok=True)
        fail(f"cannot write {target}: {e.strerror or e}")
    size = target.stat().st_size
    if as_json:
        facts = {"path": str(target), "version": dataset_file.file.version, "size": size}
        typer.echo(json.dumps(facts))
        return
    typer.echo(f"wrote {target} ({size} bytes, version {dataset_file.file.version})")
