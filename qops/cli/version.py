"""``qops version``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version

import typer

import qops


def _dist(name: str) -> str:
    try:
        return dist_version(name)
    except PackageNotFoundError:
        return "not installed"


def version() -> None:
    """Print the qops version and those of the systems it works with."""
    typer.echo(f"qops {qops.__version__}")
    for name in ("prefect", "qcodes", "pymongo", "nx-27017", "pyzmq"):
        typer.echo(f"  {name} {_dist(name)}")
