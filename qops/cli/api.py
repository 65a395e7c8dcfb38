"""``qops api serve``: the HTTP API and the console (``qops.console.app``) with uvicorn.

The bind rule holds here: a loopback address is always served; any other address only with
authentication configured (``QOPS_CONSOLE_TOKEN`` or ``QOPS_CONSOLE_PASSWORD``, or a
``qops-console`` block), else the command exits 2 before it listens.
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from qops.backend.state import MongoBackendStateStore
from qops.catalog.search import CatalogQueryService
from qops.cli.common import fail
from qops.config import MongoSettings
from qops.console.app import ConsoleServices, create_app
from qops.console.auth import ConsoleAuth, UnauthenticatedBindError, check_bind
from qops.console.chip_data import CatalogCalibrationDatasets
from qops.console.settings import ConsoleSettings
from qops.mongo import database
from qops.provenance.config import ProvenanceSettings
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService

app = typer.Typer(help="The qops HTTP API.", no_args_is_help=True)


def console_settings(block: str | None) -> ConsoleSettings:
    """The console settings from the named ``qops-console`` block, else from ``QOPS_*``."""
    if block is None:
        return ConsoleSettings()
    from blocks.console import QopsConsole

    try:
        loaded = QopsConsole.load(block)
    except ValueError as e:  # Prefect's answer for a block that is not there
        fail(f"qops-console block {block!r}: {e}")
    assert isinstance(loaded, QopsConsole)
    return loaded.to_settings()


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; any but a loopback address needs authentication."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    block: Annotated[
        str | None,
        typer.Option(help="Name of a qops-console Prefect block with the credentials."),
    ] = None,
) -> None:
    """Serve the API (OpenAPI documentation at /docs) and the console at / until interrupted."""
    try:
        console = console_settings(block)
        auth = ConsoleAuth.from_settings(console)
        check_bind(host, auth)
    except ValidationError as e:
        fail("; ".join(str(error["msg"]) for error in e.errors()))
    except UnauthenticatedBindError as e:
        fail(str(e))
    settings = MongoSettings()
    db = database(settings)
    repository = MongoProvenanceRepository(db)
    repository.ensure_indexes()
    service = ProvenanceService(repository, ProvenanceSettings().project_id)
    catalog = CatalogQueryService(db)
    catalog.ensure_indexes()
    services = ConsoleServices(
        provenance=service,
        catalog=catalog,
        backend_state=MongoBackendStateStore(db),
        calibration_datasets=CatalogCalibrationDatasets(catalog),
        prefect_ui_url=console.prefect_ui_url,
    )
    app = create_app(services, auth=auth)
    uvicorn.run(app, host=host, port=port, log_level="info")
