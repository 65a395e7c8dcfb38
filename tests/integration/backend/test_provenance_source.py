"""get_dynamic answers from the provenance store: real embedded MongoDB, real ZeroMQ sockets."""

from __future__ import annotations

import logging

import pytest
from pymongo import MongoClient

from qops.backend.provenance_source import ProvenanceCalibrationSource
from qops.backend.sources import (
    CalibrationValue,
    InMemoryCalibrationSource,
    MergedCalibrationSource,
)
from qops.mongo import Document
from qops.monitor.client import MetaClient
from qops.monitor.errors import BackendFailureError
from qops.process import free_port
from qops.provenance.repository import MongoProvenanceRepository
from tests.integration.backend.conftest import CHIP, PROJECT, Record, StartServer

QUBIT = ["qubit"]
PAIR = ["qubit1", "qubit2"]


def test_provenance_source_get_dynamic_reports_current_versions_with_labels(
    repository: MongoProvenanceRepository, record: Record, serve_source: StartServer
) -> None:
    record("Q0", {"t1": 5.1e-5, "t2_echo": 3.2e-5})
    record("Q1", {"t1": 4.4e-5})
    record("Q0-Q1", {"cz_fidelity": 0.991})
    address = serve_source(ProvenanceCalibrationSource(repository, PROJECT))

    with MetaClient(address, timeout_s=5) as client:
        payload = client.get_dynamic()

    assert payload == {
        "t1": {"__labels__": QUBIT, "q0": 5.1e-5, "q1": 4.4e-5},
        "t2_echo": {"__labels__": QUBIT, "q0": 3.2e-5},
        "cz_fidelity": {"__labels__": PAIR, "q0": {"q1": 0.991}},
        "fridge_temperature_in_mk": 8.4,
    }


def test_provenance_source_new_version_reported_by_next_get_dynamic(
    repository: MongoProvenanceRepository, record: Record, serve_source: StartServer
) -> None:
    record("Q0", {"t1": 5.1e-5})
    record("Q0-Q1", {"cz_fidelity": 0.991})
    address = serve_source(ProvenanceCalibrationSource(repository, PROJECT))

    with MetaClient(address, timeout_s=5) as client:
        first = client.get_dynamic()
        assert client.get_dynamic() == first  # served again from the cached payload
        written = record("Q0", {"t1": 6.2e-5})
        second = client.get_dynamic()
        record("Q1", {"t1": 4.0e-5})
        third = client.get_dynamic()

    assert written.versions == {"t1": 2}
    assert first["t1"] == {"__labels__": QUBIT, "q0": 5.1e-5}
    assert second["t1"] == {"__labels__": QUBIT, "q0": 6.2e-5}
    assert third["t1"] == {"__labels__": QUBIT, "q0": 6.2e-5, "q1": 4.0e-5}
    assert third["cz_fidelity"] == {"__labels__": PAIR, "q0": {"q1": 0.991}}


def test_provenance_source_retry_rewriting_version_reported_by_next_get_dynamic(
    repository: MongoProvenanceRepository, record: Record, serve_source: StartServer
) -> None:
    record("Q0", {"t1": 5.1e-5}, execution_id="run-1", task_id="task-1")
    address = serve_source(ProvenanceCalibrationSource(repository, PROJECT))

    with MetaClient(address, timeout_s=5) as client:
        first = client.get_dynamic()
        # The same task run recorded again (a Prefect retry): same version, new value.
        again = record("Q0", {"t1": 5.3e-5}, execution_id="run-1", task_id="task-1")
        second = client.get_dynamic()

    assert again.versions == {"t1": 1}
    assert first["t1"] == {"__labels__": QUBIT, "q0": 5.1e-5}
    assert second["t1"] == {"__labels__": QUBIT, "q0": 5.3e-5}


def test_provenance_source_string_and_non_finite_values_are_not_reported(
    repository: MongoProvenanceRepository,
    record: Record,
    serve_source: StartServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record(
        "Q0",
        {
            "t1": 5.1e-5,
            "readout_state": "ok",
            "t2_echo": float("nan"),
            "rabi_rate": float("inf"),
            "shots": 1024,
        },
    )
    record("Q1", {"t1": float("-inf")})
    address = serve_source(ProvenanceCalibrationSource(repository, PROJECT))

    logger = "qops.backend.provenance_source"
    with caplog.at_level(logging.DEBUG, logger=logger), MetaClient(address, timeout_s=5) as client:
        payload = client.get_dynamic()

    assert payload == {
        "t1": {"__labels__": QUBIT, "q0": 5.1e-5},
        "shots": {"__labels__": QUBIT, "q0": 1024.0},
        "fridge_temperature_in_mk": 8.4,
    }
    skipped = "\n".join(r.getMessage() for r in caplog.records)
    for name in ("readout_state of Q0", "t2_echo of Q0", "rabi_rate of Q0", "t1 of Q1"):
        assert name in skipped


def test_provenance_source_other_chip_and_project_are_not_reported(
    repository: MongoProvenanceRepository, record: Record, serve_source: StartServer
) -> None:
    record("Q0", {"t1": 5.1e-5})
    # Another chip of the project, with qids of its own.
    record("Q5", {"t1": 9.9e-5, "t2_echo": 1.0e-5}, chip_id="chip-b")
    record("Q5-Q6", {"cz_fidelity": 0.5}, chip_id="chip-b")
    record("Q0", {"t1": 8.8e-5, "t2_echo": 2.0e-5}, project_id="other-lab")
    record("Q0-Q1", {"cz_fidelity": 0.7}, project_id="other-lab")
    address = serve_source(ProvenanceCalibrationSource(repository, PROJECT))

    with MetaClient(address, timeout_s=5) as client:
        payload = client.get_dynamic()

    assert payload == {
        "t1": {"__labels__": QUBIT, "q0": 5.1e-5},
        "fridge_temperature_in_mk": 8.4,
    }


def test_provenance_source_same_qids_on_another_chip_leave_this_chips_values(
    repository: MongoProvenanceRepository, record: Record, serve_source: StartServer
) -> None:
    """Chains are per chip: calibrating chip-b's Q0 does not close this chip's Q0 (issue 12)."""
    record("Q0", {"t1": 5.1e-5, "t2_echo": 3.2e-5})
    record("Q0-Q1", {"cz_fidelity": 0.991})
    address = serve_source(ProvenanceCalibrationSource(repository, PROJECT))

    with MetaClient(address, timeout_s=5) as client:
        before = client.get_dynamic()
        other = record("Q0", {"t1": 9.9e-5, "t2_echo": 1.0e-5}, chip_id="chip-b")
        record("Q0-Q1", {"cz_fidelity": 0.5}, chip_id="chip-b")
        after = client.get_dynamic()

    assert other.versions == {"t1": 1, "t2_echo": 1}
    assert after == before
    assert after["t1"] == {"__labels__": QUBIT, "q0": 5.1e-5}
    assert after["cz_fidelity"] == {"__labels__": PAIR, "q0": {"q1": 0.991}}


def test_merged_source_provenance_values_win_and_configured_values_fill_in(
    repository: MongoProvenanceRepository, record: Record, serve_source: StartServer
) -> None:
    configured = InMemoryCalibrationSource(
        {
            CHIP: [
                CalibrationValue(parameter_name="t1", qid="Q0", value=1.0),
                CalibrationValue(parameter_name="t1", qid="Q1", value=0.988),
                CalibrationValue(parameter_name="cnot_fidelity", qid="Q1-Q0", value=0.995),
            ]
        }
    )
    record("Q0", {"t1": 5.1e-5})
    source = MergedCalibrationSource(ProvenanceCalibrationSource(repository, PROJECT), configured)
    address = serve_source(source)

    with MetaClient(address, timeout_s=5) as client:
        first = client.get_dynamic()
        record("Q1", {"t1": 4.0e-5})
        second = client.get_dynamic()

    assert first == {
        "t1": {"__labels__": QUBIT, "q0": 5.1e-5, "q1": 0.988},
        "cnot_fidelity": {"__labels__": PAIR, "q1": {"q0": 0.995}},
        "fridge_temperature_in_mk": 8.4,
    }
    assert second["t1"] == {"__labels__": QUBIT, "q0": 5.1e-5, "q1": 4.0e-5}


def test_provenance_source_store_unreachable_gets_failure_reply_naming_it(
    serve_source: StartServer,
) -> None:
    # A real client to a port nobody listens on: every read fails after 200 ms.
    unreachable: MongoClient[Document] = MongoClient(
        f"mongodb://127.0.0.1:{free_port()}/", serverSelectionTimeoutMS=200
    )
    try:
        repository = MongoProvenanceRepository(unreachable["qops"])
        address = serve_source(ProvenanceCalibrationSource(repository, PROJECT))
        with MetaClient(address, timeout_s=5, retries=1) as client:
            with pytest.raises(BackendFailureError, match="calibration values of chip 'chip-a'"):
                client.get_dynamic()
            assert client.get_static().name == "spin-2"
    finally:
        unreachable.close()
