"""The 2300 meta server over real sockets: answers, failure replies, state publication."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from collections.abc import Hashable
from pathlib import Path

import pytest
import zmq

from qops.backend.errors import StateStoreError
from qops.backend.state import calibrating, resolve_state
from qops.monitor.client import MetaClient
from qops.monitor.errors import BackendFailureError
from qops.protocol.messages import BackendState, Command, new_session_id
from tests.cli import QOPS, qops_process, run_qops
from tests.meta_support import CHIP, MCKAY, ServerFactory, raw_request, wait_for

Context = zmq.Context[zmq.Socket[bytes]]


def test_meta_server_get_static_returns_configured_system(start_server: ServerFactory) -> None:
    running = start_server()
    with MetaClient(running.req, timeout_s=2) as client:
        static = client.get_static()
    assert static.name == "spin-2"
    assert static.protocol_version == 3
    assert static.topology == [(0, 1)]
    assert static.default_compiler_config.decomposition[0].path == MCKAY
    assert abs(static.starttime - time.time()) < 60


def test_meta_server_get_dynamic_returns_calibration_and_extras(
    start_server: ServerFactory,
) -> None:
    running = start_server()
    with MetaClient(running.req, timeout_s=2) as client:
        payload = client.get_dynamic()
    assert payload == {
        "t1": {"__labels__": ["qubit"], "q0": 0.995, "q1": 0.988},
        "cnot_fidelity": {"__labels__": ["qubit1", "qubit2"], "q1": {"q0": 0.995}},
        "fridge_temperature_in_mk": 8.4,
    }


SESSION = "3f0c8a4e-8d0b-4a4e-9a53-0d6b8f1c2e7a"


@pytest.mark.parametrize(
    ("frames", "reason", "same_session"),
    [
        ([b"\x00\xff\x13garbage\xfe"], "not UTF-8", False),
        ([b""], "empty message", False),
        ([b"[1, 2, 3]"], "expected a JSON object, found list", False),
        ([b'"get_static"'], "expected a JSON object, found str", False),
        ([b'{"command": "get_static"}'], "session_id", False),
        ([b'{"command": "get_static", "session_id": 7}'], "session_id", False),
        ([f'{{"command": "reboot", "session_id": "{SESSION}"}}'.encode()], "unknown command", True),
        (
            [f'{{"command": ["get_static"], "session_id": "{SESSION}"}}'.encode()],
            "command: ['get_static'] is not of type 'string'",
            True,
        ),
        (
            [f'{{"command": {{"a": 1}}, "session_id": "{SESSION}"}}'.encode()],
            "is not of type 'string'",
            True,
        ),
        ([b'{"command": "get_static",', b"two frames"], "expected one frame", False),
    ],
)
def test_meta_server_bad_request_gets_failure_reply_and_keeps_serving(
    start_server: ServerFactory,
    zmq_context: Context,
    frames: list[bytes],
    reason: str,
    same_session: bool,
) -> None:
    running = start_server()
    reply = raw_request(zmq_context, running.req, *frames)
    assert reply["status"] == "failure"
    payload = reply["payload"]
    assert isinstance(payload, dict)
    assert reason in payload["error_msg"]
    session_id = reply["session_id"]
    assert isinstance(session_id, str)
    assert len(session_id) == 36
    assert (session_id == SESSION) is same_session
    ok = raw_request(
        zmq_context,
        running.req,
        json.dumps({"command": "get_static", "session_id": new_session_id()}).encode(),
    )
    assert ok["status"] == "success"


@pytest.mark.parametrize("session_id", ["job-42", "", 'a "quoted" \\ id', "\u00e9\u0000\u2603"])
@pytest.mark.parametrize("command", ["get_static", "get_dynamic"])
def test_meta_server_any_string_session_id_is_copied_into_reply(
    start_server: ServerFactory, zmq_context: Context, command: str, session_id: str
) -> None:
    running = start_server()
    reply = raw_request(
        zmq_context,
        running.req,
        json.dumps({"command": command, "session_id": session_id}).encode(),
    )
    assert reply["status"] == "success"
    assert reply["session_id"] == session_id


def test_meta_server_request_with_any_payload_is_answered(
    start_server: ServerFactory, zmq_context: Context
) -> None:
    running = start_server()
    for payload in (5, "x", [1], None):
        message = {"command": "get_static", "session_id": "job-42", "payload": payload}
        reply = raw_request(zmq_context, running.req, json.dumps(message).encode())
        assert reply["status"] == "success", reply


def test_meta_server_huge_unknown_command_is_not_echoed_whole(
    start_server: ServerFactory, zmq_context: Context, caplog: pytest.LogCaptureFixture
) -> None:
    running = start_server()
    command = "x" * 1_000_000
    message = json.dumps({"command": command, "session_id": "job-42"}).encode()
    with caplog.at_level(logging.WARNING, logger="qops.backend.server"):
        reply = raw_request(zmq_context, running.req, message)
    assert reply["status"] == "failure"
    assert reply["session_id"] == "job-42"
    error_msg = str(reply["payload"]["error_msg"])  # type: ignore[index]
    assert "unknown command 'xxx" in error_msg
    assert "(1000002 characters)" in error_msg
    assert len(error_msg) < 300
    assert caplog.records
    assert all(len(record.getMessage()) < 1000 for record in caplog.records)


def test_meta_server_oversize_request_gets_failure_reply(
    start_server: ServerFactory, zmq_context: Context
) -> None:
    running = start_server(max_message_bytes=1024)
    big = json.dumps(
        {"command": "get_static", "session_id": SESSION, "payload": {"pad": "x" * 2000}}
    ).encode()
    reply = raw_request(zmq_context, running.req, big)
    assert reply["status"] == "failure"
    assert "exceeds the cap of 1024 bytes" in str(reply["payload"])


def test_meta_server_calibration_source_error_gets_failure_reply(
    start_server: ServerFactory, zmq_context: Context
) -> None:
    running = start_server()

    class BrokenSource:
        def current_parameters(self, chip_id: str) -> list[object]:
            raise RuntimeError("calibration database gone")

        def parameters_version(self, chip_id: str) -> Hashable:
            return None

    running.server.calibration = BrokenSource()  # type: ignore[assignment]
    with MetaClient(running.req, timeout_s=2) as client:
        with pytest.raises(BackendFailureError, match="internal error: RuntimeError: calibration"):
            client.request(Command.GET_DYNAMIC)
        assert client.get_static().name == "spin-2"


def subscribe(context: Context, address: str) -> zmq.Socket[bytes]:
    sock = context.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(address)
    return sock


def next_state(sock: zmq.Socket[bytes], timeout_s: float = 3.0) -> tuple[str, float]:
    assert sock.poll(int(timeout_s * 1000)), "no publish_state within the timeout"
    message = json.loads(sock.recv())
    assert message["command"] == "publish_state"
    return message["payload"]["state"], time.monotonic()


def wait_state(sock: zmq.Socket[bytes], state: str, timeout_s: float = 3.0) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen, at = next_state(sock, timeout_s)
        if seen == state:
            return at
    pytest.fail(f"state {state} not published within {timeout_s} s")


def test_meta_server_heartbeat_publishes_idle_periodically(
    start_server: ServerFactory, zmq_context: Context
) -> None:
    running = start_server()
    sub = subscribe(zmq_context, running.pub)
    first = wait_state(sub, "IDLE")
    second = wait_state(sub, "IDLE")
    assert 0.1 < second - first < 0.5  # heartbeat every 0.2 s


def test_meta_server_offline_and_calibrating_marks_published_at_once(
    start_server: ServerFactory, zmq_context: Context
) -> None:
    running = start_server()
    sub = subscribe(zmq_context, running.pub)
    wait_state(sub, "IDLE")
    with calibrating(running.store, CHIP, holder="test"):
        wait_state(sub, "CALIBRATING", timeout_s=1.0)
        running.store.set_offline(CHIP, True, "maintenance")
        wait_state(sub, "OFFLINE", timeout_s=1.0)  # OFFLINE wins over CALIBRATING
        running.store.set_offline(CHIP, False)
        wait_state(sub, "CALIBRATING", timeout_s=1.0)
    wait_state(sub, "IDLE", timeout_s=1.0)


def test_state_lease_of_crashed_holder_expires(start_server: ServerFactory) -> None:
    running = start_server()
    # A holder that took the lease and died: nobody renews or releases it.
    running.store.acquire(CHIP, BackendState.CALIBRATING, "crashed flow", lease_s=0.5)
    assert resolve_state(running.store.marks(CHIP)) is BackendState.CALIBRATING
    wait_for(
        lambda: resolve_state(running.store.marks(CHIP)) is BackendState.IDLE,
        timeout_s=3,
        what="the lease to expire",
    )
    # The expired lease is gone once purged (MongoDB's TTL monitor may have removed it
    # first, so purge finds one or none).
    assert running.store.purge_expired(CHIP) in (0, 1)
    assert running.store.purge_expired(CHIP) == 0
    assert resolve_state(running.store.marks(CHIP)) is BackendState.IDLE


def test_state_lease_is_renewed_while_held(start_server: ServerFactory) -> None:
    running = start_server()
    with calibrating(running.store, CHIP, holder="long calibration", lease_s=0.3):
        time.sleep(0.9)  # three lease lengths: only renewal keeps the mark
        assert resolve_state(running.store.marks(CHIP)) is BackendState.CALIBRATING
    assert resolve_state(running.store.marks(CHIP)) is BackendState.IDLE


def test_state_lease_released_when_block_raises(start_server: ServerFactory) -> None:
    running = start_server()
    with pytest.raises(RuntimeError), calibrating(running.store, CHIP, holder="failing"):
        raise RuntimeError("calibration failed")
    assert resolve_state(running.store.marks(CHIP)) is BackendState.IDLE


def test_backend_serve_cli_stops_within_one_second_of_sigterm(
    tmp_path: Path, mongo_settings: object
) -> None:
    config = tmp_path / "backend.yaml"
    config.write_text(
        f"name: spin-2\nchip_id: {CHIP}\nnqubits: 2\n"
        f"default_compiler_config: {{decomposition: [{{path: {MCKAY}, method: decompose}}]}}\n"
    )
    loopback = "tcp://127.0.0.1:*"
    serve = ["backend", "serve", "--config", str(config)]
    with qops_process(*serve, "--req-address", loopback, "--pub-address", loopback) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving spin-2 (chip chip-a)"), line
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=5)
        assert time.monotonic() - started < 1.0
        assert code == 0


def test_backend_serve_cli_bad_compiler_pass_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "backend.yaml"
    config.write_text(
        "name: spin-2\nnqubits: 2\ndefault_compiler_config:\n  routing:\n"
        "    - {path: opensquirrel.passes.router.NoSuchRouter, method: route}\n"
    )
    result = subprocess.run(
        [QOPS, "backend", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "routing[0] opensquirrel.passes.router.NoSuchRouter.route" in result.stderr


def test_backend_set_state_cli_marks_offline_and_online(mongo_settings: object) -> None:
    offline = run_qops("backend", "set-state", "offline", "--chip", CHIP, "--reason", "repair")
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.strip() == f"{CHIP}: OFFLINE"
    assert run_qops("backend", "state", "--chip", CHIP).stdout.strip() == "OFFLINE"
    online = run_qops("backend", "set-state", "online", "--chip", CHIP)
    assert online.stdout.strip() == f"{CHIP}: IDLE"


def test_backend_set_state_cli_unknown_state_is_usage_error() -> None:
    result = run_qops("backend", "set-state", "sleeping", "--chip", CHIP)
    assert result.returncode == 2
    assert "sleeping" in result.stderr


def test_meta_server_command_table_takes_a_new_command(
    start_server: ServerFactory, zmq_context: Context
) -> None:
    seen: list[tuple[str, object]] = []

    def echo(request: dict[str, object], session_id: str) -> bytes | None:
        seen.append((session_id, request.get("payload")))
        if request.get("payload") == "fail":
            raise StateStoreError(CHIP, "cannot write backend_state")
        return None

    running = start_server(commands={"echo": echo, "get_static": echo})
    reply = raw_request(
        zmq_context, running.req, b'{"command": "echo", "session_id": "s-1", "payload": 3}'
    )
    assert reply == {"status": "success", "session_id": "s-1"}
    failed = raw_request(
        zmq_context, running.req, b'{"command": "echo", "session_id": "s-2", "payload": "fail"}'
    )
    assert failed["status"] == "failure"
    assert failed["session_id"] == "s-2"
    assert CHIP in str(failed["payload"])
    static = raw_request(zmq_context, running.req, b'{"command": "get_static", "session_id": "s"}')
    assert static["status"] == "success"
    assert isinstance(static["payload"], dict)
    assert [s for s, _ in seen] == ["s-1", "s-2"]
    unknown = raw_request(zmq_context, running.req, b'{"command": "other", "session_id": "s"}')
    assert "expected one of echo, execute, get_dynamic, get_static, initialize, terminate" in str(
        unknown["payload"]
    )
