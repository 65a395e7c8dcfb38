"""``qops monitor``: run the 2200 monitor flow ``monitor-hardware`` in this process."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def monitor(
    req_address: Annotated[str, typer.Option(help="2300's REP socket.")] = "tcp://127.0.0.1:4203",
    sub_address: Annotated[str, typer.Option(help="2300's PUB socket.")] = "tcp://127.0.0.1:4204",
    metrics_port: Annotated[int, typer.Option(help="Port of /metrics for Prometheus.")] = 9108,
    pushgateway: Annotated[
        str | None, typer.Option(help="Pushgateway URL to push to after each change.")
    ] = None,
    request_timeout_s: Annotated[
        float, typer.Option(help="Seconds to wait for each request attempt.")
    ] = 2.0,
    heartbeat_s: Annotated[float, typer.Option(help="2300's heartbeat period.")] = 1.0,
    duration_s: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: never).")
    ] = None,
    mongodb_block: Annotated[
        str | None, typer.Option(help="qops-mongodb-connection block (default: QOPS_*).")
    ] = None,
    chip: Annotated[
        str | None,
        typer.Option(
            help="Chip the backend serves, named by out-of-spec events (default: its name)."
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(help="Maintenance policy giving each value's spec (default: built in)."),
    ] = None,
) -> None:
    """Watch a 2300 backend and serve its metrics on http://0.0.0.0:PORT/metrics."""
    from flows.monitor_hardware import monitor_hardware

    signal.signal(signal.SIGTERM, _interrupt)
    summary = monitor_hardware(
        req_address=req_address,
        sub_address=sub_address,
        metrics_port=metrics_port,
        pushgateway=pushgateway,
        request_timeout_s=request_timeout_s,
        heartbeat_s=heartbeat_s,
        duration_s=duration_s,
        mongodb_block=mongodb_block,
        chip_id=chip,
        policy_file=policy,
    )
    typer.echo(summary.model_dump_json())
