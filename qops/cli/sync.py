"""``qops sync``, ``qops sources`` and ``qops backends``: the QCoDeS → catalog sync.

Each command imports only what it uses (``sync status`` reads MongoDB and imports neither
Prefect nor QCoDeS), and none starts a temporary Prefect server: a command that needs
Prefect uses the configured API or the local qops server when one answers
(:mod:`qops.cli.prefect_env`); otherwise it does its work without Prefect and says so.

With an API, the commands talk to it through :mod:`qops.cli.prefect_rest` and do not import
Prefect (seconds of a one-off command): ``sources add`` saves the block over REST, and
``sync NAME`` syncs in this process and records what it did as a flow run of
``sync-qcodes`` (state, logs, table artifact). ``sync NAME --engine`` (and
``--storage-block``) runs the flow under Prefect's engine instead, with task runs.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import JsonValue

from qops.catalog.models import SyncSource
from qops.catalog.repository import SyncItemRepository
from qops.catalog.sources import DEFAULT_SCOPE, SourceMirror, SyncSources
from qops.cli.common import fail
from qops.cli.prefect_env import NO_API_HINT, PrefectApi, find_prefect_api, use_prefect_api
from qops.config import MongoSettings
from qops.errors import QopsError
from qops.mongo import database

if TYPE_CHECKING:
    from qops.catalog.service import RunOutcome
    from qops.export.store import FileStore

sources_app = typer.Typer(help="Manage sync sources.", no_args_is_help=True)
backends_app = typer.Typer(help="Installed sync backends.", no_args_is_help=True)


class RestSourceMirror:
    """Keeps a ``QCoDeSSyncSource`` block per registered source, over the REST API.

    Saves what ``tasks.source_mirror.BlockSourceMirror`` saves, without importing Prefect.
    """

    def __init__(self, api: PrefectApi) -> None:
        self.api = api

    def save(self, source: SyncSource) -> None:
        from qops.cli.prefect_rest import PrefectRest, load_registrations
        from qops.qcodes.backend import (
            SOURCE_BLOCK_TYPE_SLUG,
            source_block_data,
            source_block_name,
        )

        registration = load_registrations()[SOURCE_BLOCK_TYPE_SLUG]
        with PrefectRest(self.api) as rest:
            rest.save_block(registration, source_block_name(source.name), source_block_data(source))

    def delete(self, name: str) -> None:
        from qops.cli.prefect_rest import PrefectRest
        from qops.qcodes.backend import SOURCE_BLOCK_TYPE_SLUG, source_block_name

        with PrefectRest(self.api) as rest:
            rest.delete_block(SOURCE_BLOCK_TYPE_SLUG, source_block_name(name))


def _block_mirror(settings: MongoSettings) -> tuple[SourceMirror | None, str]:
    """The block mirror on a reachable Prefect API, or ``None`` and why there is none."""
    api = find_prefect_api(settings.data_dir)
    if not isinstance(api, PrefectApi):
        return None, api.reason
    return RestSourceMirror(api), api.describe()


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
    """Register a sync source in MongoDB and, when a Prefect API answers, as a block.

    Without a Prefect API the source is registered all the same and a note says the
    QCoDeSSyncSource block was not saved; running the same command again once an API
    answers saves it.
    """
    attributes: dict[str, JsonValue] = {}
    for pair in attr or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--attr {pair!r} is not KEY=VALUE")
        attributes[key.strip()] = value
    settings = MongoSettings()
    mirror, where = _block_mirror(settings)
    source = SyncSources.create(
        name=name,
        backend_identifier=backend,
        config_data={
            "database_path": str(database_path),
            "set_up": set_up,
            "static_attributes": attributes,
        },
        default_scope=scope,
        settings=settings,
        mirror=mirror,
    )
    typer.echo(f"added  {source.name}  {source.backend}  {source.config['database_path']}")
    if mirror is not None:
        typer.echo(f"block  QCoDeSSyncSource saved on the {where}")
    else:
        typer.echo(
            f"qops: note: the QCoDeSSyncSource block was not saved ({where}); the source is "
            f"registered and syncs without it. To save the block, {NO_API_HINT} and run this "
            "command again.",
            err=True,
        )


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
    """Unregister a source (its synced datasets stay in the catalog) and delete its block."""
    settings = MongoSettings()
    mirror, where = _block_mirror(settings)
    SyncSources.remove(name, settings=settings, mirror=mirror)
    typer.echo(f"removed  {name}")
    if mirror is None:
        typer.echo(
            f"qops: note: its QCoDeSSyncSource block, if one was saved, was not deleted ({where}).",
            err=True,
        )


@backends_app.command("list")
def backends_list() -> None:
    """List installed backends: identifier, name, version, what they read with."""
    from qops.catalog.backends import installed_backends

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


def _store(storage_block: str | None, settings: MongoSettings) -> FileStore:
    """The named filesystem block (needs a Prefect API), else the data directory itself."""
    if storage_block is None:
        from qops.export.store import LocalDirStore

        return LocalDirStore(settings.data_dir)
    api = find_prefect_api(settings.data_dir)
    if not isinstance(api, PrefectApi):
        fail(f"--storage-block {storage_block!r} is a Prefect block and needs an API: {api.reason}")
    use_prefect_api(api)
    from tasks.storage import file_store

    return file_store(storage_block, settings.data_dir)


def _follow(name: str, storage_block: str | None, poll_s: float) -> None:
    from qops.catalog.service import SyncService
    from qops.catalog.settings import SyncSettings
    from qops.sync_provenance import SyncProvenance

    settings = MongoSettings()
    stop = threading.Event()
    try:
        service = SyncService(
            database(settings),
            _store(storage_block, settings),
            SyncSettings(),
            SyncProvenance.mongo(settings),
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


def _summary(name: str, outcomes: list[RunOutcome]) -> bool:
    """Print what happened to a source's runs; return whether any run failed."""

    from qops.catalog.service import summary_line

    typer.echo(summary_line(name, outcomes))
    failed = False
    for outcome in outcomes:
        if outcome.error:
            failed = True
            typer.echo(f"  run {outcome.run_id}: {outcome.error}", err=True)
    return failed


def _sync_in_flow_run(name: str, storage_block: str | None, api: PrefectApi) -> bool:
    """Sync ``name`` in a ``sync-qcodes`` flow run on ``api``; return whether anything failed."""
    use_prefect_api(api)
    from flows.sync_qcodes import SourcesFailedError, SyncReport, sync_qcodes

    state = sync_qcodes(source_name=name, storage_block=storage_block, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    typer.echo(f"flow run {flow_run_id} of sync-qcodes on the {api.describe()}")
    report = state.result(raise_on_failure=False)
    if isinstance(report, SourcesFailedError):
        report = report.report  # the flow run failed for its sources; the others are synced
    if not isinstance(report, SyncReport):
        typer.echo(f"{name}: flow run {state.name}: {state.message or report}", err=True)
        return True
    failed = not state.is_completed()
    for source in report.sources:
        if source.error:
            failed = True
            typer.echo(f"{source.source}: discovery failed: {source.error}", err=True)
            continue
        failed = _summary(source.source, source.outcomes) or failed
    return failed


def _sync_work(name: str) -> tuple[list[RunOutcome], str | None]:
    """Sync ``name`` in this process without Prefect: its outcomes, or why discovery failed.

    The same work as a ``sync-qcodes`` flow run (discovery, then each due run, at most
    ``QOPS_SYNC_CONCURRENCY`` at once), through the same service; files go to the data
    directory.
    """
    from qops.catalog.service import SyncService
    from qops.catalog.settings import SyncSettings
    from qops.sync_provenance import SyncProvenance

    settings = MongoSettings()
    sync = SyncSettings()
    store = _store(None, settings)
    db = database(settings)
    service = SyncService(db, store, sync)
    service.ensure_indexes()
    try:
        discovery = service.discover(name)
    except QopsError as e:
        return [], str(e)
    with ThreadPoolExecutor(max_workers=sync.concurrency, thread_name_prefix="sync-run") as pool:
        outcomes = list(
            pool.map(
                lambda run_id: SyncService(
                    db, store, sync, SyncProvenance.mongo(settings)
                ).sync_run(name, run_id),
                discovery.run_ids,
            )
        )
    return outcomes, None


def _report(name: str, outcomes: list[RunOutcome], error: str | None) -> bool:
    """Print what a sync did; return whether anything failed."""
    if error is not None:
        typer.echo(f"{name}: discovery failed: {error}", err=True)
        return True
    return _summary(name, outcomes)


def _sync_here(name: str, reason: str) -> bool:
    """Sync ``name`` in this process without any Prefect API; return whether anything failed."""
    typer.echo(
        f"no flow run ({reason}): syncing in this process; to see syncs in the Prefect UI, "
        f"{NO_API_HINT}"
    )
    return _report(name, *_sync_work(name))


def _sync_recorded(name: str, api: PrefectApi) -> bool:
    """Sync ``name`` in this process and record it on ``api`` as a ``sync-qcodes`` flow run.

    The flow run is created ``Running`` before the work and ends ``Completed``, or
    ``Failed`` when the source could not be read at all (as the flow's own runs do); it
    carries the summary as logs and the flow's table artifact. An interrupted or crashed
    sync leaves it ``Crashed``. Return whether anything failed.
    """
    from qops.catalog.service import (
        NOTHING_TO_DO_ROW,
        sources_failed_message,
        summary_artifact_key,
        summary_line,
        summary_rows,
    )
    from qops.cli.prefect_rest import PrefectRest
    from qops.console.settings import ConsoleSettings

    console_url = ConsoleSettings().console_url
    parameters: dict[str, JsonValue] = {
        "source_name": name,
        "mongodb_block": None,
        "storage_block": None,
    }
    with PrefectRest(api) as rest:
        flow_run = rest.create_flow_run("sync-qcodes", parameters, tags=["qops-cli"])
        typer.echo(
            f"flow run {flow_run.id} of sync-qcodes on the {api.describe()} "
            f"({flow_run.name}; synced in this process)"
        )
        try:
            outcomes, error = _sync_work(name)
        except BaseException as e:
            rest.set_state(flow_run, "CRASHED", f"qops sync {name}: {type(e).__name__}: {e}")
            raise
        line = f"{name}: discovery failed" if error else summary_line(name, outcomes)
        logs = [(logging.ERROR, f"source {name}: discovery failed: {error}")] if error else []
        logs.append((logging.INFO, f"source {line}"))
        logs.extend((logging.ERROR, f"run {o.run_id}: {o.error}") for o in outcomes if o.error)
        rest.write_logs(flow_run, __name__, logs)
        rest.create_table_artifact(
            flow_run,
            summary_artifact_key([name]),
            summary_rows(name, outcomes, error, console_url) or [NOTHING_TO_DO_ROW],
            f"QCoDeS sync: {line}",
        )
        if error is None:
            rest.set_state(flow_run, "COMPLETED", line)
        else:
            rest.set_state(flow_run, "FAILED", sources_failed_message({name: error}))
    return _report(name, outcomes, error)


def _backfill_provenance(name: str | None) -> None:
    """Record the sync provenance of datasets synced before the sync recorded it."""
    from qops.catalog.service import SyncService
    from qops.catalog.settings import SyncSettings
    from qops.sync_provenance import SyncProvenance, backfill

    settings = MongoSettings()
    if name is not None:
        SyncSources.get(name)  # a clear error for an unknown source
    service = SyncService(database(settings), _store(None, settings), SyncSettings())
    observer = SyncProvenance.mongo(settings)
    report = backfill(service, observer, name)
    typer.echo(
        f"sync provenance: {report.recorded} file versions recorded, {report.already} "
        f"already recorded, {len(report.skipped)} skipped (project {observer.project_id})"
    )
    for uuid, why in sorted(report.skipped.items()):
        typer.echo(f"  skipped {uuid}: {why}")


def sync(
    args: Annotated[
        list[str],
        typer.Argument(
            help="NAME to sync one source, or: status [NAME], or: backfill-provenance [NAME]."
        ),
    ],
    storage_block: Annotated[
        str | None,
        typer.Option(help="Writable filesystem block for the HDF5 files (implies --engine)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option(help="Keep syncing (live runs) until interrupted, without flow runs.")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between passes with --follow.")] = 0.5,
    engine: Annotated[
        bool,
        typer.Option(
            help="Run the sync-qcodes flow under Prefect's engine in this process (task "
            "runs, retries; seconds slower). Needs a Prefect API."
        ),
    ] = False,
) -> None:
    """Sync a source now, or show per-run state with `status`.

    `backfill-provenance [NAME]` records in provenance the sync of every dataset synced
    before the sync recorded it (its current file version; idempotent).

    With a Prefect API (the configured one or the local qops server) the sync runs in this
    process and is recorded as a flow run of sync-qcodes (state, logs, artifact); with
    --engine it is a flow run under Prefect's engine. Without an API the same work runs
    in this process, unrecorded.
    """
    if args[0] == "status":
        if len(args) > 2:
            fail("usage: qops sync status [NAME]")
        _status(args[1] if len(args) == 2 else None)
        return
    if args[0] == "backfill-provenance":
        if len(args) > 2:
            fail("usage: qops sync backfill-provenance [NAME]")
        _backfill_provenance(args[1] if len(args) == 2 else None)
        return
    if len(args) != 1:
        fail(
            "usage: qops sync NAME  |  qops sync status [NAME]  |  "
            "qops sync backfill-provenance [NAME]"
        )
    if follow:
        _follow(args[0], storage_block, poll)
        return
    name = args[0]
    SyncSources.get(name)  # a clear error before anything starts
    api = find_prefect_api(MongoSettings().data_dir)
    if isinstance(api, PrefectApi):
        if engine or storage_block is not None:
            failed = _sync_in_flow_run(name, storage_block, api)
        else:
            failed = _sync_recorded(name, api)
    elif storage_block is not None:
        fail(f"--storage-block {storage_block!r} is a Prefect block and needs an API: {api.reason}")
    elif engine:
        fail(f"--engine runs the flow under Prefect and needs an API: {api.reason}")
    else:
        failed = _sync_here(name, api.reason)
    if failed:
        raise typer.Exit(1)
