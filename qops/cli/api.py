"""``qops api serve``: the HTTP API and the console (``qops.console.app``) with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from qops.backend.state import MongoBackendStateStore
from qops.catalog.search import CatalogQueryService
from qops.config import MongoSettings
from qops.console.app import ConsoleServices, create_app
from qops.console.chip_data import CatalogCalibrationDatasets
from qops.mongo import database
from qops.provenance.config import ProvenanceSettings
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService

app = typer.Typer(help="The qops HTTP API.", no_args_is_help=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the API (OpenAPI documentation at /docs) and the console at / until interrupted."""
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
    )
    app = create_app(services)
    uvicorn.run(app, host=host, port=port, log_level="info")
