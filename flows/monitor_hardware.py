"""The 2200 monitor flow: fetch 2300's static information, then follow it and serve metrics."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from qops.maintenance.policy import MaintenanceSettings, load_policy
from qops.monitor.monitor import MonitorSettings, MonitorSummary
from qops.protocol.messages import StaticInfo
from tasks.monitor import fetch_backend_static, monitor_backend, thresholds_of
from tasks.settings import mongo_settings


@flow(name="monitor-hardware", log_prints=False)
def monitor_hardware(
    req_address: str = "tcp://127.0.0.1:4203",
    sub_address: str = "tcp://127.0.0.1:4204",
    metrics_port: int = 9108,
    pushgateway: str | None = None,
    request_timeout_s: float = 2.0,
    heartbeat_s: float = 1.0,
    duration_s: float | None = None,
    mongodb_block: str | None = None,
    chip_id: str | None = None,
    policy_file: str | None = None,
    out_of_spec_events: bool = True,
) -> MonitorSummary:
    """Watch a 2300 backend: metrics on ``http://0.0.0.0:<metrics_port>/metrics``.

    Args:
        req_address: 2300's REP socket.
        sub_address: 2300's PUB socket.
        metrics_port: Port of the Prometheus endpoint.
        pushgateway: Pushgateway URL to push to after each change, or ``None``.
        request_timeout_s: Seconds to wait for each request attempt.
        heartbeat_s: 2300's heartbeat period; 3 missed heartbeats mean UNREACHABLE.
        duration_s: Stop after this many seconds; ``None`` runs until cancelled.
        mongodb_block: Name of a ``qops-mongodb-connection`` block; ``None`` reads ``QOPS_*``.
        chip_id: The chip the backend serves, named by the out-of-spec events; default the
            backend's name.
        policy_file: Maintenance policy whose spec (minimum, maximum per parameter) the
            values are judged against; default ``QOPS_MAINTENANCE_POLICY``, else built in.
        out_of_spec_events: Emit ``qops.metric.out-of-spec`` when a value crosses out of
            spec (an automation runs ``maintain`` for the chip).
    """
    settings = MonitorSettings(
        req_address=req_address,
        sub_address=sub_address,
        metrics_port=metrics_port,
        pushgateway=pushgateway,
        request_timeout_s=request_timeout_s,
        heartbeat_s=heartbeat_s,
    )
    mongo = mongo_settings(mongodb_block)
    fetched = fetch_backend_static(settings, mongo, return_state=True)
    static: StaticInfo | None = None
    if fetched.is_completed():
        static = fetched.result()
    else:
        # 2300 may come up later: the monitor keeps asking and reports qi_up 0 meanwhile.
        get_run_logger().warning("2300 at %s not answering yet; monitoring anyway", req_address)
    thresholds = None
    if out_of_spec_events:
        policy = load_policy(Path(policy_file)) if policy_file else MaintenanceSettings().policy()
        thresholds = thresholds_of(policy)
    return monitor_backend(
        settings,
        mongo,
        initial_static=static,
        duration_s=duration_s,
        chip_id=chip_id or (static.name if static is not None else None),
        thresholds=thresholds,
    )
