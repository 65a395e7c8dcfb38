"""``qops mongo start|status|stop``: the embedded MongoDB-compatible server."""

from __future__ import annotations

from typing import Annotated

import typer

from qops.cli.common import fail
from qops.config import MongoSettings
from qops.mongo import EmbeddedMongo, connect, redact_url

app = typer.Typer(help="Manage the embedded MongoDB-compatible server.", no_args_is_help=True)


def _embedded(settings: MongoSettings) -> EmbeddedMongo:
    if not settings.embedded:
        fail(
            "QOPS_MONGODB_URL is set, so qops uses that server and runs no embedded one; "
            "unset it to manage the embedded server"
        )
    return EmbeddedMongo(settings.data_dir)


@app.command()
def start(
    port: Annotated[
        int | None, typer.Option(help="Loopback port to listen on (default: a free one).")
    ] = None,
) -> None:
    """Start the embedded server (or report the one already running) and print its URL."""
    settings = MongoSettings()
    embedded = _embedded(settings)
    server = embedded.ensure_running(port=port)
    typer.echo(f"running  {server.url}  pid {server.pid}  data {server.data_path}")


@app.command()
def status() -> None:
    """Print the URL of the server qops uses; exit 1 if it does not answer."""
    settings = MongoSettings()
    if not settings.embedded:
        assert settings.mongodb_url is not None
        url = redact_url(settings.mongodb_url.get_secret_value())
        connect(settings)
        typer.echo(f"running  {url}  (configured by QOPS_MONGODB_URL)")
        return
    server = _embedded(settings).status()
    if server is None:
        typer.echo(f"stopped  (data {settings.data_dir / 'mongo'})")
        raise typer.Exit(1)
    typer.echo(f"running  {server.url}  pid {server.pid}  data {server.data_path}")


@app.command()
def stop() -> None:
    """Stop the embedded server."""
    settings = MongoSettings()
    server = _embedded(settings).stop()
    if server is None:
        typer.echo("not running")
    else:
        typer.echo(f"stopped  {server.url}  pid {server.pid}")
