"""``qops demo``: the main job on embedded defaults.

Starts the embedded MongoDB and a local Prefect server, runs the flows against them and
prints where everything is.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from qops.cli.prefect_server import LocalPrefectServer
from qops.config import MongoSettings
from qops.mongo import EmbeddedMongo, connect, redact_url


def demo(
    keep_running: Annotated[
        bool, typer.Option(help="Leave the servers running for exploring.")
    ] = False,
) -> None:
    """Run the demo on embedded defaults and print where things are."""
    settings = MongoSettings()
    mongo_started_here = False
    if settings.embedded:
        embedded = EmbeddedMongo(settings.data_dir)
        mongo_started_here = embedded.status() is None
        mongo_url = embedded.ensure_running().url
    else:
        assert settings.mongodb_url is not None
        mongo_url = redact_url(settings.mongodb_url.get_secret_value())
        connect(settings).close()
    typer.echo(f"MongoDB        {mongo_url}  database {settings.mongodb_db}")

    prefect = LocalPrefectServer(settings.data_dir)
    prefect_started_here = prefect.status() is None
    typer.echo("Prefect server starting ..." if prefect_started_here else "Prefect server reused")
    server = prefect.ensure_running()
    typer.echo(f"Prefect UI     {server.url}")
    try:
        os.environ["PREFECT_API_URL"] = server.api_url
        os.environ.setdefault("PREFECT_HOME", str(prefect.home))
        from flows.smoke import smoke

        count = smoke()
        _flush_run_logs()
        typer.echo(f"smoke flow     completed; {count} smoke run(s) recorded in MongoDB")
        typer.echo(f"data dir       {settings.data_dir}")
    finally:
        if keep_running:
            typer.echo("servers left running; stop them with: qops prefect stop; qops mongo stop")
        else:
            if prefect_started_here:
                prefect.stop()
            if settings.embedded and mongo_started_here:
                EmbeddedMongo(settings.data_dir).stop()
            typer.echo("servers stopped")


def _flush_run_logs() -> None:
    """Send buffered run logs to the Prefect API before its server may be stopped."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
