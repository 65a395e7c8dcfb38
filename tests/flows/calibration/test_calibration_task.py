"""Calibration tasks under a real Prefect API record their provenance in the embedded MongoDB."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prefect import flow
from pymongo.database import Database

from qops.calibration.recording import CalibrationOutcome
from qops.config import MongoSettings
from qops.mongo import Document
from qops.process import free_port
from qops.provenance.models import ActivityStatus, RelationType
from qops.provenance.outbox import Outbox, outbox_path
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.flows.calibration.calibration_tasks import (
    calibration_chain,
    check_frequency,
    check_rabi,
    check_resonator,
    failing_readout,
)


@pytest.fixture
def service(
    prefect_api: str,
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> ProvenanceService:
    monkeypatch.setenv("QOPS_DATA_DIR", str(tmp_path))  # this test's own outbox
    monkeypatch.setenv("QOPS_PROJECT_ID", "lab")
    monkeypatch.setenv("QOPS_CHIP_ID", "64Qv3")
    return ProvenanceService(MongoProvenanceRepository(mongo_db), "lab")


def test_calibration_chain_three_runs_records_versions_and_lineage(
    service: ProvenanceService, mongo_db: Database[Document]
) -> None:
    runs = [calibration_chain(frequency_hz=f) for f in (5.0e9, 5.1e9, 5.2e9)]

    history = service.history("qubit_frequency", "Q0")
    assert [v.version for v in history.versions] == [3, 2, 1]
    assert [v.value for v in history.versions] == [5.2e9, 5.1e9, 5.0e9]
    assert history.total_versions == 3
    assert [v.valid_until is None for v in history.versions] == [True, False, False]
    assert history.versions[1].valid_until == history.versions[0].valid_from
    assert history.versions[0].unit == "Hz"
    assert history.versions[0].error == 1e3
    assert history.versions[0].chip_id == "64Qv3"
    assert history.versions[0].project_id == "lab"

    last = runs[-1]
    t1_id = last["t1"].entity_ids["t1"]
    assert last["t1"].versions == {"t1": 3, "t1_fit_quality": 3}
    execution_id = t1_id.split(":")[2]
    assert t1_id == f"t1:Q0:{execution_id}:{t1_id.split(':')[3]}"

    graph = service.lineage(t1_id, max_depth=2)
    by_id = {n.node_id: n for n in graph.nodes}
    frequency_id = last["frequency"].entity_ids["qubit_frequency"]
    rabi_id = last["rabi"].entity_ids["rabi_amplitude"]
    previous_t1 = runs[1]["t1"].entity_ids["t1"]
    assert by_id[last["t1"].activity_id].depth == 1
    assert by_id[frequency_id].depth == 1  # wasDerivedFrom the input directly
    assert by_id[rabi_id].depth == 1
    assert by_id[previous_t1].depth == 1  # wasDerivedFrom the previous version
    edges = {(e.relation_type, e.source_id, e.target_id) for e in graph.edges}
    assert (RelationType.USED, last["t1"].activity_id, rabi_id) in edges
    assert (RelationType.WAS_GENERATED_BY, t1_id, last["t1"].activity_id) in edges
    node_ids = {graph.origin.node_id, *by_id}
    assert all(e.source_id in node_ids and e.target_id in node_ids for e in graph.edges)

    impact = service.impact(frequency_id, max_depth=3)
    reached = {n.node_id for n in impact.nodes}
    assert {rabi_id, t1_id, last["t1"].entity_ids["t1_fit_quality"]} <= reached

    activity = mongo_db.activities.find_one({"_id": last["t1"].activity_id})
    assert activity is not None
    assert activity["status"] == "completed"
    assert activity["agent"] == {"agent_type": "system", "name": "prefect:calibration-chain"}
    assert activity["execution_id"] == execution_id

    compared = service.compare(runs[0]["t1"].entity_ids["t1"].split(":")[2], execution_id)
    assert {c.parameter_name for c in compared.changed_parameters} == {
        "qubit_frequency",
        "rabi_amplitude",
        "t1",
    }
    assert compared.unchanged_count == 1  # t1_fit_quality
    frequency_change = next(
        c for c in compared.changed_parameters if c.parameter_name == "qubit_frequency"
    )
    assert frequency_change.delta == pytest.approx(0.2e9)
    assert frequency_change.delta_percent == pytest.approx(4.0)


def test_calibration_task_nan_output_round_trips(service: ProvenanceService) -> None:
    outcome = calibration_chain(broken_fit=True)["t1"]
    stored = service.entity(outcome.entity_ids["t1"])
    assert math.isnan(stored.value)  # type: ignore[arg-type]
    assert stored.value_type == "float"
    assert stored.error == math.inf


def test_calibration_task_failure_records_failed_activity_without_versions(
    service: ProvenanceService, mongo_db: Database[Document]
) -> None:
    @flow
    def readout() -> None:
        failing_readout("Q1")

    state = readout(return_state=True)
    assert state.is_failed()
    activity = mongo_db.activities.find_one({"task_name": "FailingReadout"})
    assert activity is not None
    assert activity["status"] == ActivityStatus.FAILED.value
    assert "readout resonator not found" in activity["error_message"]
    assert mongo_db.parameter_versions.count_documents({}) == 0


def test_calibration_task_missing_input_fails_naming_parameter(
    service: ProvenanceService, mongo_db: Database[Document]
) -> None:
    @flow
    def rabi_only() -> None:
        check_rabi("Q5")

    state = rabi_only(return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match="needs input qubit_frequency for 'Q5'"):
        state.result()
    activity = mongo_db.activities.find_one({"task_name": "CheckRabi"})
    assert activity is not None
    assert activity["status"] == "failed"
    assert mongo_db.parameter_versions.count_documents({}) == 0


def test_calibration_task_mongo_down_defers_to_outbox_then_replays_in_order(
    service: ProvenanceService,
    mongo_settings: MongoSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert mongo_settings.mongodb_url is not None
    up_url = mongo_settings.mongodb_url.get_secret_value()
    monkeypatch.setenv("QOPS_MONGODB_URL", f"mongodb://127.0.0.1:{free_port()}/")
    monkeypatch.setenv("QOPS_MONGODB_TIMEOUT_S", "0.3")

    @flow
    def frequency_only(frequency_hz: float) -> CalibrationOutcome:
        return check_frequency("Q3", frequency_hz)

    offline = frequency_only(4.1e9)
    assert offline.deferred
    assert offline.versions == {}
    outbox = Outbox(outbox_path(tmp_path))
    assert outbox.pending() == 1

    monkeypatch.setenv("QOPS_MONGODB_URL", up_url)
    online = frequency_only(4.2e9)

    assert not online.deferred
    assert online.versions == {"qubit_frequency": 2}
    assert outbox.pending() == 0
    history = service.history("qubit_frequency", "Q3")
    assert [v.value for v in history.versions] == [4.2e9, 4.1e9]


def test_calibration_task_explicit_execution_and_project_arguments_are_recorded(
    service: ProvenanceService, mongo_db: Database[Document]
) -> None:
    @flow
    def resonator() -> CalibrationOutcome:
        return check_resonator(qid="Q0-Q1", execution_id="manual-001", project_id="lab-b")

    outcome = resonator()

    assert outcome.entity_ids["resonator_frequency"].startswith(
        "resonator_frequency:Q0-Q1:manual-001:"
    )
    assert outcome.activity_id.startswith("manual-001:")
    stored = service.entity(outcome.entity_ids["resonator_frequency"], project_id="lab-b")
    assert stored.execution_id == "manual-001"
    assert stored.chip_id == "64Qv3"  # from QOPS_CHIP_ID
    activity = mongo_db.activities.find_one({"_id": outcome.activity_id})
    assert activity is not None
    assert activity["project_id"] == "lab-b"
