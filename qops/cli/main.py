"""Entry point of the ``qops`` command.

Subcommands are imported only when used: ``qops backend serve`` should not pay for
importing Prefect and QCoDeS (seconds at start, and again at interpreter exit).
"""

from __future__ import annotations

import atexit
import importlib
import logging
import sys

import typer

from qops.cli.common import run_guarded
from qops.cli.prefect_env import apply_quiet_defaults

# name -> (module, attribute, kind): a "group" is a Typer app, a "command" a function.
_SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "version": ("qops.cli.version", "version", "command"),
    "mongo": ("qops.cli.mongo", "app", "group"),
    "prefect": ("qops.cli.prefect_cmd", "app", "group"),
    "demo": ("qops.cli.demo", "demo", "command"),
    "sources": ("qops.cli.sync", "sources_app", "group"),
    "backends": ("qops.cli.sync", "backends_app", "group"),
    "sync": ("qops.cli.sync", "sync", "command"),
    "datasets": ("qops.cli.datasets", "app", "group"),
    "backend": ("qops.cli.backend", "app", "group"),
    "monitor": ("qops.cli.monitor", "monitor", "command"),
    "provenance": ("qops.cli.provenance", "app", "group"),
    "maintenance": ("qops.cli.maintenance", "app", "group"),
    "api": ("qops.cli.api", "app", "group"),
    "calibrate": ("qops.cli.calibrate", "calibrate", "command"),
    "maintain": ("qops.cli.maintain", "maintain", "command"),
    "chip": ("qops.cli.chip", "app", "group"),
}


def _root() -> None:
    """Operations pipelines of a quantum-computing lab, on Prefect."""


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """Return the ``qops`` app with the subcommand named in ``argv`` (all if none is)."""
    app = typer.Typer(
        name="qops",
        help="Operations pipelines of a quantum-computing lab, on Prefect.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    # A callback keeps the app a group even when only one subcommand is registered.
    app.callback()(_root)
    words = [arg for arg in (argv or []) if not arg.startswith("-")]
    wanted = words[0] if words and words[0] in _SUBCOMMANDS else None
    for name, (module_name, attribute, kind) in _SUBCOMMANDS.items():
        if wanted is not None and name != wanted:
            continue
        target = getattr(importlib.import_module(module_name), attribute)
        if kind == "group":
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run the ``qops`` command; errors qops knows print as one line and exit with 2."""
    # Before any subcommand imports Prefect: no telemetry from this process or its children.
    apply_quiet_defaults()
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    args = sys.argv[1:] if argv is None else argv
    try:
        run_guarded(lambda: build_app(args)(args=args, standalone_mode=True))
    finally:
        _exit_without_waiting_for_mongo()


def _exit_without_waiting_for_mongo() -> None:
    """Have interpreter exit close the MongoDB clients before pymongo waits for their threads.

    Registered last, so it runs first among the exit handlers, after the other threads
    of the command ended (see :func:`qops.mongo.close_clients_for_exit`); a command that
    never connected has nothing to close.
    """
    if "qops.mongo" in sys.modules:
        from qops.mongo import close_clients_for_exit

        atexit.register(close_clients_for_exit)


if __name__ == "__main__":
    main()
