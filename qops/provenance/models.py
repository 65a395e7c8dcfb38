"""Provenance records (PROV-DM entities, activities, relations) and query results."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from qops.provenance.errors import InvalidValueError
from qops.provenance.ids import EntityKind, dataset_entity_id, dataset_file_entity_id
from qops.provenance.values import (
    MAX_TEXT_BYTES,
    OptionalFloat,
    ParameterValue,
    ValueType,
    value_problem,
)
from qops.timeutil import as_utc


def _aware(value: object) -> object:
    """Accept datetimes (and the text some servers return for updated dates) as aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return as_utc(value)
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_aware)]
"""A timezone-aware UTC datetime (naive values and date text are read as UTC)."""


class RelationType(StrEnum):
    """The PROV-DM relations qops records."""

    WAS_GENERATED_BY = "wasGeneratedBy"
    USED = "used"
    WAS_DERIVED_FROM = "wasDerivedFrom"


class NodeType(StrEnum):
    """What a provenance id names."""

    ENTITY = "entity"
    ACTIVITY = "activity"


class ActivityStatus(StrEnum):
    """Outcome of a task run."""

    COMPLETED = "completed"
    FAILED = "failed"


class AgentType(StrEnum):
    """Who ran a task: a person or the system (a flow, a schedule)."""

    USER = "user"
    SYSTEM = "system"


class Agent(BaseModel):
    """The PROV-DM agent a task run is associated with."""

    model_config = ConfigDict(frozen=True)

    agent_type: AgentType
    name: str = Field(min_length=1)
    host: str | None = Field(
        default=None, description="The machine it ran on, where recorded (the sync's host)."
    )


class Measured(BaseModel):
    """One output of a calibration task: the value with its unit and error.

    Attributes:
        value: The measured value (int, float including NaN/±inf, or str).
        unit: Unit of ``value`` and ``error`` (e.g. ``"Hz"``); empty if dimensionless.
        error: Standard uncertainty in ``unit``; ``None`` if unknown.
    """

    model_config = ConfigDict(frozen=True)

    value: ParameterValue
    unit: str = ""
    error: OptionalFloat = None


class DatasetEntity(BaseModel):
    """A raw measurement as a PROV entity: one QCoDeS run, ``dataset:{guid}``.

    Calibration steps that measured it ``used`` it and the versions they fitted were
    derived from it; the sync that copied it into the catalog ``used`` it too. The catalog
    finds the run by its GUID (``alt_uid``).
    """

    model_config = ConfigDict(frozen=True)

    guid: str = Field(min_length=1, pattern=r"^[^:]+$")
    name: str = Field(default="", description="The run's name.")
    run_id: int | None = Field(default=None, description="The run id in its database.")
    source_db: str | None = Field(default=None, description="The QCoDeS database file.")
    experiment_name: str | None = None
    sample_name: str | None = None

    @property
    def entity_id(self) -> str:
        """``dataset:{guid}``."""
        return dataset_entity_id(self.guid)


class DatasetFileEntity(BaseModel):
    """One version of a run's data file in the catalog, ``dataset-file:{uuid}:v{version}``.

    It ``wasGeneratedBy`` the sync activity that wrote it and ``wasDerivedFrom`` the raw
    measurement and the file version before it.
    """

    model_config = ConfigDict(frozen=True)

    dataset_uuid: str = Field(min_length=1, pattern=r"^[^:]+$")
    guid: str = Field(min_length=1)
    version: int = Field(ge=1)
    name: str
    location: str
    md5: str
    size: int = Field(ge=0)
    rows: int = Field(ge=0)
    complete: bool
    created: UtcDatetime
    source: str = Field(description="The sync source that wrote it.")

    @property
    def entity_id(self) -> str:
        """``dataset-file:{dataset_uuid}:v{version}``."""
        return dataset_file_entity_id(self.dataset_uuid, self.version)

    @property
    def previous_entity_id(self) -> str | None:
        """The file version it replaced, if any."""
        if self.version == 1:
            return None
        return dataset_file_entity_id(self.dataset_uuid, self.version - 1)


OtherEntity = DatasetEntity | DatasetFileEntity
"""The entities stored beside parameter versions (collection ``provenance_entities``)."""


def kind_of(entity: OtherEntity) -> EntityKind:
    """The kind of a stored non-parameter entity."""
    return EntityKind.DATASET if isinstance(entity, DatasetEntity) else EntityKind.DATASET_FILE


class ParameterVersion(BaseModel):
    """A PROV-DM entity: one version of a calibration parameter of one qubit or coupler.

    Invariants: per ``(project_id, chip_id, parameter_name, qid)`` versions are 1, 2, 3, ...
    with no gap (a chain split by chip from an older database may start above 1);
    ``valid_until`` is ``None`` only for the newest version of the chain.
    """

    entity_id: str
    parameter_name: str
    qid: str
    value: ParameterValue
    value_type: ValueType
    unit: str = ""
    error: OptionalFloat = None
    version: int = Field(ge=1)
    valid_from: UtcDatetime
    valid_until: UtcDatetime | None = None
    execution_id: str
    task_id: str
    task_name: str
    project_id: str
    chip_id: str = Field(
        description="The chip whose chain this version is in; empty if the document has none."
    )
    previous_entity_id: str | None = None


class Activity(BaseModel):
    """A PROV-DM activity: one calibration task run."""

    activity_id: str
    execution_id: str
    task_id: str
    task_name: str
    task_type: str = "calibration"
    qid: str
    started_at: UtcDatetime
    ended_at: UtcDatetime | None = None
    status: ActivityStatus
    project_id: str
    chip_id: str
    agent: Agent | None = Field(
        default=None, description="Who ran it; null for activities written without one."
    )
    error_message: str | None = None


class ProvenanceRelation(BaseModel):
    """A PROV-DM relation between two provenance nodes."""

    relation_type: RelationType
    source_id: str
    source_type: NodeType
    target_id: str
    target_type: NodeType
    project_id: str
    execution_id: str | None = Field(
        default=None, description="The execution that recorded it; null if not stored."
    )


class InputUse(BaseModel):
    """An input parameter version a task run used."""

    parameter_name: str
    entity_id: str
    value: ParameterValue
    value_type: ValueType
    unit: str = ""
    error: OptionalFloat = None
    version: int

    @classmethod
    def of(cls, version: ParameterVersion) -> InputUse:
        """The use of ``version`` as an input."""
        return cls(
            parameter_name=version.parameter_name,
            entity_id=version.entity_id,
            value=version.value,
            value_type=version.value_type,
            unit=version.unit,
            error=version.error,
            version=version.version,
        )


class TaskRecord(BaseModel):
    """Everything one task run contributes to provenance; written all-or-nothing.

    Versions are numbered when the record is written, so a record kept in the outbox gets
    the next free versions at replay, in outbox order.
    """

    project_id: str = Field(min_length=1)
    chip_id: str = Field(description="The chip; empty only for a run without parameters.")
    execution_id: str = Field(min_length=1)
    task_id: str = Field(min_length=1)
    task_name: str = Field(min_length=1)
    task_type: str = "calibration"
    qid: str = Field(description="The qubit or pair; empty only for a run without parameters.")
    started_at: UtcDatetime
    ended_at: UtcDatetime
    status: ActivityStatus
    agent: Agent
    inputs: list[InputUse] = Field(default_factory=list)
    outputs: dict[str, Measured] = Field(default_factory=dict)
    datasets: list[DatasetEntity] = Field(
        default_factory=list,
        description="Raw measurements the run used; its outputs were derived from them.",
    )
    files: list[DatasetFileEntity] = Field(
        default_factory=list,
        description="Data file versions the run generated (a sync), each derived from the "
        "datasets and from the file version before it.",
    )
    error_message: str | None = None

    @model_validator(mode="after")
    def _storable(self) -> TaskRecord:
        """Refuse at build what MongoDB cannot store, naming the parameter."""
        if (self.inputs or self.outputs) and not (self.chip_id and self.qid):
            raise ValueError("a run that reads or writes parameters needs a chip_id and a qid")
        for name, measured in self.outputs.items():
            check_measured(name, measured, self.task_name)
        return self


def check_measured(parameter_name: str, measured: Measured, task_name: str | None = None) -> None:
    """Raise if ``measured`` cannot be stored as a version of ``parameter_name``.

    Raises:
        InvalidValueError: The value is outside 64 bits or too long, or the unit too long.
    """
    problem = value_problem(measured.value)
    if problem is None and len(measured.unit.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        problem = f"the unit is longer than {MAX_TEXT_BYTES} UTF-8 bytes"
    if problem is not None:
        raise InvalidValueError(parameter_name, problem, task_name)


class RecordResult(BaseModel):
    """What recording a task run wrote (or deferred to the outbox)."""

    activity_id: str
    entity_ids: dict[str, str] = Field(default_factory=dict)
    versions: dict[str, int] = Field(default_factory=dict)
    deferred: bool = False


# --- query results -------------------------------------------------------------------


class HistoryResponse(BaseModel):
    """Versions of one parameter of one qid, newest first."""

    parameter_name: str
    qid: str
    project_id: str
    chip_id: str | None = Field(
        default=None, description="The chip whose version chain this is; null: every chip."
    )
    versions: list[ParameterVersion]
    total_versions: int


class EntitySummary(BaseModel):
    """The fields of an entity shown with a graph node."""

    parameter_name: str
    qid: str
    value: ParameterValue
    value_type: ValueType
    unit: str
    version: int
    task_name: str
    execution_id: str


class ActivitySummary(BaseModel):
    """The fields of an activity shown with a graph node."""

    task_name: str
    task_type: str = "calibration"
    qid: str
    status: ActivityStatus
    execution_id: str
    started_at: UtcDatetime
    ended_at: UtcDatetime | None


class GraphNode(BaseModel):
    """A node of a lineage or impact graph at its shortest distance from the origin.

    An entity node carries ``entity_type`` and one of ``entity`` (a parameter version),
    ``dataset`` (a raw measurement) or ``dataset_file`` (a synced file version); an
    activity node carries ``activity``. A node whose document is not stored has none.
    """

    node_type: NodeType
    node_id: str
    depth: int
    entity_type: EntityKind | None = None
    entity: EntitySummary | None = None
    dataset: DatasetEntity | None = None
    dataset_file: DatasetFileEntity | None = None
    activity: ActivitySummary | None = None


class GraphEdge(BaseModel):
    """A relation between two nodes of a graph."""

    relation_type: RelationType
    source_id: str
    target_id: str


class GraphResponse(BaseModel):
    """Ancestors (lineage) or descendants (impact) of an entity within ``max_depth``."""

    direction: Literal["lineage", "impact"]
    origin: GraphNode
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    max_depth: int


class AddedParameter(BaseModel):
    """A parameter written by the later execution only."""

    parameter_name: str
    qid: str
    value_after: ParameterValue
    unit: str


class RemovedParameter(BaseModel):
    """A parameter written by the earlier execution only."""

    parameter_name: str
    qid: str
    value_before: ParameterValue
    unit: str


class ChangedParameter(BaseModel):
    """A parameter written by both executions with different values."""

    parameter_name: str
    qid: str
    value_before: ParameterValue
    value_after: ParameterValue
    unit: str
    delta: OptionalFloat = None
    delta_percent: OptionalFloat = None


class CompareResponse(BaseModel):
    """Parameter differences between two executions."""

    execution_id_before: str
    execution_id_after: str
    added_parameters: list[AddedParameter]
    removed_parameters: list[RemovedParameter]
    changed_parameters: list[ChangedParameter]
    unchanged_count: int
    rel_tol: float


class StatsResponse(BaseModel):
    """Counts of what is recorded in a project."""

    project_id: str
    total_entities: int
    total_activities: int
    total_relations: int
    relations_by_type: dict[str, int]
    total_executions: int


class ExecutionSummary(BaseModel):
    """One execution: when it ran and how many task runs it has."""

    execution_id: str
    started_at: UtcDatetime
    ended_at: UtcDatetime | None
    task_count: int


class ExecutionsResponse(BaseModel):
    """Recent executions, newest first."""

    executions: list[ExecutionSummary]


class ParameterChange(BaseModel):
    """A new parameter version with its predecessor's value."""

    entity_id: str
    parameter_name: str
    qid: str
    value: ParameterValue
    value_type: ValueType
    unit: str
    previous_value: ParameterValue | None = None
    delta: OptionalFloat = None
    delta_percent: OptionalFloat = None
    version: int
    task_name: str
    execution_id: str
    valid_from: UtcDatetime


class ChangesResponse(BaseModel):
    """Recent changes, newest first; ``total_count`` counts all within the window."""

    changes: list[ParameterChange]
    total_count: int
    within_hours: float


class ExecutionDetail(BaseModel):
    """One execution: its task runs and the parameter versions they wrote."""

    execution_id: str
    project_id: str
    activities: list[Activity]
    versions: list[ParameterVersion]


class DatasetFileProvenance(BaseModel):
    """A synced file version with the sync activity that generated it."""

    file: DatasetFileEntity
    generated_by: Activity | None = Field(
        description="The sync activity; null if its wasGeneratedBy is missing."
    )


class DatasetProvenance(BaseModel):
    """A raw measurement's provenance: itself, its synced files, what was fitted from it."""

    entity_id: str
    project_id: str
    dataset: DatasetEntity
    files: list[DatasetFileProvenance] = Field(description="Oldest first.")
    derived_versions: list[ParameterVersion] = Field(
        description="The parameter versions derived from it directly (fitted from its data)."
    )
    used_by: list[Activity] = Field(description="Every activity that used it, in start order.")
