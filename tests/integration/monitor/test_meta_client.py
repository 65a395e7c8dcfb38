"""The 2200 REQ client against misbehaving peers: down, wrong session, slow."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import zmq

from qops.monitor.client import MetaClient
from qops.monitor.errors import BackendFailureError, BackendUnreachableError
from qops.process import free_port
from tests.meta_support import ServerFactory

Context = zmq.Context[zmq.Socket[bytes]]
Responder = Callable[[int, dict[str, object]], tuple[float, dict[str, object]]]
"""Given the request number and request, return (delay in s, reply)."""


def ok_reply(request: dict[str, object]) -> dict[str, object]:
    return {"status": "success", "session_id": request["session_id"], "payload": {"x": 1.0}}


@pytest.fixture
def fake_2300(zmq_context: Context) -> Iterator[Callable[[Responder], str]]:
    """A hand-driven REP peer; replies as the responder says."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(responder: Responder) -> str:
        sock = zmq_context.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        port = sock.bind_to_random_port("tcp://127.0.0.1")

        def serve() -> None:
            count = 0
            try:
                while not stop.is_set():
                    if not sock.poll(50):
                        continue
                    request = json.loads(sock.recv())
                    count += 1
                    delay, reply = responder(count, request)
                    if stop.wait(delay):
                        return
                    sock.send(json.dumps(reply).encode())
            finally:
                sock.close(linger=0)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return f"tcp://127.0.0.1:{port}"

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=5)


def test_meta_client_backend_down_raises_after_bounded_retries() -> None:
    client = MetaClient(f"tcp://127.0.0.1:{free_port()}", timeout_s=0.2, retries=3)
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnreachableError, match="after 3 attempt"):
            client.get_static()
    finally:
        client.close()
    assert time.monotonic() - started < 2.0


def test_meta_client_reply_for_other_session_is_not_accepted(
    fake_2300: Callable[[Responder], str],
) -> None:
    other = "00000000-0000-4000-8000-000000000000"
    address = fake_2300(
        lambda n, req: (0.0, {"status": "success", "session_id": other, "payload": {}})
    )
    with (
        MetaClient(address, timeout_s=0.5, retries=2) as client,
        pytest.raises(BackendUnreachableError, match="is not the request's"),
    ):
        client.get_dynamic()


def test_meta_client_slow_reply_after_timeout_is_retried_and_late_reply_ignored(
    fake_2300: Callable[[Responder], str],
) -> None:
    # The first request is answered after the timeout; the retry is answered at once.
    address = fake_2300(lambda n, req: (0.6 if n == 1 else 0.0, ok_reply(req)))
    with MetaClient(address, timeout_s=0.3, retries=3) as client:
        assert client.get_dynamic() == {"x": 1.0}
        assert client.get_dynamic() == {"x": 1.0}  # no stale reply in between


def test_meta_client_failure_reply_schema_checked_and_raised(
    fake_2300: Callable[[Responder], str],
) -> None:
    address = fake_2300(
        lambda n, req: (
            0.0,
            {"status": "failure", "session_id": req["session_id"], "payload": {"error_msg": "no"}},
        )
    )
    with (
        MetaClient(address, timeout_s=0.5, retries=1) as client,
        pytest.raises(BackendFailureError, match="refused get_static: no"),
    ):
        client.get_static()


def test_meta_client_invalid_static_reply_is_refused(
    fake_2300: Callable[[Responder], str],
) -> None:
    address = fake_2300(
        lambda n, req: (
            0.0,
            {"status": "success", "session_id": req["session_id"], "payload": {"nqubits": 2}},
        )
    )
    with (
        MetaClient(address, timeout_s=0.5, retries=1) as client,
        pytest.raises(BackendUnreachableError, match="protocol_version"),
    ):
        client.get_static()


def test_meta_client_server_restart_mid_run_is_survived(start_server: ServerFactory) -> None:
    port = free_port()
    first = start_server(req=f"tcp://127.0.0.1:{port}")
    with MetaClient(first.req, timeout_s=0.3, retries=20) as client:
        before = client.get_static().starttime
        first.stop()
        second = start_server(req=f"tcp://127.0.0.1:{port}")
        assert second.req == first.req
        after = client.get_static().starttime
    assert after > before
