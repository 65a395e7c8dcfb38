"""Tasks of the 2200 monitor: fetching 2300's static information and following it."""

from __future__ import annotations

import re

from prefect import Task, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State, TaskRun

from qops.config import MongoSettings
from qops.metrics.collector import HardwareMetricsCollector, MetricsExporter
from qops.mongo import database
from qops.monitor.client import MetaClient
from qops.monitor.errors import BackendUnreachableError
from qops.monitor.monitor import HardwareMonitor, MonitorSettings, MonitorSummary
from qops.monitor.snapshots import MongoSnapshotRepository
from qops.protocol.messages import StaticInfo


def _unreachable(task: Task[..., object], task_run: TaskRun, state: State[object]) -> bool:
    """Retry only when 2300 did not answer; a failure reply or bad reply will not heal."""
    return isinstance(state.result(raise_on_failure=False), BackendUnreachableError)


def static_artifact_key(name: str) -> str:
    """The stable artifact key of a backend's static information."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "backend"
    return f"backend-static-{slug}"


def static_markdown(static: StaticInfo) -> str:
    """Render 2300's get_static answer as Markdown."""
    lines = [
        f"# 2300 backend {static.name}",
        "",
        "| field | value |",
        "|---|---|",
        f"| protocol_version | {static.protocol_version} |",
        f"| nqubits | {static.nqubits} |",
        f"| topology | {', '.join(f'{a}-{b}' for a, b in static.topology) or '(none)'} |",
        f"| pgs | {', '.join(static.pgs)} |",
        f"| starttime | {static.starttime} |",
        f"| supports_raw_data | {static.supports_raw_data} |",
        "",
        "## Default compiler configuration",
        "",
        "| stage | path | method | arguments |",
        "|---|---|---|---|",
    ]
    for stage, passes in static.default_compiler_config.stages().items():
        for compiler_pass in passes:
            lines.append(
                f"| {stage} | `{compiler_pass.path}` | {compiler_pass.method} "
                f"| `{compiler_pass.arguments}` |"
            )
    return "\n".join(lines) + "\n"


def publish_static(static: StaticInfo) -> None:
    """Show a get_static answer as this run's artifact ``backend-static-<name>``."""
    create_markdown_artifact(
        static_markdown(static),
        key=static_artifact_key(static.name),
        description=f"get_static of 2300 backend {static.name}",
    )


@task(
    name="fetch-backend-static",
    # The client already makes several attempts; one more after a pause covers a 2300 that
    # is starting. If it is still down, the monitor keeps asking (and reports qi_up 0).
    retries=1,
    retry_delay_seconds=2,
    retry_condition_fn=_unreachable,
    timeout_seconds=120,
)
def fetch_backend_static(settings: MonitorSettings, mongo: MongoSettings) -> StaticInfo:
    """Fetch get_static from 2300, record it in ``backend_static`` and show it as an artifact."""
    client = MetaClient(
        settings.req_address,
        timeout_s=settings.request_timeout_s,
        retries=settings.request_retries,
        max_message_bytes=settings.max_message_bytes,
    )
    try:
        static = client.get_static()
    finally:
        client.close()
    MongoSnapshotRepository(database(mongo)).record_static(static)
    publish_static(static)
    get_run_logger().info(
        "2300 backend %s: %d qubits, started at %s", static.name, static.nqubits, static.starttime
    )
    return static


@task(name="monitor-backend")
def monitor_backend(
    settings: MonitorSettings,
    mongo: MongoSettings,
    initial_static: StaticInfo | None = None,
    duration_s: float | None = None,
) -> MonitorSummary:
    """Follow 2300 and serve its metrics until cancelled or ``duration_s`` has passed."""
    db = database(mongo)
    collector = HardwareMetricsCollector()
    exporter = MetricsExporter(
        collector, settings.metrics_port, settings.metrics_host, settings.pushgateway
    )
    exporter.start()
    get_run_logger().info(
        "metrics of %s on http://%s:%d/metrics",
        settings.req_address,
        settings.metrics_host,
        exporter.port,
    )
    monitor = HardwareMonitor(
        settings,
        collector,
        MongoSnapshotRepository(db),
        exporter=exporter,
        on_static=publish_static,
        initial_static=initial_static,
    )
    try:
        return monitor.run(duration_s)
    finally:
        exporter.stop()
