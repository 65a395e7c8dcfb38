"""get_dynamic round trip on loopback against a bare pyzmq REQ/REP echo of the same bytes.

For payloads of 10, 1 000 and 10 000 samples: p50 and p99 of a full get_dynamic through
MetaClient and MetaServer (schema validation of every message on both sides, the payload
built from an in-memory calibration source), next to a bare REQ/REP exchange that sends the
same request bytes and gets the same reply bytes back without any processing. A third
column is the server as ``qops backend serve`` runs it, reading the calibration source on a
worker thread (``calibration_timeout_s``). Every server runs in a child process (2300 and
2200 are separate processes), and the measurements are interleaved in blocks within one run
so all see the same machine load. Then the time to check one success reply against the
get_dynamic schema: ``jsonschema_rs`` (what qops uses) and ``jsonschema``.

Usage: .venv/bin/python bench/meta_roundtrip.py [--rounds N]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import statistics
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import orjson
import zmq

from qops.backend.config import BackendConfig
from qops.backend.server import MetaServer
from qops.backend.sources import CalibrationValue, InMemoryCalibrationSource
from qops.backend.state import StateMarks
from qops.monitor.client import MetaClient
from qops.protocol.messages import Command, Request, new_session_id
from qops.protocol.schemas import encode, protocol_schemas

PARAMETERS = ("t1", "t2_star", "readout_fidelity", "x_fidelity", "frequency_hz")
SIZES = (10, 1_000, 10_000)


class AlwaysIdle:
    """A state store for the benchmark: never offline, never calibrating."""

    def marks(self, chip_id: str) -> StateMarks:
        return StateMarks(offline=False, leases=())

    def set_offline(self, chip_id: str, offline: bool, reason: str = "") -> None:
        raise NotImplementedError

    def acquire(self, chip_id: str, state: object, holder: str, lease_s: float) -> str:
        raise NotImplementedError

    def renew(self, chip_id: str, lease_id: str, lease_s: float) -> bool:
        raise NotImplementedError

    def release(self, chip_id: str, lease_id: str) -> None:
        raise NotImplementedError


def values_for(samples: int) -> list[CalibrationValue]:
    """``samples`` per-qubit calibration values (five parameters per qubit)."""
    qubits = max(1, -(-samples // len(PARAMETERS)))
    return [
        CalibrationValue(parameter_name=name, qid=f"Q{q}", value=0.9 + q * 1e-6 + i * 1e-3)
        for q in range(qubits)
        for i, name in enumerate(PARAMETERS)
    ][:samples]


def serve_meta(samples: int, pipe: Connection, off_loop: bool = False) -> None:
    """Child process: a meta server for ``samples`` samples until told to stop."""
    config = BackendConfig(name="bench", nqubits=samples, heartbeat_s=60)
    source = InMemoryCalibrationSource({"bench": values_for(samples)})
    server = MetaServer(
        config,
        source,
        AlwaysIdle(),
        "tcp://127.0.0.1:*",
        "tcp://127.0.0.1:*",
        calibration_timeout_s=1.0 if off_loop else None,
    )
    pipe.send(server.req_endpoint)
    import threading

    threading.Thread(target=lambda: (pipe.recv(), server.stop()), daemon=True).start()
    server.serve()
    server.close()


def serve_echo(reply: bytes, pipe: Connection) -> None:
    """Child process: answers every request with ``reply`` until told to stop."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    rep = context.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    port = rep.bind_to_random_port("tcp://127.0.0.1")
    pipe.send(f"tcp://127.0.0.1:{port}")
    while not pipe.poll():
        if rep.poll(50):
            rep.recv()
            rep.send(reply)
    rep.close()
    context.term()


def percentiles(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e6, p99 * 1e6


def time_meta(client: MetaClient, rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        client.request(Command.GET_DYNAMIC)
        timings.append(time.perf_counter() - start)
    return timings


def time_echo(sock: zmq.Socket[bytes], request: bytes, rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        sock.send(request)
        sock.recv()
        timings.append(time.perf_counter() - start)
    return timings


def time_parse(reply: bytes, rounds: int) -> list[float]:
    """The share no transport can avoid: turning the reply bytes into Python objects."""
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        orjson.loads(reply)
        timings.append(time.perf_counter() - start)
    return timings


def time_check(message: object, check: Callable[[object], bool], rounds: int) -> float:
    """Median seconds of one schema check of ``message``."""
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        assert check(message)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000, help="round trips per measurement")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    header = "| samples | reply bytes | get_dynamic p50 / p99 (µs) | echo p50 / p99 (µs) |"
    print(
        header + " ratio p50 | ratio p99 | parsing the reply p50 (µs) | off-loop p50 / p99 (µs) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    checks: list[str] = []
    schemas = protocol_schemas()
    name = "get_dynamic/reply_success"
    for samples in SIZES:
        rounds = args.rounds if samples < 10_000 else max(100, args.rounds // 5)
        meta_pipe, meta_child = spawn.Pipe()
        meta_process = spawn.Process(target=serve_meta, args=(samples, meta_child))
        meta_process.start()
        client = MetaClient(str(meta_pipe.recv()), timeout_s=10, retries=1, context=context)
        off_pipe, off_child = spawn.Pipe()
        off_process = spawn.Process(target=serve_meta, args=(samples, off_child, True))
        off_process.start()
        off_client = MetaClient(str(off_pipe.recv()), timeout_s=10, retries=1, context=context)
        payload = client.get_dynamic()
        leaves = sum(len(v) - 1 if isinstance(v, dict) else 1 for v in payload.values())
        assert leaves == samples, (leaves, samples)
        request = encode(
            Request(command=Command.GET_DYNAMIC, session_id=new_session_id()).to_wire()
        )
        reply = encode({"status": "success", "session_id": new_session_id(), "payload": payload})
        echo_pipe, echo_child = spawn.Pipe()
        echo_process = spawn.Process(target=serve_echo, args=(reply, echo_child))
        echo_process.start()
        echo = context.socket(zmq.REQ)
        echo.setsockopt(zmq.LINGER, 0)
        echo.connect(str(echo_pipe.recv()))
        time_meta(client, 50)
        time_meta(off_client, 50)
        time_echo(echo, request, 50)
        meta_times: list[float] = []
        off_times: list[float] = []
        echo_times: list[float] = []
        for _ in range(10):
            meta_times += time_meta(client, rounds // 10)
            off_times += time_meta(off_client, rounds // 10)
            echo_times += time_echo(echo, request, rounds // 10)
        client.close()
        off_client.close()
        echo.close()
        for pipe, process in (
            (meta_pipe, meta_process),
            (off_pipe, off_process),
            (echo_pipe, echo_process),
        ):
            pipe.send("stop")
            process.join(timeout=10)
        m50, m99 = percentiles(meta_times)
        o50, o99 = percentiles(off_times)
        e50, e99 = percentiles(echo_times)
        p50, _ = percentiles(time_parse(reply, 200))
        print(
            f"| {samples:,} | {len(reply):,} | {m50:,.0f} / {m99:,.0f} | {e50:,.0f} / {e99:,.0f} "
            f"| {m50 / e50:.2f} | {m99 / e99:.2f} | {p50:,.0f} | {o50:,.0f} / {o99:,.0f} |"
        )
        message = orjson.loads(reply)
        check_rounds = 2000 if samples < 10_000 else 200
        fast = time_check(message, functools.partial(schemas.fast_is_valid, name), check_rounds)
        reference = time_check(message, functools.partial(schemas.reference_is_valid, name), 200)
        checks.append(f"| {samples:,} | {fast * 1e6:,.1f} | {reference * 1e6:,.1f} |")
    print()
    print("| samples | check of the reply: jsonschema_rs (µs) | jsonschema (µs) |")
    print("|---:|---:|---:|")
    print("\n".join(checks))
    context.term()


if __name__ == "__main__":
    main()
