"""``qops backend serve`` with its MongoDB stopped: no stall of the heartbeat or any reply.

A real embedded MongoDB of the test's own is stopped under a running ``qops backend serve``
(provenance source, 3 s MongoDB timeout). Heartbeats must keep their period, get_static
(which needs no database) must answer at once and get_dynamic must answer with a failure
within the 2200 client's timeout.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from qops.mongo import EmbeddedMongo
from qops.monitor.client import MetaClient
from qops.monitor.errors import BackendFailureError
from tests.cli import QOPS

HEARTBEAT_S = 0.5
CLIENT_TIMEOUT_S = 2.0

CONFIG = f"""\
name: outage-2
nqubits: 2
topology: [[0, 1]]
heartbeat_s: {HEARTBEAT_S}
calibration_timeout_s: 1.0
calibration:
  - {{parameter_name: t1, qid: Q0, value: 1.0}}
"""


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    yield data
    EmbeddedMongo(data).stop()


def test_backend_serve_mongo_down_keeps_heartbeat_and_answers_in_time(
    tmp_path: Path, data_dir: Path
) -> None:
    embedded = EmbeddedMongo(data_dir)
    server = embedded.ensure_running()
    config = tmp_path / "backend.yaml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "QOPS_DATA_DIR": str(data_dir),
        "QOPS_MONGODB_URL": server.url,
        "QOPS_MONGODB_TIMEOUT_S": "3",
        "QOPS_PROJECT_ID": "outage-lab",
    }
    loopback = "tcp://127.0.0.1:*"
    addresses = ["--req-address", loopback, "--pub-address", loopback]
    process = subprocess.Popen(
        [QOPS, "backend", "serve", "--config", str(config), *addresses],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"requests on (tcp://\S+), state on (tcp://\S+)", line)
        assert found, line + (process.stderr.read() if process.stderr else "")
        heartbeats: list[float] = []
        listening = threading.Event()
        done = threading.Event()

        def listen() -> None:
            # Its own thread, so each heartbeat is timed when it arrives.
            sub = context.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(found[2])
            while not done.is_set():
                if sub.poll(50):
                    message = json.loads(sub.recv())
                    assert message["command"] == "publish_state"
                    if listening.is_set():
                        heartbeats.append(time.monotonic())
            sub.close(linger=0)

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        client = MetaClient(found[1], timeout_s=CLIENT_TIMEOUT_S, retries=1, context=context)
        assert client.get_dynamic()["t1"] == {"__labels__": ["qubit"], "q0": 1.0}

        embedded.stop()
        listening.set()
        static_s: list[float] = []
        dynamic_s: list[float] = []
        failures: list[str] = []
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                client.get_dynamic()
            except BackendFailureError as e:
                failures.append(e.error_msg)
            dynamic_s.append(time.monotonic() - started)
            started = time.monotonic()
            assert client.get_static().name == "outage-2"
            static_s.append(time.monotonic() - started)
        done.set()
        listener.join(timeout=5)
        client.close()

        assert failures, "get_dynamic never failed with MongoDB down: nothing tested"
        assert all("outage-2" in failure for failure in failures), failures
        assert max(dynamic_s) < CLIENT_TIMEOUT_S, dynamic_s
        assert max(static_s) < 0.5, static_s
        gaps = [b - a for a, b in itertools.pairwise(heartbeats)]
        assert len(heartbeats) >= 8 / HEARTBEAT_S - 2, heartbeats
        assert max(gaps) < 2 * HEARTBEAT_S, gaps
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        context.destroy(linger=0)
