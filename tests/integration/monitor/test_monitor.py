"""The 2200 monitor against a real 2300 server: metrics, refreshes, heartbeat loss, restarts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import zmq
from prometheus_client import CollectorRegistry, generate_latest
from pymongo.database import Database

from qops.backend.state import calibrating
from qops.metrics.collector import HardwareMetricsCollector, MetricsExporter
from qops.mongo import Document
from qops.monitor.monitor import HardwareMonitor, MonitorSettings, MonitorSummary
from qops.monitor.snapshots import MongoSnapshotRepository
from qops.process import free_port
from qops.protocol.messages import StaticInfo
from tests.meta_support import (
    CHIP,
    HEARTBEAT_S,
    ServerFactory,
    calibration_values,
    wait_for,
)


@dataclass
class RunningMonitor:
    monitor: HardwareMonitor
    collector: HardwareMetricsCollector
    thread: threading.Thread
    result: list[MonitorSummary]
    statics: list[StaticInfo]

    def scrape(self) -> str:
        registry = CollectorRegistry()
        registry.register(self.collector)
        return generate_latest(registry).decode()

    def shows(self, line: str) -> Callable[[], bool]:
        return lambda: line in self.scrape()


MonitorFactory = Callable[[str, str], RunningMonitor]


@pytest.fixture
def start_monitor(mongo_db: Database[Document]) -> Iterator[MonitorFactory]:
    running: list[RunningMonitor] = []

    def start(req: str, sub: str) -> RunningMonitor:
        settings = MonitorSettings(
            req_address=req,
            sub_address=sub,
            request_timeout_s=0.3,
            request_retries=2,
            heartbeat_s=HEARTBEAT_S,
        )
        collector = HardwareMetricsCollector()
        statics: list[StaticInfo] = []
        monitor = HardwareMonitor(
            settings, collector, MongoSnapshotRepository(mongo_db), on_static=statics.append
        )
        result: list[MonitorSummary] = []
        thread = threading.Thread(target=lambda: result.append(monitor.run()), daemon=True)
        thread.start()
        handle = RunningMonitor(monitor, collector, thread, result, statics)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        handle.monitor.stop()
        handle.thread.join(timeout=10)
        assert not handle.thread.is_alive()


def test_monitor_start_exposes_metrics_and_records_answers(
    start_server: ServerFactory, start_monitor: MonitorFactory, mongo_db: Database[Document]
) -> None:
    server = start_server()
    watching = start_monitor(server.req, server.pub)
    wait_for(watching.shows('qi_t1{qubit="q0"} 0.995'), what="qi_t1 of q0")
    wait_for(watching.shows("qi_up 1.0"), what="qi_up 1")
    text = watching.scrape()
    assert 'qi_t1{qubit="q1"} 0.988' in text
    assert 'qi_cnot_fidelity{qubit1="q1",qubit2="q0"} 0.995' in text
    assert "qi_fridge_temperature_in_mk 8.4" in text
    assert 'qi_backend_state{state="IDLE"} 1.0' in text
    assert [s.name for s in watching.statics] == ["spin-2"]
    snapshots = list(mongo_db.dynamic_snapshots.find())
    assert len(snapshots) == 1
    assert snapshots[0]["backend"] == "spin-2"
    assert snapshots[0]["payload"]["t1"]["q0"] == 0.995
    assert mongo_db.backend_static.count_documents({"backend": "spin-2"}) == 1


def test_monitor_calibrating_to_idle_fetches_new_values(
    start_server: ServerFactory, start_monitor: MonitorFactory, mongo_db: Database[Document]
) -> None:
    server = start_server()
    watching = start_monitor(server.req, server.pub)
    wait_for(watching.shows('qi_t1{qubit="q0"} 0.995'), what="first values")
    with calibrating(server.store, CHIP, holder="test calibration"):
        wait_for(watching.shows('qi_backend_state{state="CALIBRATING"} 1.0'), what="CALIBRATING")
        server.calibration.set_parameters(CHIP, calibration_values(t1_q0=0.5))
    wait_for(watching.shows('qi_t1{qubit="q0"} 0.5'), what="values after calibration")
    assert mongo_db.dynamic_snapshots.count_documents({"backend": "spin-2"}) == 2


def test_monitor_heartbeat_loss_and_restart_are_followed(
    start_server: ServerFactory, start_monitor: MonitorFactory, mongo_db: Database[Document]
) -> None:
    req, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    first = start_server(req=req, pub=pub)
    watching = start_monitor(req, pub)
    wait_for(watching.shows("qi_up 1.0"), what="qi_up 1")
    first.stop()
    wait_for(watching.shows("qi_up 0.0"), timeout_s=3, what="qi_up 0 after heartbeat loss")
    assert 'qi_backend_state{state="UNREACHABLE"} 1.0' in watching.scrape()
    second = start_server(req=req, pub=pub)
    second.calibration.set_parameters(CHIP, calibration_values(t1_q0=0.7))
    wait_for(watching.shows('qi_t1{qubit="q0"} 0.7'), what="fresh get_dynamic after restart")
    assert "qi_up 1.0" in watching.scrape()
    assert [s.starttime for s in watching.statics] == [
        first.server.starttime,
        second.server.starttime,
    ]
    assert mongo_db.backend_static.count_documents({}) == 2


def test_monitor_backend_down_at_start_then_up(
    start_server: ServerFactory, start_monitor: MonitorFactory
) -> None:
    req, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    watching = start_monitor(req, pub)
    wait_for(
        watching.shows('qi_backend_state{state="UNREACHABLE"} 1.0'), what="UNREACHABLE at start"
    )
    assert "qi_up 0.0" in watching.scrape()
    start_server(req=req, pub=pub)
    wait_for(watching.shows('qi_t1{qubit="q0"} 0.995'), timeout_s=8, what="metrics once up")
    wait_for(watching.shows("qi_up 1.0"), what="qi_up 1 once heartbeats arrive")


def test_metrics_exporter_serves_collector_over_http() -> None:
    collector = HardwareMetricsCollector()
    collector.set_reachability(True, "IDLE")
    exporter = MetricsExporter(collector, port=0, host="127.0.0.1")
    exporter.start()
    try:
        text = httpx.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5).text
    finally:
        exporter.stop()
    assert "qi_up 1.0" in text
    assert 'qi_backend_state{state="IDLE"} 1.0' in text


def test_monitor_pushes_metrics_to_pushgateway_after_get_dynamic(
    start_server: ServerFactory, mongo_db: Database[Document]
) -> None:
    received: list[tuple[str, str, bytes]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    gateway = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    server = start_server()
    settings = MonitorSettings(
        req_address=server.req, sub_address=server.pub, heartbeat_s=HEARTBEAT_S
    )
    collector = HardwareMetricsCollector()
    exporter = MetricsExporter(
        collector, port=0, host="127.0.0.1", pushgateway=f"http://127.0.0.1:{gateway.server_port}"
    )
    monitor = HardwareMonitor(
        settings, collector, MongoSnapshotRepository(mongo_db), exporter=exporter
    )
    try:
        monitor.run(duration_s=0.5)
    finally:
        gateway.shutdown()
        gateway.server_close()
    assert received, "nothing was pushed"
    command, path, body = received[-1]
    assert (command, path) == ("PUT", "/metrics/job/qops-monitor")
    assert b'qi_t1{qubit="q0"} 0.995' in body


def test_monitor_offline_to_idle_fetches_new_values(
    start_server: ServerFactory, start_monitor: MonitorFactory
) -> None:
    server = start_server()
    watching = start_monitor(server.req, server.pub)
    wait_for(watching.shows('qi_t1{qubit="q0"} 0.995'), what="first values")
    server.store.set_offline(CHIP, True, "maintenance")
    wait_for(watching.shows('qi_backend_state{state="OFFLINE"} 1.0'), what="OFFLINE")
    server.calibration.set_parameters(CHIP, calibration_values(t1_q0=0.25))
    assert 'qi_t1{qubit="q0"} 0.995' in watching.scrape()  # no fetch while OFFLINE
    server.store.set_offline(CHIP, False)
    wait_for(watching.shows('qi_t1{qubit="q0"} 0.25'), what="values after OFFLINE -> IDLE")


def test_monitor_ignores_garbage_on_the_state_channel(
    start_server: ServerFactory,
    start_monitor: MonitorFactory,
    zmq_context: zmq.Context[zmq.Socket[bytes]],
) -> None:
    server = start_server()
    pub = zmq_context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    watching = start_monitor(server.req, f"tcp://127.0.0.1:{port}")
    bad = [
        b"\xff\x00garbage",
        b"",
        b"[]",
        b'{"command": "publish_state", "payload": {"state": "ASLEEP", "timestamp": 1}}',
    ]
    good = b'{"command": "publish_state", "payload": {"state": "EXECUTING", "timestamp": 1.0}}'

    def executing_shown() -> bool:
        for frame in [*bad, good]:
            pub.send(frame)
        return 'qi_backend_state{state="EXECUTING"} 1.0' in watching.scrape()

    wait_for(executing_shown, what="the valid state among garbage")
    assert watching.monitor.summary.heartbeats >= 1
    assert "qi_up 1.0" in watching.scrape()
