"""The 2200 side: watches 2300 and keeps its metrics current for Prometheus.

On start the monitor fetches get_static and get_dynamic. It then follows 2300's published
state: get_dynamic again when IDLE follows CALIBRATING or OFFLINE (also through other states
between, e.g. CALIBRATING → EXECUTING → IDLE) and whenever the heartbeat comes back after
being lost; get_static again when 2300 came back (a changed ``starttime`` means it
restarted) and every ``static_check_s``. A heartbeat missing for ``missed_heartbeats``
intervals sets ``qi_up`` to 0 and the state to UNREACHABLE.

A fetch that fails is retried after the heartbeat period, doubling per failure up to
``max_retry_s``. No reply 2300 can send stops the monitor: a reply it cannot use is logged
and retried, and an answer MongoDB cannot hold is stored as JSON text
(:mod:`~qops.monitor.snapshots`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

import zmq
from bson.errors import BSONError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymongo.errors import PyMongoError

from qops.metrics.collector import RESERVED, HardwareMetricsCollector, MetricsExporter
from qops.metrics.flatten import Flattened, flatten_dynamic
from qops.monitor.client import MetaClient
from qops.monitor.errors import BackendFailureError, BackendUnreachableError
from qops.monitor.snapshots import SnapshotSink
from qops.protocol.errors import ProtocolError
from qops.protocol.messages import UNREACHABLE, BackendState, StateMessage, StaticInfo
from qops.protocol.schemas import DEFAULT_MAX_MESSAGE_BYTES, decode, protocol_schemas

logger = logging.getLogger(__name__)

TICK_S = 0.1
"""Longest wait of one loop turn: the bound on how late a stop request is noticed."""

_REFRESH_FROM = frozenset({BackendState.CALIBRATING, BackendState.OFFLINE})
"""States after which the next IDLE brings new metrics (the calibration may have changed)."""


class MonitorSettings(BaseModel):
    """How the 2200 monitor reaches 2300 and exposes metrics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    req_address: str = Field(default="tcp://127.0.0.1:4203", description="2300's REP socket.")
    sub_address: str = Field(default="tcp://127.0.0.1:4204", description="2300's PUB socket.")
    metrics_port: int = Field(default=9108, ge=0, le=65535, description="Port of /metrics.")
    metrics_host: str = Field(default="0.0.0.0", description="Address /metrics listens on.")
    pushgateway: str | None = Field(default=None, description="Pushgateway URL, if any.")
    request_timeout_s: float = Field(default=2.0, gt=0, description="Wait per REQ attempt.")
    request_retries: int = Field(default=3, ge=1, description="REQ attempts per request.")
    heartbeat_s: float = Field(default=1.0, gt=0, description="2300's heartbeat period.")
    missed_heartbeats: int = Field(
        default=3, ge=1, description="Heartbeats missed before 2300 counts as unreachable."
    )
    static_check_s: float = Field(
        default=60.0, gt=0, description="How often get_static is repeated to notice restarts."
    )
    max_retry_s: float = Field(
        default=60.0, gt=0, description="Longest wait between retries of a failing fetch."
    )
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, gt=0)


class MonitorSummary(BaseModel):
    """What one monitor run saw."""

    static_fetches: int = 0
    dynamic_fetches: int = 0
    heartbeats: int = 0
    restarts_seen: int = 0
    dropped_metrics: int = 0
    last_state: str | None = None
    backend: str | None = None


class HardwareMonitor:
    """Follows one 2300 backend; see the module docstring for what it does when.

    Args:
        settings: Addresses, timeouts and heartbeat expectations.
        collector: Receives metrics, ``qi_up`` and the state.
        sink: Records every get_static and get_dynamic answer.
        exporter: Pushes to the Pushgateway after each change, if configured.
        on_static: Called with each new get_static answer (at start and after a restart).
        on_dynamic: Called with each flattened get_dynamic answer (e.g. a
            :class:`~qops.monitor.thresholds.ThresholdWatcher`'s ``observe``).
        initial_static: A get_static answer already fetched; skips the first fetch.
    """

    def __init__(
        self,
        settings: MonitorSettings,
        collector: HardwareMetricsCollector,
        sink: SnapshotSink,
        *,
        exporter: MetricsExporter | None = None,
        on_static: Callable[[StaticInfo], None] | None = None,
        initial_static: StaticInfo | None = None,
        on_dynamic: Callable[[Flattened], object] | None = None,
    ) -> None:
        self.settings = settings
        self.collector = collector
        self.sink = sink
        self.exporter = exporter
        self.on_static = on_static
        self.on_dynamic = on_dynamic
        self.static = initial_static
        self.summary = MonitorSummary(backend=initial_static.name if initial_static else None)
        self._stop = threading.Event()
        self._schemas = protocol_schemas()
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.client = MetaClient(
            settings.req_address,
            timeout_s=settings.request_timeout_s,
            retries=settings.request_retries,
            max_message_bytes=settings.max_message_bytes,
            context=self._context,
        )
        self.up = False
        self.state: str | None = None
        self._need_static = initial_static is None
        self._need_dynamic = True
        self._dynamic_due = False
        self._next_fetch = 0.0
        self._failures = 0

    def stop(self) -> None:
        """Ask :meth:`run` to return (safe from signal handlers and other threads)."""
        self._stop.set()

    def run(self, duration_s: float | None = None) -> MonitorSummary:
        """Monitor until :meth:`stop` is called or ``duration_s`` seconds have passed."""
        sub = self._context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.MAXMSGSIZE, self.settings.max_message_bytes)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(self.settings.sub_address)
        started = time.monotonic()
        last_heartbeat = started
        next_static_check = started + self.settings.static_check_s
        loss_after = self.settings.heartbeat_s * self.settings.missed_heartbeats
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if duration_s is not None and now - started >= duration_s:
                    break
                if now >= next_static_check:
                    self._need_static = True
                    next_static_check = now + self.settings.static_check_s
                if (self._need_static or self._need_dynamic) and now >= self._next_fetch:
                    self._fetch()
                if sub.poll(int(TICK_S * 1000), zmq.POLLIN):
                    while True:
                        try:
                            frame = sub.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        if self._on_state(frame):
                            last_heartbeat = time.monotonic()
                if self.up and time.monotonic() - last_heartbeat > loss_after:
                    self._lost(time.monotonic() - last_heartbeat)
                elif self.state is None and time.monotonic() - started > loss_after:
                    self._lost(time.monotonic() - started)
        finally:
            sub.close(linger=0)
            self.client.close()
            self._context.term()
        return self.summary

    def _on_state(self, frame: bytes) -> bool:
        """Handle one published frame; return whether it was a valid heartbeat."""
        try:
            message = decode(frame, "publish_state", self.settings.max_message_bytes)
            self._schemas.check("publish_state/message", message, "publish_state")
            payload = message["payload"]
            assert isinstance(payload, dict)
            state = StateMessage.model_validate(payload).state
        except (ProtocolError, ValidationError) as e:
            logger.warning("ignored a published message: %s", e)
            return False
        self.summary.heartbeats += 1
        previous = self.state
        if state in _REFRESH_FROM:
            self._dynamic_due = True
        if not self.up:
            logger.info("2300 heartbeat %s (state %s)", "back" if previous else "seen", state)
            if previous == UNREACHABLE:
                # It may have restarted: check its starttime, then refresh the metrics.
                self._need_static = True
                self._need_dynamic = True
                self._next_fetch = 0.0
        elif self._dynamic_due and state is BackendState.IDLE and previous != state.value:
            self._dynamic_due = False
            self._need_dynamic = True
            self._next_fetch = 0.0
        if previous != state.value:
            logger.info("2300 state %s -> %s", previous, state.value)
        self.up = True
        self.state = state.value
        self.summary.last_state = self.state
        self.collector.set_reachability(True, self.state)
        if previous != self.state:
            self._push()
        return True

    def _lost(self, silent_s: float) -> None:
        if self.state == UNREACHABLE:
            return
        logger.warning(
            "2300 state UNREACHABLE: no heartbeat for %.1f s from %s",
            silent_s,
            self.settings.sub_address,
        )
        self.up = False
        self.state = UNREACHABLE
        self.summary.last_state = UNREACHABLE
        self.collector.set_reachability(False, UNREACHABLE)
        self._push()

    def _fetch(self) -> None:
        try:
            if self._need_static:
                self._fetch_static()
            if self._need_dynamic and self.static is not None:
                self._fetch_dynamic()
        except (BackendUnreachableError, BackendFailureError, ProtocolError) as e:
            self._retry_later(str(e))
        except Exception as e:
            # The monitor's process edge: whatever a reply does, monitoring goes on.
            logger.exception("unexpected error fetching from 2300")
            self._retry_later(f"{type(e).__name__}: {e}")
        else:
            self._failures = 0
            self._next_fetch = 0.0

    def _retry_later(self, reason: str) -> None:
        self._failures += 1
        delay = min(
            self.settings.max_retry_s, self.settings.heartbeat_s * 2 ** min(self._failures - 1, 30)
        )
        logger.warning("will retry in %.1f s (failure %d): %s", delay, self._failures, reason)
        self._next_fetch = time.monotonic() + delay

    def _fetch_static(self) -> None:
        static = self.client.get_static()
        self.summary.static_fetches += 1
        self._need_static = False
        previous = self.static
        if previous is not None and _same_start(previous.starttime, static.starttime):
            return
        if previous is not None:
            logger.info(
                "2300 %s restarted (starttime %s -> %s)",
                static.name,
                previous.starttime,
                static.starttime,
            )
            self.summary.restarts_seen += 1
            self._need_dynamic = True
        self.static = static
        self.summary.backend = static.name
        self._record(lambda: self.sink.record_static(static), "get_static")
        if self.on_static is not None:
            self.on_static(static)

    def _fetch_dynamic(self) -> None:
        assert self.static is not None
        try:
            payload = self.client.get_dynamic()
        except (BackendFailureError, ProtocolError):
            # 2300 answered, but with nothing usable: the old values are not current any more.
            self.collector.clear_metrics()
            self._push()
            raise
        self.summary.dynamic_fetches += 1
        self._need_dynamic = False
        flattened = flatten_dynamic(payload, reserved=RESERVED)
        self.summary.dropped_metrics += len(flattened.dropped)
        self.collector.replace_metrics(flattened)
        if self.on_dynamic is not None:
            self.on_dynamic(flattened)
        name = self.static.name
        self._record(lambda: self.sink.record_dynamic(name, payload), "get_dynamic")
        logger.info(
            "get_dynamic of %s: %d metric(s), %d sample(s), %d dropped",
            self.static.name,
            len(flattened.metrics),
            flattened.sample_count,
            len(flattened.dropped),
        )
        self._push()

    def _record(self, write: Callable[[], str], what: str) -> None:
        # Metrics keep flowing while MongoDB is down; the loss is logged as an error. The
        # repository stores what BSON cannot hold as text; the BSON errors are a last guard.
        try:
            write()
        except (PyMongoError, BSONError, OverflowError, UnicodeEncodeError) as e:
            logger.error("could not record the %s answer in MongoDB: %s", what, e)

    def _push(self) -> None:
        if self.exporter is not None:
            self.exporter.push()


def _same_start(a: float, b: float) -> bool:
    """Whether two starttimes are the same start (NaN, which the protocol allows, is)."""
    return a == b or (math.isnan(a) and math.isnan(b))
