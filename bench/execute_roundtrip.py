"""execute round trip on loopback: a 5-qubit GHZ circuit, 1 000 shots, noise on.

A ``MetaServer`` in a child process (2300 and 2200 are separate processes) over a 5-qubit
chip in a line, with in-memory calibration values for every qubit and pair (T1, T2*,
readout fidelity, CZ fidelity), so every execute runs the density-matrix simulation with
thermal relaxation, depolarisation and readout errors. The client (``JobClient``) sends
initialize once, then ``--rounds`` executes, each timed from send to parsed reply, then
terminate. The goal: p50 at most 100 ms.

Usage: .venv/bin/python bench/execute_roundtrip.py [--rounds N] [--raw-data]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import threading
import time
import uuid
from multiprocessing.connection import Connection

from qops.backend.config import BackendConfig
from qops.backend.job_client import JobClient
from qops.backend.server import MetaServer
from qops.backend.sources import CalibrationValue, InMemoryCalibrationSource
from qops.backend.state import StateMarks
from qops.protocol.messages import BackendState, new_session_id

NQUBITS = 5
SHOTS = 1_000
GHZ = (
    "version 3.0\nqubit[5] q\nbit[5] b\nH q[0]\n"
    "CNOT q[0], q[1]\nCNOT q[1], q[2]\nCNOT q[2], q[3]\nCNOT q[3], q[4]\nb = measure q"
)


class MemoryStateStore:
    """A state store for the benchmark: leases in memory (no MongoDB round trips)."""

    def __init__(self) -> None:
        self._leases: dict[str, BackendState] = {}
        self._lock = threading.Lock()

    def marks(self, chip_id: str) -> StateMarks:
        with self._lock:
            return StateMarks(offline=False, leases=tuple(self._leases.values()))

    def set_offline(self, chip_id: str, offline: bool, reason: str = "") -> None:
        raise NotImplementedError

    def acquire(
        self,
        chip_id: str,
        state: BackendState,
        holder: str,
        lease_s: float,
        exclusive: bool = False,
    ) -> str:
        lease_id = uuid.uuid4().hex
        with self._lock:
            self._leases[lease_id] = state
        return lease_id

    def renew(self, chip_id: str, lease_id: str, lease_s: float) -> bool:
        return lease_id in self._leases

    def release(self, chip_id: str, lease_id: str) -> None:
        with self._lock:
            self._leases.pop(lease_id, None)


def calibration() -> list[CalibrationValue]:
    values = []
    for q in range(NQUBITS):
        values += [
            CalibrationValue(parameter_name="t1", qid=f"Q{q}", value=30e-6 + q * 1e-6),
            CalibrationValue(parameter_name="t2_star", qid=f"Q{q}", value=20e-6),
            CalibrationValue(parameter_name="readout_fidelity", qid=f"Q{q}", value=0.96),
        ]
    for q in range(NQUBITS - 1):
        pair = f"Q{q}-Q{q + 1}"
        values.append(CalibrationValue(parameter_name="cz_fidelity", qid=pair, value=0.98))
    return values


def serve(pipe: Connection) -> None:
    """Child process: the 2300 until told to stop."""
    config = BackendConfig(
        name="bench",
        nqubits=NQUBITS,
        topology=[(q, q + 1) for q in range(NQUBITS - 1)],
        supports_raw_data=True,
        heartbeat_s=1,
    )
    source = InMemoryCalibrationSource({"bench": calibration()})
    server = MetaServer(
        config, source, MemoryStateStore(), "tcp://127.0.0.1:*", "tcp://127.0.0.1:*"
    )
    pipe.send(server.req_endpoint)
    threading.Thread(target=lambda: (pipe.recv(), server.stop()), daemon=True).start()
    server.serve()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--raw-data", action="store_true", help="ask for every shot as well")
    args = parser.parse_args()

    ours, theirs = multiprocessing.Pipe()
    # Not a daemon: the server starts its own simulation process.
    child = multiprocessing.Process(target=serve, args=(theirs,))
    child.start()
    address = ours.recv()
    session = new_session_id()
    times: list[float] = []
    try:
        with JobClient(address, timeout_s=30) as client:
            client.initialize(session)
            for job in range(args.warmup + args.rounds):
                started = time.perf_counter()
                payload = client.execute(session, job, GHZ, SHOTS, include_raw_data=args.raw_data)
                elapsed = time.perf_counter() - started
                results = payload["results"]
                assert isinstance(results, dict)
                assert sum(int(n) for n in results.values()) == SHOTS
                if job >= args.warmup:
                    times.append(elapsed)
            client.terminate(session)
    finally:
        ours.send("stop")
        child.join(timeout=10)
    times.sort()
    ms = [t * 1000 for t in times]
    p95 = ms[int(0.95 * (len(ms) - 1))]
    top = sorted(results.items(), key=lambda kv: -int(kv[1]))[:3]
    print(
        f"execute GHZ-5, {SHOTS} shots, noise on{', raw data' if args.raw_data else ''}: "
        f"{len(ms)} rounds, p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, "
        f"max {ms[-1]:.1f} ms; last counts (top 3) {top}"
    )


if __name__ == "__main__":
    main()
