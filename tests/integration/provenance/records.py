"""Task records and recorded chains for provenance tests."""

from __future__ import annotations

from datetime import timedelta

from pymongo import monitoring

from qops.provenance.models import (
    ActivityStatus,
    Agent,
    AgentType,
    InputUse,
    Measured,
    ParameterVersion,
    TaskRecord,
)
from qops.provenance.repository import MongoProvenanceRepository
from qops.timeutil import utc_now

PROJECT = "lab"
CHIP = "64Qv3"


def make_record(
    execution_id: str,
    task_id: str,
    outputs: dict[str, Measured | float | int | str],
    *,
    qid: str = "Q0",
    inputs: list[ParameterVersion] | None = None,
    status: ActivityStatus = ActivityStatus.COMPLETED,
    task_name: str = "check-something",
    project_id: str = PROJECT,
    chip_id: str = CHIP,
) -> TaskRecord:
    """A task record as the decorator builds it."""
    now = utc_now()
    return TaskRecord(
        project_id=project_id,
        chip_id=chip_id,
        execution_id=execution_id,
        task_id=task_id,
        task_name=task_name,
        qid=qid,
        started_at=now - timedelta(seconds=1),
        ended_at=now,
        status=status,
        agent=Agent(agent_type=AgentType.SYSTEM, name="prefect:test"),
        inputs=[InputUse.of(v) for v in inputs or []],
        outputs={
            name: value if isinstance(value, Measured) else Measured(value=value)
            for name, value in outputs.items()
        },
    )


def record_chain(
    repository: MongoProvenanceRepository, execution_id: str, frequency: float
) -> dict[str, str]:
    """Record frequency -> rabi -> t1 (t1 uses both) in one execution; return entity ids."""
    freq = repository.record(
        make_record(
            execution_id, "t-freq", {"qubit_frequency": Measured(value=frequency, unit="Hz")}
        )
    )
    freq_version = repository.current_inputs(PROJECT, CHIP, "Q0", ["qubit_frequency"])
    rabi = repository.record(
        make_record(
            execution_id,
            "t-rabi",
            {"rabi_amplitude": frequency / 1e10},
            inputs=list(freq_version.values()),
        )
    )
    inputs = repository.current_inputs(PROJECT, CHIP, "Q0", ["qubit_frequency", "rabi_amplitude"])
    t1 = repository.record(
        make_record(execution_id, "t-t1", {"t1": 5e-5}, inputs=list(inputs.values()))
    )
    return {
        "qubit_frequency": freq.entity_ids["qubit_frequency"],
        "rabi_amplitude": rabi.entity_ids["rabi_amplitude"],
        "t1": t1.entity_ids["t1"],
        "t1_activity": t1.activity_id,
    }


class CommandCounter(monitoring.CommandListener):
    """Records the name of every command a client sends (session clean-up aside)."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name != "endSessions":
            self.commands.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
