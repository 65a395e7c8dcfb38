"""Entry point of the ``qops`` command."""

from __future__ import annotations

import logging
import sys

import typer

from qops.cli import api, backend, demo, mongo, prefect_cmd, provenance, sync
from qops.cli.common import run_guarded
from qops.cli.monitor import monitor
from qops.cli.version import version

app = typer.Typer(
    name="qops",
    help="Operations pipelines of a quantum-computing lab, on Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("version")(version)
app.add_typer(mongo.app, name="mongo")
app.add_typer(prefect_cmd.app, name="prefect")
app.command("demo")(demo.demo)
app.add_typer(provenance.app, name="provenance")
app.add_typer(api.app, name="api")
app.add_typer(backend.app, name="backend")
app.command("monitor")(monitor)
app.command("sync")(sync.sync)
app.add_typer(sync.sources_app, name="sources")
app.add_typer(sync.backends_app, name="backends")


def main(argv: list[str] | None = None) -> None:
    """Run the ``qops`` command; errors qops knows print as one line and exit with 2."""
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    run_guarded(lambda: app(args=argv, standalone_mode=True))


if __name__ == "__main__":
    main()
