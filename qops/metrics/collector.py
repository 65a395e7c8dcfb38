"""Exposing the monitor's metrics to Prometheus: a custom collector and its HTTP endpoint.

The collector holds one immutable snapshot (metric families, ``qi_up``, the current state)
and swaps it as a whole, so a scrape sees either the previous get_dynamic answer or the new
one, never a mix, and series absent from the new answer vanish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, push_to_gateway, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

from qops.metrics.flatten import Flattened, MetricFamily

logger = logging.getLogger(__name__)

BACKEND_STATES = ("IDLE", "EXECUTING", "CALIBRATING", "OFFLINE", "UNREACHABLE")
"""Values of the ``state`` label of ``qi_backend_state``."""

UP = "qi_up"
BACKEND_STATE = "qi_backend_state"
RESERVED = frozenset({UP, BACKEND_STATE})
"""Names the collector exposes itself; reported metrics may not take them."""


@dataclass(frozen=True)
class _Snapshot:
    metrics: tuple[MetricFamily, ...] = ()
    up: bool = False
    state: str | None = None
    dropped: int = 0
    dynamic_at: float | None = None


class HardwareMetricsCollector:
    """A Prometheus collector of 2300's metrics as the monitor last received them."""

    def __init__(self) -> None:
        self._snapshot = _Snapshot()
        self._write = threading.Lock()

    def replace_metrics(self, flattened: Flattened) -> None:
        """Replace every reported metric with those of a new get_dynamic answer."""
        with self._write:
            self._snapshot = replace(
                self._snapshot,
                metrics=flattened.metrics,
                dropped=len(flattened.dropped),
                dynamic_at=time.time(),
            )

    def clear_metrics(self) -> None:
        """Withdraw every reported metric: 2300 answered get_dynamic with nothing usable.

        ``qops_monitor_last_dynamic_timestamp_seconds`` keeps the time of the last answer
        that was used.
        """
        with self._write:
            self._snapshot = replace(self._snapshot, metrics=(), dropped=0)

    def set_reachability(self, up: bool, state: str | None) -> None:
        """Set ``qi_up`` and the state ``qi_backend_state`` marks with 1."""
        with self._write:
            self._snapshot = replace(self._snapshot, up=up, state=state)

    def collect(self) -> Iterator[Metric]:
        """Yield the metrics of the current snapshot (called by the registry)."""
        snapshot = self._snapshot
        yield GaugeMetricFamily(
            UP, "Whether 2300 answers (heartbeat seen).", value=int(snapshot.up)
        )
        states = GaugeMetricFamily(
            BACKEND_STATE, "State of 2300: 1 for the current one.", labels=["state"]
        )
        for state in BACKEND_STATES:
            states.add_metric([state], int(state == snapshot.state))
        yield states
        yield GaugeMetricFamily(
            "qops_monitor_dropped_metrics",
            "Metrics of the last get_dynamic answer that could not be exposed.",
            value=snapshot.dropped,
        )
        if snapshot.dynamic_at is not None:
            yield GaugeMetricFamily(
                "qops_monitor_last_dynamic_timestamp_seconds",
                "When the last get_dynamic answer was received (Unix time).",
                value=snapshot.dynamic_at,
            )
        for metric in snapshot.metrics:
            doc = f"{metric.source_name} as reported by 2300 get_dynamic."
            if not metric.label_names:
                family = GaugeMetricFamily(metric.name, doc)
            else:
                family = GaugeMetricFamily(metric.name, doc, labels=list(metric.label_names))
            for label_values, value in metric.samples:
                family.add_metric(list(label_values), value)
            yield family


class MetricsExporter:
    """Serves a collector on ``http://HOST:PORT/metrics`` and pushes it on request.

    Args:
        collector: What to expose.
        port: TCP port of the endpoint (0: a free one, see :attr:`port`).
        host: Address to listen on.
        pushgateway: Pushgateway URL to push to, or ``None``.
        job: Job name for the Pushgateway.
    """

    def __init__(
        self,
        collector: HardwareMetricsCollector,
        port: int,
        host: str = "0.0.0.0",
        pushgateway: str | None = None,
        job: str = "qops-monitor",
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.pushgateway = pushgateway
        self.job = job
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = port

    def start(self) -> None:
        """Start serving in a background thread."""
        server, thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        self._server, self._thread = server, thread
        self.port = int(server.server_port)
        logger.info("metrics on http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def push(self) -> bool:
        """Push the current metrics to the Pushgateway, if one is configured.

        Returns whether a push succeeded; a failure is logged, not raised, so an
        unavailable Pushgateway never stops monitoring.
        """
        if not self.pushgateway:
            return False
        try:
            push_to_gateway(self.pushgateway, job=self.job, registry=self.registry, timeout=5)
        except OSError as e:
            logger.warning("push to %s failed: %s", self.pushgateway, e)
            return False
        return True
