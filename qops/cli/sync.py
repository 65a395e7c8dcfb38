"""``qops sync``, ``qops sources`` and ``qops backends``: the QCoDeS → catalog sync."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer
from pydantic import JsonValue

from qops.catalog.backends import installed_backends
from qops.catalog.repository import SyncItemRepository
from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import DEFAULT_SCOPE, SyncSources
from qops.cli.common import fail
from qops.config import MongoSettings
from qops.mongo import database
from tasks.source_mirror import BlockSourceMirror
from tasks.storage import file_store

sources_app = typer.Typer(help="Manage sync sources.", no_args_is_help=True)
backends_app = typer.Typer(help="Installed sync backends.", no_args_is_help=True)


@sources_app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument(help="Name of the new source.")],
    database_path: Annotated[
        Path, typer.Option("--database", help="The QCoDeS .db file (read-only).")
    ],
    set_up: Annotated[str, typer.Option("--set-up", help="Name of the experimental set-up.")],
    backend: Annotated[str, typer.Option(help="Sync backend identifier.")] = "qcodes",
    attr: Annotated[
        list[str] | None, typer.Option("--attr", help="Static attribute KEY=VALUE (repeatable).")
    ] = None,
    scope: Annotated[str, typer.Option(help="Scope of the datasets.")] = DEFAULT_SCOPE,
) -> None:
    """Register a sync source (stored in MongoDB and as a QCoDeSSyncSource block)."""
    attributes: dict[str, JsonValue] = {}
    for pair in attr or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--attr {pair!r} is not KEY=VALUE")
        attributes[key.strip()] = value
    source = SyncSources.create(
        name=name,
        backend_identifier=backend,
        config_data={
            "database_path": str(database_path),
            "set_up": set_up,
            "static_attributes": attributes,
        },
        default_scope=scope,
        mirror=BlockSourceMirror(),
    )
    typer.echo(f"added  {source.name}  {source.backend}  {source.config['database_path']}")


@sources_app.command("list")
def sources_list() -> None:
    """List the registered sync sources."""
    for source in SyncSources.list():
        typer.echo(
            f"{source.name}\t{source.backend}\t{source.default_scope}\t"
            f"{source.config.get('database_path')}\tset-up={source.config.get('set_up')}"
        )


@sources_app.command("remove")
def sources_remove(name: Annotated[str, typer.Argument(help="The source to remove.")]) -> None:
    """Unregister a source (its synced datasets stay in the catalog)."""
    SyncSources.remove(name, mirror=BlockSourceMirror())
    typer.echo(f"removed  {name}")


@backends_app.command("list")
def backends_list() -> None:
    """List installed backends: identifier, name, version, what they read with."""
    for identifier, backend in sorted(installed_backends().items()):
        typer.echo(f"{identifier}\t{backend.display_name}\t{backend.version}\t{backend.reads_with}")


def _status(name: str | None) -> None:
    items = SyncItemRepository(database(MongoSettings())).list(name)
    typer.echo("source\trun_id\tstate\tattempts\tfile_version\tlast_error")
    for item in items:
        typer.echo(
            f"{item.source}\t{item.run_id}\t{item.state.value}\t{item.attempts}\t"
            f"{item.file_version}\t{item.last_error or ''}"
        )


def _follow(name: str, storage_block: str | None, poll_s: float) -> None:
    settings = MongoSettings()
    stop = threading.Event()
    try:
        service = SyncService(
            database(settings), file_store(storage_block, settings.data_dir), SyncSettings()
        )
        service.ensure_indexes()
        for outcomes in service.follow(name, stop, poll_s):
            for outcome in outcomes:
                typer.echo(
                    f"{name} run {outcome.run_id}: {outcome.action} "
                    f"v{outcome.file_version} {outcome.error or ''}".rstrip()
                )
    except KeyboardInterrupt:
        stop.set()


def sync(
    args: Annotated[list[str], typer.Argument(help="NAME to sync one source, or: status [NAME].")],
    storage_block: Annotated[
        str | None, typer.Option(help="Writable filesystem block for the HDF5 files.")
    ] = None,
    follow: Annotated[
        bool, typer.Option(help="Keep syncing (live runs) until interrupted, without flow runs.")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between passes with --follow.")] = 0.5,
) -> None:
    """Sync a source now (one flow run of sync-qcodes), or show per-run state with `status`."""
    if args[0] == "status":
        if len(args) > 2:
            fail("usage: qops sync status [NAME]")
        _status(args[1] if len(args) == 2 else None)
        return
    if len(args) != 1:
        fail("usage: qops sync NAME  |  qops sync status [NAME]")
    if follow:
        _follow(args[0], storage_block, poll)
        return
    from flows.sync_qcodes import sync_qcodes

    SyncSources.get(args[0])  # a clear error before starting a flow run
    report = sync_qcodes(source_name=args[0], storage_block=storage_block)
    failed = False
    for source in report.sources:
        if source.error:
            failed = True
            typer.echo(f"{source.source}: discovery failed: {source.error}", err=True)
            continue
        typer.echo(
            f"{source.source}: {source.count('new')} new, {source.count('updated')} updated, "
            f"{source.count('live')} live, {source.count('failed')} failed"
        )
        for outcome in source.outcomes:
            if outcome.error:
                failed = True
                typer.echo(f"  run {outcome.run_id}: {outcome.error}", err=True)
    if failed:
        raise typer.Exit(1)
