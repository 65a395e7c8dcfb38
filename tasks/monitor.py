"""Tasks of the 2200 monitor: fetching 2300's static information and following it."""

from __future__ import annotations

import re

from prefect import Task, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State, TaskRun
from prefect.events import emit_event

from qops.config import MongoSettings
from qops.maintenance.policy import MaintenancePolicy
from qops.metrics.collector import HardwareMetricsCollector, MetricsExporter
from qops.mongo import database
from qops.monitor.client import MetaClient
from qops.monitor.errors import BackendUnreachableError
from qops.monitor.monitor import HardwareMonitor, MonitorSettings, MonitorSummary
from qops.monitor.snapshots import MongoSnapshotRepository
from qops.monitor.thresholds import MetricThreshold, OutOfSpec, ThresholdWatcher
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
    for stage, value in static.default_compiler_config.other_stages().items():
        # Allowed by the protocol, not one of its stages: shown as it came.
        lines.append(f"| {stage!r} (not a protocol stage) | | | `{value!r}` |")
    return "\n".join(lines) + "\n"


OUT_OF_SPEC_EVENT = "qops.metric.out-of-spec"
"""The Prefect event of a get_dynamic value that crossed out of its spec."""


def chip_resource_id(chip_id: str) -> str:
    """The Prefect resource id of a chip (``qops.chip.<chip>``)."""
    return f"qops.chip.{chip_id}"


def thresholds_of(policy: MaintenancePolicy) -> list[MetricThreshold]:
    """The monitor's thresholds: the spec (minimum, maximum) of each policy parameter."""
    return [
        MetricThreshold(metric=name, minimum=rules.minimum, maximum=rules.maximum)
        for name, rules in policy.parameters.items()
        if rules.minimum is not None or rules.maximum is not None
    ]


def out_of_spec_event(crossing: OutOfSpec) -> dict[str, object]:
    """The arguments of :func:`prefect.events.emit_event` for one crossing.

    The resource is the chip (``qops.chip.<chip>``, with ``qops.chip.id``); each qubit the
    value belongs to is a related resource of role ``qubit``.
    """
    return {
        "event": OUT_OF_SPEC_EVENT,
        "resource": {
            "prefect.resource.id": chip_resource_id(crossing.chip_id),
            "prefect.resource.name": crossing.chip_id,
            "qops.chip.id": crossing.chip_id,
        },
        "related": [
            {
                "prefect.resource.id": f"qops.qubit.{crossing.chip_id}.{qid}",
                "prefect.resource.role": "qubit",
                "prefect.resource.name": qid,
                "qops.qubit.id": qid,
            }
            for qid in crossing.qids
        ],
        "payload": crossing.model_dump(mode="json"),
    }


def emit_out_of_spec(crossing: OutOfSpec) -> None:
    """Emit the ``qops.metric.out-of-spec`` event of one crossing."""
    emit_event(**out_of_spec_event(crossing))  # type: ignore[arg-type]


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
    chip_id: str | None = None,
    thresholds: list[MetricThreshold] | None = None,
) -> MonitorSummary:
    """Follow 2300 and serve its metrics until cancelled or ``duration_s`` has passed.

    With ``thresholds``, a get_dynamic value that crosses out of its bounds emits the
    Prefect event ``qops.metric.out-of-spec`` for ``chip_id``.
    """
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
        on_dynamic=(
            ThresholdWatcher(chip_id, thresholds, emit_out_of_spec).observe
            if thresholds and chip_id
            else None
        ),
    )
    try:
        return monitor.run(duration_s)
    finally:
        exporter.stop()
