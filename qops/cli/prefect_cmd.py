"""``qops prefect start|status|stop``: the local Prefect server of the data directory;
``qops prefect automations apply``: the automations of ``automations/*.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from qops.cli.prefect_server import LocalPrefectServer
from qops.config import QopsSettings

app = typer.Typer(
    help="The local Prefect server (SQLite) and the automations of any Prefect API.",
    no_args_is_help=True,
)


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


automations_app = typer.Typer(
    help="Prefect automations declared in the repository (automations/*.yaml).",
    no_args_is_help=True,
)
app.add_typer(automations_app, name="automations")


@automations_app.command("apply")
def apply_automations(
    directory: Annotated[
        Path, typer.Option("--dir", help="Directory of automation YAML files.")
    ] = Path("automations"),
    within: Annotated[
        float | None,
        typer.Option(
            help=(
                "Seconds without a heartbeat before a flow run is marked Crashed (the "
                "`within` of every proactive trigger; keep it above three heartbeats)."
            ),
            min=10,
        ),
    ] = None,
) -> None:
    """Create or update each automation of DIR on the Prefect API (PREFECT_API_URL)."""
    from qops.cli.prefect_automations import apply_automations as apply

    for name, how, deployments in apply(directory, within):
        runs = f" (runs {', '.join(deployments)})" if deployments else ""
        typer.echo(f"{how:8} {name}{runs}")
