"""The 2200 monitor against a 2300 that sends what the protocol allows but qops would not send.

The 2300 here is a scripted one (real ZeroMQ REP and PUB sockets on loopback) whose
get_static and get_dynamic payloads a test sets: valid replies that used to crash the
monitor, make it re-ask forever, or leave old values exposed as current.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import zmq
from prometheus_client import CollectorRegistry, generate_latest
from pymongo.database import Database

from qops.metrics.collector import HardwareMetricsCollector
from qops.mongo import Document
from qops.monitor.monitor import HardwareMonitor, MonitorSettings, MonitorSummary
from qops.monitor.snapshots import MongoSnapshotRepository
from qops.protocol.messages import StaticInfo
from tests.meta_support import MCKAY, wait_for

HEARTBEAT_S = 0.1

STATIC: dict[str, object] = {
    "protocol_version": 3,
    "nqubits": 2,
    "topology": [[0, 1]],
    "name": "scripted-2",
    "pgs": ["X", "CZ"],
    "starttime": 1690061619.610174,
}


@dataclass
class ScriptedBackend:
    """A 2300 answering with set payloads; ``reply`` may replace the whole reply."""

    context: zmq.Context[zmq.Socket[bytes]]
    static: dict[str, object] = field(default_factory=lambda: copy.deepcopy(STATIC))
    dynamic: object = field(default_factory=lambda: {"t1": 0.5})
    dynamic_failure: str | None = None
    state: str = "IDLE"
    asked: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rep = self.context.socket(zmq.REP)
        self._pub = self.context.socket(zmq.PUB)
        for sock in (self._rep, self._pub):
            sock.setsockopt(zmq.LINGER, 0)
        self._rep.bind("tcp://127.0.0.1:*")
        self._pub.bind("tcp://127.0.0.1:*")
        self.req = self._rep.getsockopt_string(zmq.LAST_ENDPOINT)
        self.pub = self._pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._rep.setsockopt(zmq.RCVTIMEO, int(HEARTBEAT_S * 1000))
        while not self._stop.is_set():
            self._pub.send_string(
                json.dumps(
                    {"command": "publish_state", "payload": {"state": self.state, "timestamp": 1}}
                )
            )
            try:
                request = json.loads(self._rep.recv())
            except zmq.Again:
                continue
            command = request["command"]
            self.asked[command] += 1
            reply: dict[str, object] = {"status": "success", "session_id": request["session_id"]}
            if command == "get_static":
                reply["payload"] = self.static
            elif self.dynamic_failure is not None:
                reply = {**reply, "status": "failure"}
                reply["payload"] = {"error_msg": self.dynamic_failure}
            else:
                reply["payload"] = self.dynamic
            # Python's json.dumps, as the protocol's reference implementation writes it.
            self._rep.send_string(json.dumps(reply))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._rep.close(linger=0)
        self._pub.close(linger=0)


@dataclass
class Watching:
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


@pytest.fixture
def backend() -> Iterator[ScriptedBackend]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    scripted = ScriptedBackend(context)
    yield scripted
    scripted.close()
    context.destroy(linger=0)


@pytest.fixture
def watch(mongo_db: Database[Document]) -> Iterator[Callable[[ScriptedBackend], Watching]]:
    running: list[Watching] = []

    def start(scripted: ScriptedBackend) -> Watching:
        settings = MonitorSettings(
            req_address=scripted.req,
            sub_address=scripted.pub,
            request_timeout_s=0.5,
            request_retries=2,
            heartbeat_s=HEARTBEAT_S,
            max_retry_s=5.0,
        )
        collector = HardwareMetricsCollector()
        statics: list[StaticInfo] = []
        monitor = HardwareMonitor(
            settings, collector, MongoSnapshotRepository(mongo_db), on_static=statics.append
        )
        result: list[MonitorSummary] = []
        thread = threading.Thread(target=lambda: result.append(monitor.run()), daemon=True)
        thread.start()
        handle = Watching(monitor, collector, thread, result, statics)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        assert handle.thread.is_alive(), "the monitor stopped by itself"
        handle.monitor.stop()
        handle.thread.join(timeout=10)
        assert not handle.thread.is_alive()


@pytest.mark.parametrize(
    ("odd", "stored_as_text"),
    [
        ({"count": 2**63}, True),
        ({"bad\u0000key": 1.0}, True),
        ({"per_qubit": {"__labels__": ["qubit"], "q\u0000": 1.0}}, True),
        ({"big": {"__labels__": ["qubit"], "q0": 2**64 - 1}}, True),
        ({"dotted.name": 1.0}, True),
    ],
)
def test_monitor_get_dynamic_bson_cannot_hold_is_stored_as_text_and_exposed(
    backend: ScriptedBackend,
    watch: Callable[[ScriptedBackend], Watching],
    mongo_db: Database[Document],
    odd: dict[str, object],
    stored_as_text: bool,
) -> None:
    backend.dynamic = {"t1": 0.5, **odd}
    watching = watch(backend)
    wait_for(watching.shows("qi_t1 0.5"), what="qi_t1 exposed")
    repository = MongoSnapshotRepository(mongo_db)
    wait_for(lambda: bool(repository.latest_dynamic("scripted-2")), what="snapshot stored")
    [(_, payload)] = repository.latest_dynamic("scripted-2")
    assert payload == backend.dynamic
    document = mongo_db.dynamic_snapshots.find_one()
    assert document is not None
    assert ("payload_json" in document) is stored_as_text
    time.sleep(3 * HEARTBEAT_S)
    assert watching.thread.is_alive()


def test_monitor_spec_valid_get_static_is_accepted_once_and_metrics_exposed(
    backend: ScriptedBackend,
    watch: Callable[[ScriptedBackend], Watching],
    mongo_db: Database[Document],
) -> None:
    backend.static.update(
        nqubits=2**63,
        topology=[[-1, 0]],
        name="",
        pgs=["mX90", "Rx", "measure"],
        default_compiler_config={
            "decomposition": [
                {"path": MCKAY, "method": "decompose", "arguments": {}, "name": "mckay"}
            ],
            "mapping": [{"path": "mylab.passes.Router", "method": "map"}],
            "custom\u0000stage": [],
        },
        vendor={"fridge": "BF-LD400"},
    )
    watching = watch(backend)
    wait_for(watching.shows("qi_t1 0.5"), what="metrics of a spec-valid 2300")
    time.sleep(10 * HEARTBEAT_S)
    assert backend.asked["get_static"] == 1
    [static] = watching.statics
    assert static.pgs == ["mX90", "Rx", "measure"]
    assert static.default_compiler_config.decomposition[0].model_extra == {"name": "mckay"}
    document = mongo_db.backend_static.find_one()
    assert document is not None
    assert json.loads(document["static_json"])["nqubits"] == 2**63


def test_monitor_nan_and_string_metrics_are_dropped_alone(
    backend: ScriptedBackend, watch: Callable[[ScriptedBackend], Watching]
) -> None:
    backend.dynamic = {
        "t1": 0.5,
        "t2": float("nan"),
        "fridge": "cold",
        "f": {"__labels__": ["qubit"], "q0": 0.9},
    }
    watching = watch(backend)
    wait_for(watching.shows("qops_monitor_dropped_metrics 2.0"), what="two dropped")
    text = watching.scrape()
    assert "qi_t1 0.5" in text
    assert 'qi_f{qubit="q0"} 0.9' in text
    assert "qi_t2" not in text
    assert "qi_fridge" not in text


def test_monitor_failure_answer_withdraws_old_values(
    backend: ScriptedBackend, watch: Callable[[ScriptedBackend], Watching]
) -> None:
    watching = watch(backend)
    wait_for(watching.shows("qi_t1 0.5"), what="first values")
    backend.dynamic_failure = "calibration store unavailable"
    backend.state = "CALIBRATING"
    wait_for(watching.shows('qi_backend_state{state="CALIBRATING"} 1.0'), what="CALIBRATING")
    backend.state = "IDLE"
    wait_for(lambda: backend.asked["get_dynamic"] >= 2, what="get_dynamic after IDLE")
    wait_for(lambda: "qi_t1" not in watching.scrape(), what="old values withdrawn")
    backend.dynamic_failure = None
    backend.dynamic = {"t1": 0.7}
    wait_for(watching.shows("qi_t1 0.7"), timeout_s=8, what="values once 2300 answers again")


def test_monitor_calibrating_executing_idle_refetches(
    backend: ScriptedBackend, watch: Callable[[ScriptedBackend], Watching]
) -> None:
    watching = watch(backend)
    wait_for(watching.shows("qi_t1 0.5"), what="first values")
    backend.state = "CALIBRATING"
    wait_for(watching.shows('qi_backend_state{state="CALIBRATING"} 1.0'), what="CALIBRATING")
    backend.state = "EXECUTING"
    wait_for(watching.shows('qi_backend_state{state="EXECUTING"} 1.0'), what="EXECUTING")
    backend.dynamic = {"t1": 0.6}
    backend.state = "IDLE"
    wait_for(watching.shows("qi_t1 0.6"), what="values after CALIBRATING, EXECUTING, IDLE")
    asked = backend.asked["get_dynamic"]
    backend.state = "EXECUTING"
    wait_for(watching.shows('qi_backend_state{state="EXECUTING"} 1.0'), what="EXECUTING")
    backend.state = "IDLE"
    wait_for(watching.shows('qi_backend_state{state="IDLE"} 1.0'), what="IDLE")
    time.sleep(5 * HEARTBEAT_S)
    assert backend.asked["get_dynamic"] == asked, "no refetch due after EXECUTING alone"


def test_monitor_unusable_get_static_is_retried_with_backoff(
    backend: ScriptedBackend, watch: Callable[[ScriptedBackend], Watching]
) -> None:
    backend.static["protocol_version"] = 2
    watch(backend)
    time.sleep(3.0)
    # Without backoff: an attempt pair every heartbeat (0.1 s), about 60 requests in 3 s.
    # With it: after 0.1, 0.2, 0.4, 0.8, 1.6 s, i.e. at most 6 fetches of 2 attempts.
    assert 2 <= backend.asked["get_static"] <= 12
