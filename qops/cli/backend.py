"""``qops backend serve|set-state|state``: the 2300 meta server and its state marks."""

from __future__ import annotations

import signal
import sys
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from pymongo.database import Database

from qops.backend.config import (
    DEFAULT_PUB_ADDRESS,
    DEFAULT_REQ_ADDRESS,
    BackendConfig,
    load_backend_config,
)
from qops.backend.provenance_source import ProvenanceCalibrationSource
from qops.backend.server import MetaServer
from qops.backend.sources import (
    CalibrationSource,
    InMemoryCalibrationSource,
    MergedCalibrationSource,
)
from qops.backend.state import MongoBackendStateStore, resolve_state
from qops.cli.common import fail
from qops.config import MongoSettings
from qops.mongo import Document, database
from qops.provenance.config import ProvenanceSettings
from qops.provenance.repository import MongoProvenanceRepository

app = typer.Typer(help="The 2300 meta server (hardware side).", no_args_is_help=True)


def calibration_source(config: BackendConfig, db: Database[Document]) -> CalibrationSource:
    """The calibration source the server answers get_dynamic from.

    By default the chip's current parameter versions in the provenance store of the
    configured project (``QOPS_PROJECT_ID`` if the configuration names none), over the
    values listed in the configuration; with ``calibration_source: config`` only the latter.
    """
    configured = InMemoryCalibrationSource({config.chip: config.calibration})
    if config.calibration_source == "config":
        return configured
    repository = MongoProvenanceRepository(db)
    repository.ensure_indexes()
    project_id = config.project_id or ProvenanceSettings().project_id
    return MergedCalibrationSource(ProvenanceCalibrationSource(repository, project_id), configured)


def _load_config(config_file: Path | None, block: str | None) -> BackendConfig:
    if config_file is not None and block is None:
        return load_backend_config(config_file)
    if block is None or config_file is not None:
        fail("give exactly one of --config FILE or --block NAME")
    from blocks.backend import MetaBackend

    loaded = MetaBackend.load(block)
    assert isinstance(loaded, MetaBackend)
    return loaded.to_settings()


@app.command()
def serve(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="Backend configuration YAML file.")
    ] = None,
    block: Annotated[
        str | None, typer.Option(help="Name of a qops-meta-backend Prefect block instead.")
    ] = None,
    req_address: Annotated[
        str, typer.Option(help="Where to bind the REP socket.")
    ] = DEFAULT_REQ_ADDRESS,
    pub_address: Annotated[
        str, typer.Option(help="Where to bind the PUB socket.")
    ] = DEFAULT_PUB_ADDRESS,
) -> None:
    """Serve get_static/get_dynamic and publish the backend state until SIGTERM or Ctrl-C."""
    config = _load_config(config_file, block)
    db = database(MongoSettings())
    store = MongoBackendStateStore(db)
    server = MetaServer(
        config,
        calibration_source(config, db),
        store,
        req_address,
        pub_address,
        # The provenance store is read off the reply loop, so a MongoDB outage delays neither
        # the heartbeat nor get_static, and get_dynamic fails within the client's timeout.
        # Values held in memory (calibration_source: config) never block.
        calibration_timeout_s=(
            config.calibration_timeout_s if config.calibration_source == "provenance" else None
        ),
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    typer.echo(
        f"serving {config.name} (chip {config.chip}) requests on {server.req_endpoint}, "
        f"state on {server.pub_endpoint}"
    )
    sys.stdout.flush()
    try:
        server.serve()
    finally:
        server.close()
    typer.echo("stopped")


class ManualState(StrEnum):
    """What an operator can set."""

    OFFLINE = "offline"
    ONLINE = "online"


@app.command("set-state")
def set_state(
    state: Annotated[ManualState, typer.Argument(help="offline: under manual control.")],
    chip: Annotated[str, typer.Option(help="Chip id of the backend.")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "",
) -> None:
    """Set or clear the OFFLINE mark of a backend; its server publishes the change at once."""
    store = MongoBackendStateStore(database(MongoSettings()))
    store.set_offline(chip, state is ManualState.OFFLINE, reason)
    typer.echo(f"{chip}: {resolve_state(store.marks(chip)).value}")


@app.command()
def state(chip: Annotated[str, typer.Option(help="Chip id of the backend.")]) -> None:
    """Print the state a backend's server publishes, as resolved from the store."""
    store = MongoBackendStateStore(database(MongoSettings()))
    typer.echo(resolve_state(store.marks(chip)).value)
