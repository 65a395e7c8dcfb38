"""The calibrate flow under a real Prefect API, on the embedded MongoDB, measuring through
QCoDeS into a real database."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from pymongo.database import Database

from flows.calibrate import calibrate
from qops.backend.errors import ChipBusyError
from qops.backend.state import MongoBackendStateStore, calibrating, resolve_state
from qops.calibration.errors import MeasurementDatabaseError
from qops.calibration.graph import StepName
from qops.calibration.instruments import close_instruments, simulated_chip
from qops.calibration.plan import ChipSpec, StepOutcome
from qops.calibration.report import CalibrationReport
from qops.chip.errors import UnknownPairError, UnknownQubitError
from qops.mongo import Document
from qops.protocol.messages import BackendState
from qops.provenance.ids import EntityKind, entity_kind
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from qops.timeutil import as_utc
from tasks.calibration import CALIBRATION_TASKS

pytestmark = pytest.mark.usefixtures("prefect_api", "calibration_instruments")


@pytest.fixture(scope="module")
def calibration_instruments() -> Iterator[None]:
    """Close the QCoDeS instruments the calibration tasks open, so other tests can reuse
    their names (QCoDeS instrument names are global in a process)."""
    yield
    close_instruments()


CHIP = "chip-cal"
QUBIT_PARAMETERS = {
    "qubit_frequency",
    "readout_frequency",
    "pi_amplitude",
    "t1",
    "t2_star",
    "t2_echo",
    "readout_fidelity",
}


def _service(db: Database[Document]) -> ProvenanceService:
    return ProvenanceService(MongoProvenanceRepository(db), default_project_id="default")


def test_calibrate_twice_records_v1_v2_lineage_and_artifacts(
    mongo_db: Database[Document], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "lab.db"
    monkeypatch.delenv("QOPS_CONSOLE_URL", raising=False)
    first = calibrate(chip_id=CHIP, database_path=str(database))
    assert not first.failed
    assert not first.skipped
    assert first.qubits == ["Q0", "Q1"]
    assert first.pairs == ["Q0-Q1"]
    # The second run's artifacts link to the console's pages.
    monkeypatch.setenv("QOPS_CONSOLE_URL", "http://qops.lab:8000/")
    second = calibrate(chip_id=CHIP, database_path=str(database))
    assert second.epoch > first.epoch  # the chip drifted between the runs

    repository = MongoProvenanceRepository(mongo_db)
    current = repository.current_versions("default", CHIP)
    by_key = {(v.parameter_name, v.qid): v for v in current}
    for qid in ("Q0", "Q1"):
        for name in QUBIT_PARAMETERS - {"qubit_frequency"}:
            assert by_key[(name, qid)].version == 2, (name, qid)
        # CheckFrequency and CheckRamsey (which refines it) each write one per run.
        assert by_key[("qubit_frequency", qid)].version == 4
    assert by_key[("cz_fidelity", "Q0-Q1")].version == 2
    assert {c.parameter_name for c in second.changes} >= {"t1", "pi_amplitude"}

    # pi_amplitude of the second run derives from the qubit frequency it used and from
    # its own previous version.
    pi = by_key[("pi_amplitude", "Q0")]
    lineage = _service(mongo_db).lineage(pi.entity_id, max_depth=1)
    parents = {n.node_id for n in lineage.nodes if n.depth == 1}
    previous, _ = repository.history("default", "pi_amplitude", "Q0", limit=2)
    assert previous[1].entity_id in parents
    used_frequency = [
        e.target_id
        for e in lineage.edges
        if e.relation_type == "wasDerivedFrom" and e.target_id.startswith("qubit_frequency:Q0:")
    ]
    assert len(used_frequency) == 1

    # The QCoDeS runs are in the lab database, one per step and target and run.
    with sqlite3.connect(database) as conn:
        (runs,) = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
    assert runs == 2 * (6 * 2 + 1)

    async def artifacts() -> dict[str, list[str]]:
        async with get_client() as client:
            found = await client.read_artifacts()
            published: dict[str, list[str]] = {}
            for a in found:
                published.setdefault(a.key or "", []).append(str(a.data))
            return published

    published = asyncio.run(artifacts())
    changes = published["calibration-chip-cal-changes"]
    lineages = published["calibration-chip-cal-lineage"]
    assert len(changes) == len(lineages) == 2
    assert all("pi_amplitude" in c for c in changes)
    assert all("wasDerivedFrom" in m for m in lineages)
    # Without QOPS_CONSOLE_URL no links; with it, one per parameter and the execution.
    plain = [c for c in changes if "/console/" not in c]
    linked = [c for c in changes if "/console/" in c]
    assert len(plain) == len(linked) == 1
    assert "[t1](http://qops.lab:8000/console/parameters/t1/Q0)" in linked[0]
    (linked_lineage,) = [m for m in lineages if "/console/" in m]
    execution_link = f"(http://qops.lab:8000/console/executions/{second.execution_id})"
    assert execution_link in linked_lineage
    assert "[pi_amplitude v2](http://qops.lab:8000/console/parameters/pi_amplitude/Q1)" in (
        linked_lineage
    )
    assert "[cz_fidelity v2](http://qops.lab:8000/console/parameters/cz_fidelity/Q0-Q1)" in (
        linked_lineage
    )


def test_calibrate_second_chip_of_project_keeps_first_chips_versions(
    mongo_db: Database[Document], tmp_path: Path
) -> None:
    """``qops calibrate --chip chip-two`` in a project that has ``chip-one`` (issue 12)."""
    calibrate(chip_id="chip-one", database_path=str(tmp_path / "one.db"))
    repository = MongoProvenanceRepository(mongo_db)
    before = repository.current_versions("default", "chip-one")
    assert len(before) == 2 * len(QUBIT_PARAMETERS) + 1

    calibrate(chip_id="chip-two", database_path=str(tmp_path / "two.db"))

    assert repository.current_versions("default", "chip-one") == before
    second = repository.current_versions("default", "chip-two")
    # Chip two's chains start afresh: the same numbers as chip one's first calibration.
    assert {(v.parameter_name, v.qid): v.version for v in second} == {
        (v.parameter_name, v.qid): v.version for v in before
    }
    service = _service(mongo_db)
    for version in second:
        chain = service.history(version.parameter_name, version.qid, chip_id="chip-two")
        assert {v.chip_id for v in chain.versions} == {"chip-two"}
        assert chain.versions[-1].previous_entity_id is None
    # Chip two's task runs used chip two's versions only (besides the QCoDeS runs they
    # measured, which are no parameter versions).
    used = [
        r["target_id"]
        for r in mongo_db.provenance_relations.find({"relation_type": "used"})
        if r["execution_id"] in {v.execution_id for v in second}
        and entity_kind(r["target_id"]) is EntityKind.PARAMETER
    ]
    assert used
    assert {service.entity(u).chip_id for u in used} == {"chip-two"}

    # Chip one's next calibration continues chip one's chains from its own inputs.
    again = calibrate(chip_id="chip-one", database_path=str(tmp_path / "one.db"))
    after = repository.current_versions("default", "chip-one")
    assert {(v.parameter_name, v.qid): v.version for v in after} == {
        (v.parameter_name, v.qid): 2 * v.version for v in before
    }
    used_again = [
        r["target_id"]
        for r in mongo_db.provenance_relations.find({"relation_type": "used"})
        if r["execution_id"] == again.execution_id
        and entity_kind(r["target_id"]) is EntityKind.PARAMETER
    ]
    assert used_again
    assert {service.entity(u).chip_id for u in used_again} == {"chip-one"}


def test_calibrate_failed_fit_skips_that_qubit_only(
    mongo_db: Database[Document], tmp_path: Path
) -> None:
    spec = ChipSpec(chip_id="chip-fault", n_qubits=2, topology=((0, 1),))
    chip = simulated_chip(spec, epoch=0)
    chip.shift_truth("Q1", qubit_frequency=chip.truth("Q1").qubit_frequency + 80e6)

    report = calibrate(chip_id="chip-fault", database_path=str(tmp_path / "lab.db"))

    outcomes = {(s.step, s.target): s for s in report.steps}
    failed = outcomes[(StepName.CHECK_FREQUENCY, "Q1")]
    assert failed.outcome is StepOutcome.FAILED
    assert "no resonance found" in failed.reason
    rabi_q1 = outcomes[(StepName.CHECK_RABI, "Q1")]
    assert rabi_q1.outcome is StepOutcome.SKIPPED
    assert "CheckFrequency on Q1 failed" in rabi_q1.reason
    assert outcomes[(StepName.CHECK_CZ, "Q0-Q1")].outcome is StepOutcome.SKIPPED
    assert all(
        s.outcome is StepOutcome.COMPLETED for (_, target), s in outcomes.items() if target == "Q0"
    )
    recorded = {
        v.qid for v in MongoProvenanceRepository(mongo_db).current_versions("default", "chip-fault")
    }
    assert recorded == {"Q0"}
    activities = list(mongo_db.activities.find({"qid": "Q1", "status": "failed"}))
    assert [a["task_name"] for a in activities] == ["CheckFrequency"]  # the step name


def test_calibrate_unknown_qubit_fails_naming_it(mongo_db: Database[Document]) -> None:
    with pytest.raises(UnknownQubitError, match="Q7"):
        calibrate(qubits=["Q7"], chip_id=CHIP)
    assert mongo_db.parameter_versions.count_documents({}) == 0


def test_calibrate_database_not_writable_fails_and_leaves_chip_idle(
    mongo_db: Database[Document], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(MeasurementDatabaseError, match="a-file"):
        calibrate(chip_id=CHIP, database_path=str(blocker / "lab.db"))
    state = resolve_state(MongoBackendStateStore(mongo_db).marks(CHIP))
    assert state is BackendState.IDLE


def test_calibrate_cz_on_uncoupled_pair_fails_clearly(
    mongo_db: Database[Document], tmp_path: Path
) -> None:
    config = tmp_path / "backend.yaml"
    config.write_text("name: line-3\nchip_id: chip-line\nnqubits: 3\ntopology: [[0, 1], [1, 2]]\n")
    database = str(tmp_path / "lab.db")
    # Q0 and Q2 are not coupled: calibrating both runs no CheckCZ.
    report = calibrate(backend_config=str(config), qubits=["Q0", "Q2"], database_path=database)
    assert report.pairs == []
    assert not report.failed

    spec = ChipSpec.from_file(config, seed=1234)

    @flow
    def cz_only() -> None:
        CALIBRATION_TASKS[StepName.CHECK_CZ](
            qid="Q0-Q2",
            chip=spec,
            epoch=0,
            database_path=database,
            execution_id="cz-test",
            project_id="default",
            chip_id="chip-line",
        )

    with pytest.raises(UnknownPairError, match="Q0-Q2"):
        cz_only()
    assert (
        MongoProvenanceRepository(mongo_db).current_inputs(
            "default", "chip-line", "Q0-Q2", ["cz_fidelity"]
        )
        == {}
    )


def test_calibrate_refused_while_another_calibration_holds_the_chip(
    mongo_db: Database[Document], tmp_path: Path
) -> None:
    store = MongoBackendStateStore(mongo_db)
    # Another process's calibration of the chip holds its exclusive lease.
    with (
        calibrating(store, "chip-busy", holder="flow-run-elsewhere", exclusive=True),
        pytest.raises(ChipBusyError, match="flow-run-elsewhere"),
    ):
        calibrate(chip_id="chip-busy", database_path=str(tmp_path / "b.db"))
    assert mongo_db.parameter_versions.count_documents({"chip_id": "chip-busy"}) == 0
    assert resolve_state(store.marks("chip-busy")) is BackendState.IDLE


def test_calibrate_two_runs_at_once_never_interleave_versions(
    mongo_db: Database[Document], tmp_path: Path
) -> None:
    reports: list[CalibrationReport] = []

    def run(name: str) -> None:
        reports.append(
            calibrate(chip_id="chip-twice", database_path=str(tmp_path / f"{name}.db"), wait_s=120)
        )

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(reports) == 2
    assert all(not r.failed for r in reports)
    # One ran after the other: their task runs' time windows do not overlap, and each
    # parameter got one version per run.
    windows = []
    for report in reports:
        activities = list(mongo_db.activities.find({"execution_id": report.execution_id}))
        assert activities
        windows.append(
            (
                min(as_utc(a["started_at"]) for a in activities),
                max(as_utc(a["ended_at"]) for a in activities),
            )
        )
    first, second = sorted(windows)
    assert first[1] <= second[0]
    t1 = mongo_db.parameter_versions.find({"chip_id": "chip-twice", "parameter_name": "t1"})
    assert sorted(v["version"] for v in t1 if v["qid"] == "Q0") == [1, 2]
    assert resolve_state(MongoBackendStateStore(mongo_db).marks("chip-twice")) is BackendState.IDLE


def test_calibrate_marks_chip_calibrating_while_running_then_idle(
    mongo_db: Database[Document], tmp_path: Path
) -> None:
    store = MongoBackendStateStore(mongo_db)
    seen: list[BackendState] = []
    thread = threading.Thread(
        target=calibrate, kwargs={"chip_id": "chip-watch", "database_path": str(tmp_path / "w.db")}
    )
    thread.start()
    while thread.is_alive():
        state = resolve_state(store.marks("chip-watch"))
        if not seen or seen[-1] is not state:
            seen.append(state)
        thread.join(0.02)
    assert BackendState.CALIBRATING in seen
    assert resolve_state(store.marks("chip-watch")) is BackendState.IDLE
    assert mongo_db.parameter_versions.count_documents({"chip_id": "chip-watch"}) > 0
