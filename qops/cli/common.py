"""Helpers shared by the CLI commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import typer

from qops.errors import QopsError

EXIT_USAGE = 2
"""Exit code for bad input or configuration (the same as a usage error)."""


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    typer.echo(f"qops: error: {message}", err=True)
    raise typer.Exit(code)


def run_guarded(command: Callable[[], object]) -> None:
    """Run ``command``; a :class:`QopsError` becomes a one-line message and exit code 2."""
    try:
        command()
    except QopsError as e:
        sys.stderr.write(f"qops: error: {e}\n")
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.stderr.write("qops: interrupted\n")
        sys.exit(130)
