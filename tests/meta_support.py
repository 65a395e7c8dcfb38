"""A real 2300 meta server on loopback random ports, in a thread of the test process.

Shared by the backend and monitor tests: their conftests import the fixtures
(``start_server``, ``zmq_context``) from here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import zmq
from pymongo.database import Database

from qops.backend.config import BackendConfig
from qops.backend.server import MetaServer
from qops.backend.sources import CalibrationValue, InMemoryCalibrationSource
from qops.backend.state import MongoBackendStateStore
from qops.mongo import Document

CHIP = "chip-a"
MCKAY = "opensquirrel.passes.decomposer.mckay_decomposer.McKayDecomposer"
HEARTBEAT_S = 0.2


def make_config(**overrides: object) -> BackendConfig:
    fields: dict[str, object] = {
        "name": "spin-2",
        "chip_id": CHIP,
        "nqubits": 2,
        "topology": [(0, 1)],
        "pgs": ["X", "Y", "CNOT", "MEASURE"],
        "default_compiler_config": {
            "decomposition": [{"path": MCKAY, "method": "decompose", "arguments": {}}]
        },
        "extra_metrics": {"fridge_temperature_in_mk": 8.4},
        "heartbeat_s": HEARTBEAT_S,
    }
    fields.update(overrides)
    return BackendConfig.model_validate(fields)


def calibration_values(t1_q0: float = 0.995) -> list[CalibrationValue]:
    return [
        CalibrationValue(parameter_name="t1", qid="Q0", value=t1_q0),
        CalibrationValue(parameter_name="t1", qid="Q1", value=0.988),
        CalibrationValue(parameter_name="cnot_fidelity", qid="Q1-Q0", value=0.995),
    ]


@dataclass
class RunningServer:
    """A server serving in a background thread."""

    server: MetaServer
    thread: threading.Thread
    calibration: InMemoryCalibrationSource
    store: MongoBackendStateStore

    @property
    def req(self) -> str:
        return self.server.req_endpoint

    @property
    def pub(self) -> str:
        return self.server.pub_endpoint

    def stop(self) -> None:
        self.server.stop()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()
        self.server.close()


ServerFactory = Callable[..., RunningServer]


@pytest.fixture
def start_server(mongo_db: Database[Document]) -> Iterator[ServerFactory]:
    """Start servers; each is stopped at the end of the test."""
    running: list[RunningServer] = []

    def start(
        req: str = "tcp://127.0.0.1:*",
        pub: str = "tcp://127.0.0.1:*",
        *,
        config: BackendConfig | None = None,
        values: list[CalibrationValue] | None = None,
        **kwargs: object,
    ) -> RunningServer:
        calibration = InMemoryCalibrationSource(
            {CHIP: calibration_values() if values is None else values}
        )
        store = MongoBackendStateStore(mongo_db)
        server = MetaServer(config or make_config(), calibration, store, req, pub, **kwargs)  # type: ignore[arg-type]
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        handle = RunningServer(server, thread, calibration, store)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if handle.thread.is_alive():
            handle.stop()


@pytest.fixture
def zmq_context() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    """A context for the test's own sockets; leaked sockets fail the test instead of hanging."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.destroy(linger=0)


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0, what: str = "") -> None:
    """Poll ``condition`` until true or fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what or condition}")
        time.sleep(0.02)


def raw_request(
    context: zmq.Context[zmq.Socket[bytes]], address: str, *frames: bytes, timeout_s: float = 5
) -> dict[str, object]:
    """Send raw frames on a fresh REQ socket and return the decoded reply."""
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    try:
        sock.send_multipart(list(frames))
        assert sock.poll(int(timeout_s * 1000)), f"no reply within {timeout_s:g} s"
        reply: dict[str, object] = json.loads(sock.recv())
        return reply
    finally:
        sock.close()
