"""The recording core of ``@calibration_task`` without Prefect, on an in-process repository."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from qops.calibration.graph import StepName
from qops.calibration.recording import (
    InputValues,
    ProvenanceSink,
    RecordedCalibration,
    RunIds,
    kebab_task_name,
    recorded_calibration,
    recorded_task_name,
)
from qops.calibration.steps import step_measurement, step_task_name
from qops.errors import MongoUnavailableError
from qops.provenance.config import ProvenanceSettings
from qops.provenance.errors import MissingInputError, OutputMismatchError
from qops.provenance.ids import activity_id, entity_id
from qops.provenance.models import (
    ActivityStatus,
    AgentType,
    Measured,
    ParameterVersion,
    RecordResult,
    TaskRecord,
)
from qops.provenance.outbox import Outbox
from qops.provenance.values import value_type_of

SETTINGS = ProvenanceSettings(project_id="lab", chip_id="chip-1")


class InProcessRepository:
    """The two calls the recording core makes, kept in memory: versions numbered per
    ``(project, chip, parameter, qid)``, every record kept."""

    def __init__(self) -> None:
        self.records: list[TaskRecord] = []
        self.versions: dict[tuple[str, str, str, str], ParameterVersion] = {}

    def current_inputs(
        self, project_id: str, chip_id: str, qid: str, parameter_names: Sequence[str]
    ) -> dict[str, ParameterVersion]:
        return {
            name: self.versions[(project_id, chip_id, name, qid)]
            for name in parameter_names
            if (project_id, chip_id, name, qid) in self.versions
        }

    def record(self, record: TaskRecord) -> RecordResult:
        self.records.append(record)
        written: dict[str, int] = {}
        ids: dict[str, str] = {}
        for name, measured in record.outputs.items():
            key = (record.project_id, record.chip_id, name, record.qid)
            previous = self.versions.get(key)
            version = previous.version + 1 if previous else 1
            ids[name] = entity_id(name, record.qid, record.execution_id, record.task_id)
            self.versions[key] = ParameterVersion(
                entity_id=ids[name],
                parameter_name=name,
                qid=record.qid,
                value=measured.value,
                value_type=value_type_of(measured.value),
                unit=measured.unit,
                error=measured.error,
                version=version,
                valid_from=record.ended_at,
                execution_id=record.execution_id,
                task_id=record.task_id,
                task_name=record.task_name,
                project_id=record.project_id,
                chip_id=record.chip_id,
            )
            written[name] = version
        return RecordResult(
            activity_id=activity_id(record.execution_id, record.task_id),
            entity_ids=ids,
            versions=written,
        )


@pytest.fixture
def repository() -> InProcessRepository:
    return InProcessRepository()


@pytest.fixture
def sink(repository: InProcessRepository, tmp_path: Path) -> ProvenanceSink:
    return ProvenanceSink(lambda: repository, Outbox(tmp_path / "outbox.sqlite"))  # type: ignore[arg-type, return-value]


@recorded_calibration(outputs=["qubit_frequency"])
def check_frequency(qid: str, frequency_hz: float) -> dict[str, Measured]:
    return {"qubit_frequency": Measured(value=frequency_hz, unit="Hz", error=1e3)}


@recorded_calibration(outputs=["pi_amplitude"], inputs=["qubit_frequency"])
def check_rabi(qid: str, inputs: InputValues) -> dict[str, float]:
    frequency = inputs["qubit_frequency"].value
    assert isinstance(frequency, float)
    return {"pi_amplitude": frequency / 1e10}


@recorded_calibration(outputs=["cz_fidelity"], inputs=["qubit_frequency"], task_type="pair")
def check_cz(qid: str, inputs: InputValues, execution_id: str | None = None) -> dict[str, float]:
    return {
        "cz_fidelity": 0.99 if set(inputs) == {"qubit_frequency:Q0", "qubit_frequency:Q1"} else 0
    }


def test_recorded_calibration_runs_without_prefect_and_chains_versions(
    repository: InProcessRepository, sink: ProvenanceSink
) -> None:
    ids = RunIds(task_id="t-1", runner="script")
    first = check_frequency.run(ids, sink, SETTINGS, "Q0", 5.0e9)
    rabi = check_rabi.run(RunIds(task_id="t-2", runner="script"), sink, SETTINGS, qid="Q0")

    assert first.versions == {"qubit_frequency": 1}
    assert first.outputs["qubit_frequency"] == Measured(value=5.0e9, unit="Hz", error=1e3)
    assert rabi.versions == {"pi_amplitude": 1}
    assert rabi.outputs["pi_amplitude"] == Measured(value=0.5)
    assert rabi.inputs["qubit_frequency"].entity_id == first.entity_ids["qubit_frequency"]
    recorded = repository.records[-1]
    assert recorded.status is ActivityStatus.COMPLETED
    assert (recorded.project_id, recorded.chip_id, recorded.qid) == ("lab", "chip-1", "Q0")
    assert recorded.execution_id == "task-t-2"  # no flow run: the run's own id
    assert recorded.task_name == "CheckRabi"  # the documented form, from check_rabi
    assert recorded.agent.agent_type is AgentType.SYSTEM
    assert recorded.agent.name == "script:task"
    assert [use.parameter_name for use in recorded.inputs] == ["qubit_frequency"]


def test_recorded_calibration_flow_ids_and_user_agent_recorded(
    repository: InProcessRepository, sink: ProvenanceSink
) -> None:
    ids = RunIds(task_id="t-9", flow_run_id="flow-1", flow_name="nightly", runner="prefect")
    check_frequency.run(ids, sink, SETTINGS, "Q0", 5.0e9)
    assert repository.records[-1].execution_id == "flow-1"
    assert repository.records[-1].agent.name == "prefect:nightly"

    user = SETTINGS.model_copy(update={"provenance_user": "ada"})
    check_frequency.run(ids, sink, user, "Q0", 5.0e9)
    assert repository.records[-1].agent.agent_type is AgentType.USER
    assert repository.records[-1].agent.name == "ada"


def test_recorded_calibration_pair_reads_inputs_of_both_qubits(
    repository: InProcessRepository, sink: ProvenanceSink
) -> None:
    for n, qid in enumerate(("Q0", "Q1")):
        check_frequency.run(RunIds(task_id=f"f-{n}"), sink, SETTINGS, qid, 5.0e9 + n)
    outcome = check_cz.run(RunIds(task_id="cz"), sink, SETTINGS, "Q0-Q1", execution_id="exec-7")
    assert outcome.outputs["cz_fidelity"].value == 0.99
    assert set(outcome.inputs) == {"qubit_frequency:Q0", "qubit_frequency:Q1"}
    assert repository.records[-1].task_type == "pair"
    assert repository.records[-1].execution_id == "exec-7"


def test_recorded_calibration_missing_input_records_failed_and_raises(
    repository: InProcessRepository, sink: ProvenanceSink
) -> None:
    with pytest.raises(MissingInputError, match="needs input qubit_frequency for 'Q5'"):
        check_rabi.run(RunIds(task_id="t"), sink, SETTINGS, "Q5")
    (failed,) = repository.records
    assert failed.status is ActivityStatus.FAILED
    assert failed.outputs == {}
    assert failed.error_message is not None
    assert failed.error_message.startswith("MissingInputError: ")
    assert repository.versions == {}


def test_recorded_calibration_body_failure_records_failed_and_reraises(
    repository: InProcessRepository, sink: ProvenanceSink
) -> None:
    @recorded_calibration(outputs=["t1"])
    def broken(qid: str) -> dict[str, float]:
        raise RuntimeError("no decay")

    with pytest.raises(RuntimeError, match="no decay"):
        broken.run(RunIds(task_id="t"), sink, SETTINGS, "Q0")
    assert repository.records[-1].status is ActivityStatus.FAILED
    assert repository.records[-1].error_message == "RuntimeError: no decay"


def test_recorded_calibration_wrong_outputs_raise_output_mismatch(
    repository: InProcessRepository, sink: ProvenanceSink
) -> None:
    @recorded_calibration(outputs=["t1"])
    def wrong(qid: str) -> dict[str, float]:
        return {"t2": 1.0}

    with pytest.raises(OutputMismatchError, match=r"missing \['t1'\], undeclared \['t2'\]"):
        wrong.run(RunIds(task_id="t"), sink, SETTINGS, "Q0")
    assert repository.records[-1].status is ActivityStatus.FAILED


def test_recorded_calibration_repository_unreachable_defers_to_outbox(tmp_path: Path) -> None:
    def unreachable() -> InProcessRepository:
        raise MongoUnavailableError("mongodb://127.0.0.1:1/", "connection refused", 0.1)

    outbox = Outbox(tmp_path / "outbox.sqlite")
    sink = ProvenanceSink(unreachable, outbox)  # type: ignore[arg-type]
    outcome = check_frequency.run(RunIds(task_id="t"), sink, SETTINGS, "Q3", 4.1e9)
    assert outcome.deferred
    assert outcome.versions == {}
    assert outcome.outputs["qubit_frequency"].value == 4.1e9
    assert outbox.pending() == 1


def test_recorded_calibration_bad_declarations_raise_type_error() -> None:
    with pytest.raises(TypeError, match="at least one output"):
        recorded_calibration(outputs=[])
    with pytest.raises(TypeError, match="must take an argument qid"):
        RecordedCalibration(lambda target: {}, outputs=["t1"])
    with pytest.raises(TypeError, match="positional-only"):
        RecordedCalibration(lambda qid, /: {}, outputs=["t1"])


def test_recorded_calibration_signature_hides_inputs() -> None:
    assert list(check_rabi.signature.parameters) == ["qid"]
    with pytest.raises(TypeError):
        check_rabi.run(RunIds(task_id="t"), None, SETTINGS, "Q0", inputs={})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("function_name", "task_name", "kebab"),
    [
        ("check_t1", "CheckT1", "check-t1"),
        ("check_frequency", "CheckFrequency", "check-frequency"),
        ("check_t2_echo", "CheckT2Echo", "check-t2-echo"),
    ],
)
def test_recorded_task_name_is_camel_case_and_kebab_for_orchestrators(
    function_name: str, task_name: str, kebab: str
) -> None:
    assert recorded_task_name(function_name) == task_name
    assert kebab_task_name(task_name) == kebab
    assert kebab_task_name(kebab) == kebab  # a name given in kebab case stays


def test_step_tasks_record_the_step_name_and_run_as_kebab_prefect_tasks() -> None:
    from tasks.calibration import CALIBRATION_TASKS

    for step, task in CALIBRATION_TASKS.items():
        assert task.name == step_task_name(step)  # Prefect: check-t1, check-cz
        assert task.fn.__wrapped__.__name__ == step_task_name(step, "_")
    recorded = RecordedCalibration(
        step_measurement(StepName.CHECK_CZ), outputs=["cz_fidelity"], name=StepName.CHECK_CZ
    )
    assert (recorded.name, recorded.kebab_name) == ("CheckCZ", "check-cz")
