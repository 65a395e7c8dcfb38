"""get_dynamic from the provenance store: what the version stamp saves per request.

A chip with 1 000 current parameter versions (200 qubits x 5 parameters) in a fresh embedded
MongoDB (temporary data directory). A MetaServer in a thread answers MetaClient's get_dynamic
over loopback from three sources, measured interleaved in blocks within one run:

- ``in-memory``: the same values held in memory (the floor without a database);
- ``provenance``: ProvenanceCalibrationSource; the calibration does not change, so each
  request costs the stamp aggregation and the cached reply is reused;
- ``provenance, no stamp``: the same source with no stamp (``parameters_version`` None), so each
  request reads all versions and builds, checks and encodes the payload: what a request
  right after a calibration change costs.

Usage: .venv/bin/python bench/calibration_source.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from pymongo import MongoClient

from qops.backend.config import BackendConfig
from qops.backend.provenance_source import ProvenanceCalibrationSource
from qops.backend.server import MetaServer
from qops.backend.sources import CalibrationSource, CalibrationValue, InMemoryCalibrationSource
from qops.backend.state import StateMarks
from qops.mongo import Document, EmbeddedMongo
from qops.monitor.client import MetaClient
from qops.protocol.messages import Command
from qops.provenance.models import ActivityStatus, Agent, AgentType, Measured, TaskRecord
from qops.provenance.repository import MongoProvenanceRepository
from qops.timeutil import utc_now

PROJECT = "bench"
CHIP = "bench"
PARAMETERS = ("t1", "t2_star", "readout_fidelity", "x_fidelity", "frequency_hz")
QUBITS = 200


class AlwaysIdle:
    """State marks for the benchmark: never offline, never calibrating."""

    def marks(self, chip_id: str) -> StateMarks:
        return StateMarks(offline=False, leases=())


class Unstamped:
    """A source without a stamp (``parameters_version`` is None): every request rebuilds."""

    def __init__(self, source: CalibrationSource) -> None:
        self.source = source

    def current_parameters(self, chip_id: str) -> list[CalibrationValue]:
        return self.source.current_parameters(chip_id)

    def parameters_version(self, chip_id: str) -> Hashable:
        return None


def record_chip(repository: MongoProvenanceRepository) -> None:
    """One completed task run per qubit, writing the five parameters."""
    now = utc_now()
    for q in range(QUBITS):
        repository.record(
            TaskRecord(
                project_id=PROJECT,
                chip_id=CHIP,
                execution_id="bench-run",
                task_id=f"task-q{q}",
                task_name="characterise",
                qid=f"Q{q}",
                started_at=now - timedelta(seconds=1),
                ended_at=now,
                status=ActivityStatus.COMPLETED,
                agent=Agent(agent_type=AgentType.SYSTEM, name="bench"),
                outputs={
                    name: Measured(value=0.9 + q * 1e-6 + i * 1e-3)
                    for i, name in enumerate(PARAMETERS)
                },
            )
        )


@contextmanager
def serving(source: CalibrationSource) -> Iterator[MetaClient]:
    config = BackendConfig(name="bench", chip_id=CHIP, nqubits=QUBITS, heartbeat_s=60)
    server = MetaServer(config, source, AlwaysIdle(), "tcp://127.0.0.1:*", "tcp://127.0.0.1:*")  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    client = MetaClient(server.req_endpoint, timeout_s=10, retries=1)
    try:
        yield client
    finally:
        client.close()
        server.stop()
        thread.join(timeout=5)
        server.close()


def time_requests(client: MetaClient, rounds: int) -> list[float]:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        client.request(Command.GET_DYNAMIC)
        timings.append(time.perf_counter() - start)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000, help="requests per source")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qops-bench-") as tmp:
        embedded = EmbeddedMongo(Path(tmp))
        mongo = embedded.ensure_running()
        client: MongoClient[Document] = MongoClient(mongo.url, tz_aware=True)
        try:
            repository = MongoProvenanceRepository(client.bench)
            repository.ensure_indexes()
            record_chip(repository)
            provenance = ProvenanceCalibrationSource(repository, PROJECT)
            sources: dict[str, CalibrationSource] = {
                "in-memory": InMemoryCalibrationSource({CHIP: provenance.current_parameters(CHIP)}),
                "provenance": provenance,
                "provenance, no stamp": Unstamped(provenance),
            }
            with (
                serving(sources["in-memory"]) as memory,
                serving(sources["provenance"]) as stamped,
                serving(sources["provenance, no stamp"]) as unstamped,
            ):
                clients = {"in-memory": memory, "provenance": stamped}
                clients["provenance, no stamp"] = unstamped
                payloads = [c.get_dynamic() for c in clients.values()]
                assert payloads[0] == payloads[1] == payloads[2]
                timings: dict[str, list[float]] = {name: [] for name in clients}
                for _ in range(10):
                    for name, meta in clients.items():
                        timings[name] += time_requests(meta, args.rounds // 10)
        finally:
            client.close()
            embedded.stop()
    floor = statistics.median(timings["in-memory"])
    print("| source | get_dynamic p50 (µs) | p99 (µs) | p50 / in-memory |")
    print("|---|---:|---:|---:|")
    for name, seconds in timings.items():
        ordered = sorted(seconds)
        p50 = statistics.median(ordered)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(f"| {name} | {p50 * 1e6:,.0f} | {p99 * 1e6:,.0f} | {p50 / floor:.1f} |")


if __name__ == "__main__":
    main()
