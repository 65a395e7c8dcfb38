"""Simulating in a child process: same results as in-process, and the caller keeps running."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from qops.simulation.cqasm import parse_circuit
from qops.simulation.noise import ChipNoise, QubitNoise
from qops.simulation.worker import SimulationWorker

X_MEASURE = "version 3.0\nqubit[1] q\nbit[1] b\nX q[0]\nb[0] = measure q[0]"
MID_CIRCUIT = (
    "version 3.0\nqubit[5] q\nbit[5] b\nH q[0]\nb[0] = measure q[0]\nCNOT q[0], q[1]\n"
    "CNOT q[1], q[2]\nCNOT q[2], q[3]\nCNOT q[3], q[4]\nb = measure q"
)
NOISE = ChipNoise(qubits={0: QubitNoise(readout_fidelity=0.8)})


@pytest.fixture
def worker() -> Iterator[SimulationWorker]:
    simulation = SimulationWorker(seed=4)
    yield simulation
    simulation.close()


def test_worker_runs_in_a_child_with_noise_and_raw_data(worker: SimulationWorker) -> None:
    result = worker.run(parse_circuit(X_MEASURE, 5), 400, NOISE, raw_data=True)
    assert result.raw_data is not None
    assert len(result.raw_data) == 400
    assert {s: result.raw_data.count(s) for s in set(result.raw_data)} == result.counts
    assert 0 < result.counts["0"] < 400


def test_worker_same_seed_repeats_runs(worker: SimulationWorker) -> None:
    other = SimulationWorker(seed=4)
    try:
        program = parse_circuit(X_MEASURE, 5)
        assert worker.run(program, 300, NOISE).counts == other.run(program, 300, NOISE).counts
    finally:
        other.close()


def test_worker_caller_keeps_running_during_a_long_simulation(worker: SimulationWorker) -> None:
    # Aer holds the GIL while it simulates; in a child process it cannot stop the caller.
    calls: list[float] = []
    started = time.monotonic()
    worker.run(
        parse_circuit(MID_CIRCUIT, 5),
        10_000,
        NOISE,
        while_waiting=lambda: calls.append(time.monotonic()),
    )
    took = time.monotonic() - started
    assert took > 0.5, f"{took:.2f} s: too short to tell"
    beats = [started, *calls]
    assert max(b - a for a, b in itertools.pairwise(beats)) < 0.5
