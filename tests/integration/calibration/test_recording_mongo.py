"""The recording core and the calibration session on the embedded MongoDB, without Prefect."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymongo.database import Database

from qops.backend.errors import ChipBusyError, ChipInUseError
from qops.backend.locking import chip_locked
from qops.backend.state import MongoBackendStateStore, resolve_state
from qops.calibration.errors import SessionOpenError
from qops.calibration.plan import ChipSpec
from qops.calibration.recording import InputValues, ProvenanceSink, RunIds, recorded_calibration
from qops.calibration.session import calibration_session
from qops.config import MongoSettings
from qops.mongo import Document
from qops.protocol.messages import BackendState
from qops.provenance.config import ProvenanceSettings
from qops.provenance.models import Measured, RelationType
from qops.provenance.repository import MongoProvenanceRepository

SETTINGS = ProvenanceSettings(project_id="lab", chip_id="chip-rec")
CHIP = ChipSpec(chip_id="chip-rec", n_qubits=1)


@recorded_calibration(outputs=["qubit_frequency"])
def check_frequency(qid: str, frequency_hz: float) -> dict[str, Measured]:
    return {"qubit_frequency": Measured(value=frequency_hz, unit="Hz", error=1e3)}


@recorded_calibration(outputs=["pi_amplitude"], inputs=["qubit_frequency"])
def check_rabi(qid: str, inputs: InputValues) -> dict[str, Measured]:
    frequency = inputs["qubit_frequency"].value
    assert isinstance(frequency, float)
    return {"pi_amplitude": Measured(value=frequency / 1e10, unit="V")}


@pytest.fixture
def sink(mongo_settings: MongoSettings, tmp_path: Path) -> ProvenanceSink:
    return ProvenanceSink.mongo(mongo_settings.model_copy(update={"data_dir": tmp_path}))


def test_recorded_calibration_without_prefect_writes_versions_and_lineage(
    sink: ProvenanceSink, mongo_db: Database[Document]
) -> None:
    frequency = check_frequency.run(RunIds(task_id="f", runner="script"), sink, SETTINGS, "Q0", 5e9)
    rabi = check_rabi.run(RunIds(task_id="r", runner="script"), sink, SETTINGS, "Q0")

    assert not rabi.deferred
    stored = MongoProvenanceRepository(mongo_db).get_entity("lab", rabi.entity_ids["pi_amplitude"])
    assert stored is not None
    assert (stored.value, stored.unit, stored.version) == (0.5, "V", 1)
    derived = mongo_db.provenance_relations.find_one(
        {"relation_type": RelationType.WAS_DERIVED_FROM.value, "source_id": stored.entity_id}
    )
    assert derived is not None
    assert derived["target_id"] == frequency.entity_ids["qubit_frequency"]
    activity = mongo_db.activities.find_one({"_id": rabi.activity_id})
    assert activity is not None
    assert activity["agent"]["name"] == "script:task"


def test_calibration_session_leases_chip_and_reports_changes(
    sink: ProvenanceSink, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    check_frequency.run(RunIds(task_id="f0"), sink, SETTINGS, "Q0", 5.0e9)
    store = MongoBackendStateStore(mongo_db)

    with calibration_session(mongo_settings, CHIP, "lab", "exec-1") as session:
        assert resolve_state(store.marks(CHIP.chip_id)) is BackendState.CALIBRATING
        assert session.epoch == 1
        with pytest.raises(SessionOpenError, match="chip-rec"):
            session.changes()
        with (
            pytest.raises(ChipBusyError, match="exec-1"),
            calibration_session(mongo_settings, CHIP, "lab", "exec-2"),
        ):
            pass
        check_frequency.run(RunIds(task_id="f1"), sink, SETTINGS, "Q0", 5.1e9)

    assert resolve_state(store.marks(CHIP.chip_id)) is BackendState.IDLE
    (change,) = session.changes()
    assert (change.parameter_name, change.before, change.after) == ("qubit_frequency", 5.0e9, 5.1e9)
    report = session.report(["Q0"], [], Path("lab.db"), [])
    assert (report.execution_id, report.epoch, report.changes) == ("exec-1", 1, [change])


def test_calibration_session_block_raises_lease_released_no_after(
    mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    with (
        pytest.raises(RuntimeError, match="step crashed"),
        calibration_session(mongo_settings, CHIP, "lab", "exec-3") as session,
    ):
        raise RuntimeError("step crashed")
    assert session.after is None
    assert resolve_state(MongoBackendStateStore(mongo_db).marks(CHIP.chip_id)) is BackendState.IDLE


def test_calibration_session_refused_while_a_2200_session_is_initialized(
    mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    store = MongoBackendStateStore(mongo_db)
    # What 2300's initialize holds until terminate (qops.backend.jobs).
    with chip_locked(store, CHIP.chip_id, BackendState.EXECUTING, holder="2200 session s-1"):
        with (
            pytest.raises(ChipInUseError, match="chip-rec' cannot be CALIBRATING: it is EXECUTING"),
            calibration_session(mongo_settings, CHIP, "lab", "exec-4"),
        ):
            pass
        assert store.marks(CHIP.chip_id).leases == (BackendState.EXECUTING,)
    with calibration_session(mongo_settings, CHIP, "lab", "exec-5"):
        assert resolve_state(store.marks(CHIP.chip_id)) is BackendState.CALIBRATING
