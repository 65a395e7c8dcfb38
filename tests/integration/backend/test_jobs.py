"""initialize, execute and terminate over real sockets: replies, EXECUTING, the lease interplay.

Servers run in threads on loopback ports over the embedded MongoDB (the state store); the
calibration values come from memory or, in the last test, from the provenance store that
get_dynamic reads.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import zmq
from pymongo.database import Database

from qops.backend.errors import ChipInUseError
from qops.backend.job_client import JobClient, JobFailedError
from qops.backend.locking import chip_locked
from qops.backend.provenance_source import ProvenanceCalibrationSource
from qops.backend.server import MetaServer
from qops.backend.sources import CalibrationValue
from qops.backend.state import MongoBackendStateStore
from qops.mongo import Document
from qops.protocol.messages import BackendState, new_session_id
from qops.provenance.repository import MongoProvenanceRepository
from qops.simulation.worker import SimulationWorker
from tests.integration.backend.conftest import PROJECT, Record
from tests.meta_support import CHIP, RunningServer, make_config, raw_request, wait_for

Context = zmq.Context[zmq.Socket[bytes]]

X_MEASURE = "version 3.0\nqubit[1] q\nbit[1] b\nX q[0]\nb[0] = measure q[0]"
VALIDATOR_CIRCUIT = "version 1.0\nqubit[1] q\nbit[1] b\nX q[0]\nb[0] = measure q[0]"
SHOTS = 2000


def readout(fidelity: float) -> list[CalibrationValue]:
    return [CalibrationValue(parameter_name="readout_fidelity", qid="Q0", value=fidelity)]


def within_six_sigma(observed: int, p: float, n: int = SHOTS) -> bool:
    sigma = (n * p * (1 - p)) ** 0.5
    return abs(observed - n * p) <= 6 * sigma


JobServerFactory = Callable[..., RunningServer]


@pytest.fixture(scope="module")
def simulation() -> Iterator[SimulationWorker]:
    """One simulation process for the module's servers (each would otherwise start its own)."""
    worker = SimulationWorker()
    yield worker
    worker.close()


@pytest.fixture
def job_server(
    start_server: Callable[..., RunningServer], simulation: SimulationWorker
) -> JobServerFactory:
    """Start servers with configuration overrides and in-memory calibration values."""

    def start(values: list[CalibrationValue] | None = None, **overrides: object) -> RunningServer:
        return start_server(
            config=make_config(**overrides), values=values or [], simulation=simulation
        )

    return start


@pytest.fixture
def client(zmq_context: Context) -> Callable[[RunningServer], JobClient]:
    def make(running: RunningServer) -> JobClient:
        return JobClient(running.req, timeout_s=10, context=zmq_context)

    return make


def raw(context: Context, address: str, message: dict[str, object]) -> dict[str, object]:
    """Send one JSON request on a fresh REQ socket; return the decoded reply."""
    return raw_request(context, address, json.dumps(message).encode(), timeout_s=10)


class StateWatcher:
    """Subscribes to a server's publish_state and keeps every state seen, in order."""

    def __init__(self, context: Context, address: str) -> None:
        self.states: list[str] = []
        self._sock = context.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.subscribe(b"")
        self._sock.connect(address)

    def wait_for(self, state: str, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._sock.poll(50):
                message = json.loads(self._sock.recv())
                self.states.append(message["payload"]["state"])
                if self.states[-1] == state:
                    return
        pytest.fail(f"no {state} published within {timeout_s} s; seen {self.states}")

    def close(self) -> None:
        self._sock.close()


def test_jobs_happy_flow_replies_as_the_spec_and_publishes_executing(
    job_server: JobServerFactory, zmq_context: Context
) -> None:
    running = job_server()
    watcher = StateWatcher(zmq_context, running.pub)
    try:
        watcher.wait_for("IDLE")
        session = new_session_id()
        reply = raw(zmq_context, running.req, {"session_id": session, "command": "initialize"})
        assert reply == {"status": "success", "session_id": session}
        watcher.wait_for("EXECUTING", timeout_s=1.0)  # published at once, not a poll later

        request = {
            "session_id": session,
            "command": "execute",
            "payload": {"job_id": 7, "circuit": VALIDATOR_CIRCUIT, "number_of_shots": 10},
        }
        reply = raw(zmq_context, running.req, request)
        assert reply == {
            "status": "success",
            "session_id": session,
            "payload": {"job_id": 7, "results": {"1": 10}, "raw_data": []},
        }
        assert running.server.state is BackendState.EXECUTING

        reply = raw(zmq_context, running.req, {"session_id": session, "command": "terminate"})
        assert reply == {"status": "success", "session_id": session}
        watcher.wait_for("IDLE", timeout_s=1.0)
    finally:
        watcher.close()


def test_jobs_execute_without_initialize_is_refused(
    job_server: JobServerFactory, zmq_context: Context
) -> None:
    running = job_server()
    session = new_session_id()
    request = {
        "session_id": session,
        "command": "execute",
        "payload": {"job_id": 1, "circuit": X_MEASURE, "number_of_shots": 10},
    }
    reply = raw(zmq_context, running.req, request)
    assert reply["status"] == "failure"
    assert reply["session_id"] == session
    payload = reply["payload"]
    assert isinstance(payload, dict)
    assert f"session {session} is not initialized (send initialize first)" in payload["error_msg"]


def test_jobs_other_session_is_refused_while_one_is_initialized(
    job_server: JobServerFactory, client: Callable[[RunningServer], JobClient]
) -> None:
    running = job_server()
    first, second = new_session_id(), new_session_id()
    with client(running) as jobs:
        jobs.initialize(first)
        jobs.initialize(first)  # a retried initialize of the open session succeeds
        with pytest.raises(JobFailedError, match=f"initialized for session {first}"):
            jobs.initialize(second)
        with pytest.raises(JobFailedError, match=f"initialized for session {first}"):
            jobs.execute(second, 1, X_MEASURE, 10)
        with pytest.raises(JobFailedError, match=f"session {second} is not initialized"):
            jobs.terminate(second)
        jobs.terminate(first)
        jobs.terminate(first)  # a retried terminate succeeds
        jobs.initialize(second)
        jobs.terminate(second)


def test_jobs_bad_requests_get_failures_naming_the_problem(
    job_server: JobServerFactory, client: Callable[[RunningServer], JobClient], zmq_context: Context
) -> None:
    running = job_server(execution={"max_shots": 1000})
    session = new_session_id()
    with client(running) as jobs:
        jobs.initialize(session)
        with pytest.raises(JobFailedError, match="job 3: circuit: does not parse"):
            jobs.execute(session, 3, "version 3.0\nqubit[1] q\nfoo q[0]", 10)
        with pytest.raises(JobFailedError, match="uses 3 qubits; the chip has 2"):
            jobs.execute(session, 4, "version 3.0\nqubit[3] q\nX q[2]", 10)
        with pytest.raises(JobFailedError, match="2000 shots exceed the limit of 1000"):
            jobs.execute(session, 5, X_MEASURE, 2000)
        # The session survives refused jobs.
        assert jobs.execute(session, 6, X_MEASURE, 10)["results"] == {"1": 10}
        jobs.terminate(session)
    no_shots = {
        "session_id": session,
        "command": "execute",
        "payload": {"job_id": 1, "circuit": X_MEASURE, "number_of_shots": 0},
    }
    reply = raw(zmq_context, running.req, no_shots)
    assert reply["status"] == "failure"
    assert "number_of_shots" in str(reply["payload"])


def test_jobs_raw_data_only_when_asked_and_supported(
    job_server: JobServerFactory, client: Callable[[RunningServer], JobClient]
) -> None:
    supported = job_server(readout(0.8), supports_raw_data=True)
    unsupported = job_server(readout(0.8), supports_raw_data=False)
    session = new_session_id()
    with client(supported) as jobs:
        jobs.initialize(session)
        payload = jobs.execute(session, 1, X_MEASURE, 300, include_raw_data=True)
        shots = payload["raw_data"]
        assert isinstance(shots, list)
        assert len(shots) == 300
        assert {s: shots.count(s) for s in set(shots)} == payload["results"]
        assert jobs.execute(session, 2, X_MEASURE, 300)["raw_data"] == []
        jobs.terminate(session)
    with client(unsupported) as jobs:
        jobs.initialize(session)
        assert jobs.execute(session, 3, X_MEASURE, 300, include_raw_data=True)["raw_data"] == []
        jobs.terminate(session)


def test_jobs_counts_follow_the_current_calibration(
    job_server: JobServerFactory, client: Callable[[RunningServer], JobClient]
) -> None:
    running = job_server(readout(0.9))
    session = new_session_id()
    with client(running) as jobs:
        jobs.initialize(session)
        results = jobs.execute(session, 1, X_MEASURE, SHOTS)["results"]
        assert isinstance(results, dict)
        assert within_six_sigma(results.get("0", 0), 0.1), results
        running.calibration.set_parameters(CHIP, readout(0.7))  # a recalibration
        results = jobs.execute(session, 2, X_MEASURE, SHOTS)["results"]
        assert isinstance(results, dict)
        assert within_six_sigma(results.get("0", 0), 0.3), results
        jobs.terminate(session)


def test_jobs_initialize_is_refused_while_a_calibration_runs(
    job_server: JobServerFactory,
    client: Callable[[RunningServer], JobClient],
    mongo_db: Database[Document],
) -> None:
    running = job_server()
    session = new_session_id()
    store = MongoBackendStateStore(mongo_db)
    with client(running) as jobs:
        with (
            chip_locked(store, CHIP, BackendState.CALIBRATING, holder="flow-run-1"),
            pytest.raises(JobFailedError, match=r"it is CALIBRATING \(a calibration runs"),
        ):
            jobs.initialize(session)
        jobs.initialize(session)
        jobs.terminate(session)


def test_jobs_initialize_is_refused_while_offline(
    job_server: JobServerFactory,
    client: Callable[[RunningServer], JobClient],
    mongo_db: Database[Document],
) -> None:
    running = job_server()
    store = MongoBackendStateStore(mongo_db)
    store.set_offline(CHIP, True, "maintenance")
    try:
        with client(running) as jobs, pytest.raises(JobFailedError, match="it is OFFLINE"):
            jobs.initialize(new_session_id())
    finally:
        store.set_offline(CHIP, False)


def test_jobs_calibration_waits_for_terminate_or_fails_naming_the_session(
    job_server: JobServerFactory,
    client: Callable[[RunningServer], JobClient],
    mongo_db: Database[Document],
) -> None:
    running = job_server()
    session = new_session_id()
    store = MongoBackendStateStore(mongo_db)
    with client(running) as jobs:
        jobs.initialize(session)
        with (
            pytest.raises(ChipInUseError, match=r"it is EXECUTING \(a 2200 session is initialized"),
            chip_locked(store, CHIP, BackendState.CALIBRATING, holder="flow-run-2"),
        ):
            pass
        assert BackendState.CALIBRATING not in store.marks(CHIP).leases  # backed off

        terminated = threading.Timer(0.5, jobs.terminate, args=(session,))
        started = time.monotonic()
        terminated.start()
        try:
            with chip_locked(store, CHIP, BackendState.CALIBRATING, "flow-run-3", wait_s=10):
                waited = time.monotonic() - started
                assert store.marks(CHIP).leases == (BackendState.CALIBRATING,)
        finally:
            terminated.join()
        assert 0.4 < waited < 10


def test_jobs_idle_session_times_out_and_frees_the_chip(
    job_server: JobServerFactory,
    client: Callable[[RunningServer], JobClient],
    mongo_db: Database[Document],
) -> None:
    running = job_server(execution={"session_timeout_s": 0.5})
    session = new_session_id()
    store = MongoBackendStateStore(mongo_db)
    with client(running) as jobs:
        jobs.initialize(session)
        assert store.marks(CHIP).leases == (BackendState.EXECUTING,)
        wait_for(lambda: not store.marks(CHIP).leases, 5, "the idle session to time out")
        wait_for(lambda: running.server.state is BackendState.IDLE, 5, "IDLE")
        with pytest.raises(JobFailedError, match="not initialized"):
            jobs.execute(session, 1, X_MEASURE, 10)


def test_jobs_server_shutdown_releases_the_lease(
    job_server: JobServerFactory,
    client: Callable[[RunningServer], JobClient],
    mongo_db: Database[Document],
) -> None:
    running = job_server()
    with client(running) as jobs:
        jobs.initialize(new_session_id())
    store = MongoBackendStateStore(mongo_db)
    assert store.marks(CHIP).leases == (BackendState.EXECUTING,)
    running.stop()
    assert store.marks(CHIP).leases == ()


def test_jobs_noise_follows_the_provenance_versions_get_dynamic_serves(
    mongo_db: Database[Document],
    repository: MongoProvenanceRepository,
    record: Record,
    zmq_context: Context,
) -> None:
    record("Q0", {"readout_fidelity": 0.9})
    source = ProvenanceCalibrationSource(repository, PROJECT)
    server = MetaServer(
        make_config(project_id=PROJECT),
        source,
        MongoBackendStateStore(mongo_db),
        "tcp://127.0.0.1:*",
        "tcp://127.0.0.1:*",
    )
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    session = new_session_id()
    try:
        with JobClient(server.req_endpoint, context=zmq_context) as jobs:
            jobs.initialize(session)
            first = jobs.execute(session, 1, X_MEASURE, SHOTS)["results"]
            record("Q0", {"readout_fidelity": 0.6})  # version 2, as a recalibration writes
            second = jobs.execute(session, 2, X_MEASURE, SHOTS)["results"]
            jobs.terminate(session)
    finally:
        server.stop()
        thread.join(timeout=5)
        server.close()
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert within_six_sigma(first.get("0", 0), 0.1), first
    assert within_six_sigma(second.get("0", 0), 0.4), second


def test_jobs_heartbeat_goes_on_during_a_long_execute(
    job_server: JobServerFactory, zmq_context: Context
) -> None:
    # A mid-circuit measurement makes Aer simulate shot by shot: seconds for 10 000 shots.
    circuit = (
        "version 3.0\nqubit[5] q\nbit[5] b\nH q[0]\nb[0] = measure q[0]\nCNOT q[0], q[1]\n"
        "CNOT q[1], q[2]\nCNOT q[2], q[3]\nCNOT q[3], q[4]\nb = measure q"
    )
    line = [(0, 1), (1, 2), (2, 3), (3, 4)]
    running = job_server(readout(0.95), nqubits=5, topology=line)
    sub = zmq_context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.subscribe(b"")
    sub.connect(running.pub)
    session = new_session_id()
    # A long timeout: the job takes seconds, more on a loaded machine.
    with JobClient(running.req, timeout_s=120, context=zmq_context) as jobs:
        jobs.initialize(session)
        wait_for(lambda: sub.poll(50) != 0, 5, "a heartbeat")
        done = threading.Event()
        worker = threading.Thread(
            target=lambda: (jobs.execute(session, 1, circuit, 10_000), done.set()), daemon=True
        )
        started = time.monotonic()
        worker.start()
        beats: list[float] = [started]
        while not done.is_set() and time.monotonic() - started < 120:
            if sub.poll(20):
                sub.recv()
                beats.append(time.monotonic())
        worker.join(timeout=5)
        took = time.monotonic() - started
        jobs.terminate(session)
    sub.close()
    assert done.is_set(), "the execute did not finish"
    assert took > 1.0, f"the job took {took:.2f} s: too short to show a stalled heartbeat"
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert max(gaps) < 1.0, f"heartbeats {max(gaps):.2f} s apart during a {took:.2f} s job"
