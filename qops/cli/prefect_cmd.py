"""``qops prefect start|status|stop``: the local Prefect server of the data directory."""

from __future__ import annotations

import typer

from qops.cli.prefect_server import LocalPrefectServer
from qops.config import QopsSettings

app = typer.Typer(help="Manage the local Prefect server (SQLite).", no_args_is_help=True)


@app.command()
def start() -> None:
    """Start the local Prefect server (or report the running one) and print its URLs."""
    server = LocalPrefectServer(QopsSettings().data_dir).ensure_running()
    typer.echo(f"running  UI {server.url}  PREFECT_API_URL={server.api_url}  pid {server.pid}")


@app.command()
def status() -> None:
    """Print the local Prefect server's URLs; exit 1 if it does not run."""
    server = LocalPrefectServer(QopsSettings().data_dir).status()
    if server is None:
        typer.echo("stopped")
        raise typer.Exit(1)
    typer.echo(f"running  UI {server.url}  PREFECT_API_URL={server.api_url}  pid {server.pid}")


@app.command()
def stop() -> None:
    """Stop the local Prefect server."""
    server = LocalPrefectServer(QopsSettings().data_dir).stop()
    typer.echo("not running" if server is None else f"stopped  {server.url}")
