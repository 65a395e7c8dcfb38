"""Storage of provenance: the repository contract and its MongoDB implementation.

Collections (indexes are declared in :meth:`MongoProvenanceRepository.ensure_indexes`, each
next to the query it serves):

- ``parameter_versions``: one document per entity, ``_id`` = entity id; ``write_count``
  counts the writes to it (a retry of a task run rewrites its values in place);
- ``provenance_relations``: one document per relation, ``_id`` from :func:`relation_key`
  scoped by project, so a relation is stored once however often it is written;
- ``activities``: one document per task run, ``_id`` = activity id;
- ``provenance_entities``: the entities that are not parameter versions (raw measurements,
  ``dataset:{guid}``, and synced file versions, ``dataset-file:{uuid}:v{n}``), one document
  per entity and project, ``_id`` = ``{project_id}|{entity_id}`` (a measurement may be
  used in several projects).

Every write is an idempotent upsert on a deterministic ``_id``; a task run is written with
a fixed number of bulk commands whatever the number of parameters it touches. Equality on
a single value is written ``{"$eq": value}``: the same query on MongoDB, and the form the
embedded server can serve from an index (docs/mongodb.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, Protocol

from pymongo import ASCENDING, DESCENDING, DeleteOne, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, OperationFailure

from qops.mongo import Document
from qops.provenance.errors import ProvenanceError
from qops.provenance.ids import EntityKind, activity_id, entity_id, relation_key
from qops.provenance.models import (
    Activity,
    ActivityStatus,
    DatasetEntity,
    DatasetFileEntity,
    NodeType,
    OtherEntity,
    ParameterVersion,
    ProvenanceRelation,
    RecordResult,
    RelationType,
    TaskRecord,
    kind_of,
)
from qops.provenance.values import (
    ValueType,
    decode_optional_float,
    decode_value,
    encode_value,
    json_safe,
    value_type_of,
)
from qops.timeutil import as_utc

logger = logging.getLogger(__name__)

VERSIONS = "parameter_versions"
RELATIONS = "provenance_relations"
ACTIVITIES = "activities"
ENTITIES = "provenance_entities"
SYNC_TASK_TYPE = "sync"
"""The ``task_type`` of the activity that synced a run into the catalog."""

_DUPLICATE_KEY = 11000
UNION_CHUNK = 500
"""Most ids one relations query looks up (MongoDB allows 1000 pipeline stages)."""
_ONE_WRITE = {"write_count": 1}
_CHAINS_WITHOUT_CHIP = ("project_id", "parameter_name", "qid", "version")
"""Keys of the unique version index of databases written before chains were per chip."""
MAX_VERSION_ATTEMPTS = 64
"""How often recording retries after concurrent writers took the version it planned."""


class VersionConflictError(ProvenanceError):
    """Concurrent writers kept taking the version numbers a task run planned to write.

    Args:
        parameter_names: The parameters still unwritten.
        qid: The qubit.
        attempts: How many rounds were tried.
    """

    def __init__(self, parameter_names: list[str], qid: str, attempts: int) -> None:
        self.parameter_names = parameter_names
        self.qid = qid
        self.attempts = attempts
        super().__init__(
            f"could not number new versions of {parameter_names} for {qid!r} after "
            f"{attempts} attempts against concurrent writers"
        )


class EntityIdCollisionError(ProvenanceError):
    """An entity id is already used by another project (ids are unique across projects).

    Args:
        entity_id: The id.
        owner_project_id: The project that holds it.
        project_id: The project that tried to write it.
    """

    def __init__(self, entity_id: str, owner_project_id: str, project_id: str) -> None:
        self.entity_id = entity_id
        self.owner_project_id = owner_project_id
        self.project_id = project_id
        super().__init__(
            f"entity id {entity_id!r} is already recorded in project {owner_project_id!r}; "
            f"project {project_id!r} cannot reuse it (use distinct execution ids)"
        )


class ProvenanceRepository(Protocol):
    """What the provenance service and recorder need from storage."""

    def ensure_indexes(self) -> None:
        """Create the collections' indexes (idempotent)."""

    def record(self, record: TaskRecord) -> RecordResult:
        """Write one task run all-or-nothing-on-retry; see :class:`MongoProvenanceRepository`."""

    def current_versions(self, project_id: str, chip_id: str) -> list[ParameterVersion]:
        """Return the current version of every parameter of a chip (one query)."""

    def current_versions_stamp(self, project_id: str, chip_id: str) -> Hashable:
        """Return a small value that changes whenever ``current_versions`` would (one query)."""

    def current_inputs(
        self, project_id: str, chip_id: str, qid: str, parameter_names: Sequence[str]
    ) -> dict[str, ParameterVersion]:
        """Return the current version of each named parameter of ``qid`` of a chip."""

    def get_entity(self, project_id: str, entity_id: str) -> ParameterVersion | None:
        """Return one parameter version, or ``None``."""

    def history(
        self,
        project_id: str,
        parameter_name: str,
        qid: str,
        limit: int,
        chip_id: str | None = None,
    ) -> tuple[list[ParameterVersion], int]:
        """Return up to ``limit`` versions newest first (of one chip), and how many in all."""

    def relations_from(
        self, project_id: str, node_ids: Sequence[str], *, downstream: bool
    ) -> list[ProvenanceRelation]:
        """Relations whose source (``downstream=False``) or target is one of ``node_ids``."""

    def entities(self, project_id: str, ids: Sequence[str]) -> list[ParameterVersion]:
        """The parameter versions with these ids (one query)."""

    def previous_versions(
        self, project_id: str, versions: Sequence[ParameterVersion]
    ) -> dict[str, ParameterVersion]:
        """The predecessor in its chain of each of ``versions``, by entity id."""

    def activities(self, project_id: str, ids: Sequence[str]) -> list[Activity]:
        """The activities with these ids (one query)."""

    def versions_of_executions(
        self, project_id: str, execution_ids: Sequence[str]
    ) -> list[ParameterVersion]:
        """Every version written by the given executions."""

    def executions_known(self, project_id: str, execution_ids: Sequence[str]) -> set[str]:
        """Which of the execution ids have a recorded activity."""

    def recent_versions(
        self, project_id: str, since: datetime, limit: int, chip_id: str | None = None
    ) -> tuple[list[ParameterVersion], int]:
        """Versions valid from ``since`` on (of one chip), newest first, and how many in all."""

    def stats(self, project_id: str) -> tuple[int, int, dict[str, int], int]:
        """Counts of entities, activities, relations by type and executions."""

    def recent_executions(
        self, project_id: str, limit: int, chip_id: str | None = None
    ) -> list[tuple[str, datetime, datetime | None, int]]:
        """``(execution_id, started_at, ended_at, task_count)`` newest first (of one chip)."""

    def activities_of_execution(self, project_id: str, execution_id: str) -> list[Activity]:
        """The activities (task runs) of one execution, in start order (one query)."""

    def chip_ids(self, project_id: str) -> list[str]:
        """The chips with a recorded activity in the project, sorted (one command)."""

    def other_entities_by_id(self, project_id: str, ids: Sequence[str]) -> dict[str, OtherEntity]:
        """The datasets and file versions of a project with these entity ids (one query)."""

    def dataset_files(self, project_id: str, guid: str) -> list[DatasetFileEntity]:
        """The synced file versions of raw measurement ``guid``, oldest first (one query)."""


class StoredDocumentError(ProvenanceError):
    """A stored provenance document lacks a field every reader needs.

    Args:
        collection: Where it is stored.
        document_id: Its ``_id``.
        field: The missing field.
    """

    def __init__(self, collection: str, document_id: object, field: str) -> None:
        self.collection = collection
        self.document_id = document_id
        self.field = field
        super().__init__(
            f"document {document_id!r} of {collection} has no {field!r}, which the documented "
            "collection format requires"
        )


def _stored_type(value: object) -> ValueType:
    """The ``value_type`` of a document written without one: from the stored value."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return "str"
    return value_type_of(value)


def version_from_document(document: Document) -> ParameterVersion:
    """Decode a ``parameter_versions`` document (non-finite floats are stored as text).

    Only the documented fields are required; ``value_type`` defaults to the stored
    value's type, ``unit`` to ``""``, ``error`` and ``valid_until`` to ``None``, and a
    missing ``chip_id`` to ``""`` (a version of no chip: listed by project-wide queries,
    never in a chip's chain). qops's own extra fields (``previous_entity_id``,
    ``write_count``) are optional.

    Raises:
        StoredDocumentError: A documented required field is missing.
    """
    try:
        stored = document["value"]
        value_type = document.get("value_type") or _stored_type(stored)
        return ParameterVersion(
            entity_id=document["entity_id"],
            parameter_name=document["parameter_name"],
            qid=document["qid"],
            value=decode_value(stored, value_type),
            value_type=value_type,
            unit=document.get("unit") or "",
            error=decode_optional_float(document.get("error")),
            version=document["version"],
            valid_from=document["valid_from"],
            valid_until=document.get("valid_until"),
            execution_id=document["execution_id"],
            task_id=document["task_id"],
            task_name=document["task_name"],
            project_id=document["project_id"],
            chip_id=document.get("chip_id") or "",
            previous_entity_id=document.get("previous_entity_id"),
        )
    except KeyError as e:
        raise StoredDocumentError(VERSIONS, document.get("_id"), str(e.args[0])) from e


def activity_from_document(document: Document) -> Activity:
    """Decode an ``activities`` document; the agent and the error message are optional.

    Raises:
        StoredDocumentError: A documented required field is missing.
    """
    for required in ("activity_id", "execution_id", "task_id", "task_name", "started_at"):
        if required not in document:
            raise StoredDocumentError(ACTIVITIES, document.get("_id"), required)
    fields = {k: v for k, v in document.items() if k != "_id"}
    fields.setdefault("qid", "")
    fields.setdefault("chip_id", "")
    fields.setdefault("status", ActivityStatus.COMPLETED.value)
    if fields.get("chip_id") is None:
        fields["chip_id"] = ""
    return Activity.model_validate(fields)


def other_entity_from_document(document: Document) -> OtherEntity:
    """Decode a ``provenance_entities`` document (a dataset or a dataset file version)."""
    fields = {k: v for k, v in document.items() if k not in _ENTITY_BOOKKEEPING}
    if document.get("entity_type") == EntityKind.DATASET_FILE.value:
        return DatasetFileEntity.model_validate(fields)
    return DatasetEntity.model_validate(fields)


_ENTITY_BOOKKEEPING = {"_id", "entity_id", "entity_type", "project_id", "recorded_at"}


def _entity_document(project_id: str, entity: OtherEntity) -> tuple[str, Document, Document]:
    """``(_id, fields set once, fields set on every write)`` of an entity's document.

    A raw measurement keeps what its first writer knew and gains what later writers add
    (the calibration knows the experiment, the sync the source database); a file version
    rewritten after a crash takes the new file's facts.
    """
    once: Document = {
        "entity_id": entity.entity_id,
        "entity_type": kind_of(entity).value,
        "project_id": project_id,
        "guid": entity.guid,
    }
    every: Document = {
        k: v for k, v in entity.model_dump(mode="python", exclude={"guid"}).items() if v is not None
    }
    return f"{project_id}|{entity.entity_id}", once, every


def relation_from_document(document: Document) -> ProvenanceRelation:
    """Decode a ``provenance_relations`` document (``execution_id`` is optional)."""
    return ProvenanceRelation.model_validate({k: v for k, v in document.items() if k != "_id"})


def _aggregated_date(value: object) -> datetime:
    """A date from ``$min``/``$max``: a datetime, or the embedded server's extended-JSON text."""
    if isinstance(value, str):
        text = value
        if text.startswith("{"):
            text = str(json.loads(text)["$date"])
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError(f"expected a date from the server, got {value!r}")
    return as_utc(value)


def _current(
    project_id: str, chip_id: str, qid: str, parameter_names: Iterable[str]
) -> list[Document]:
    """Matches for the current versions of parameters of a qid of one chip (the chain index)."""
    return [
        {
            "project_id": {"$eq": project_id},
            "chip_id": {"$eq": chip_id},
            "parameter_name": {"$eq": name},
            "qid": {"$eq": qid},
            "valid_until": None,
        }
        for name in dict.fromkeys(parameter_names)
    ]


def _union(
    collection: Collection[Document],
    matches: Sequence[Document],
    chunk_size: int = UNION_CHUNK,
    *,
    newest_version: bool = False,
) -> Iterator[Document]:
    """Documents matching any of ``matches``: one ``aggregate`` per ``chunk_size`` matches.

    Each ``$match`` branch (joined by ``$unionWith``) is an exact index look-up on MongoDB
    and on the embedded server, which cannot serve ``$in`` or ``$or`` from an index
    (docs/mongodb.md). A document matching two branches is returned twice. With
    ``newest_version``, each branch returns only its highest ``version``.
    """
    tail: list[Document] = [{"$sort": {"version": -1}}, {"$limit": 1}] if newest_version else []
    for start in range(0, len(matches), chunk_size):
        chunk = matches[start : start + chunk_size]
        pipeline: list[Document] = [{"$match": chunk[0]}, *tail]
        pipeline += [
            {"$unionWith": {"coll": collection.name, "pipeline": [{"$match": match}, *tail]}}
            for match in chunk[1:]
        ]
        yield from collection.aggregate(pipeline)


LOOKUP_CHUNK = 10
"""Branches per ``aggregate`` when looking documents up by a documented id field: the
embedded server's cost of a ``$unionWith`` pipeline grows faster than its branch count
(measured on 20 000 versions: 9 ms for 10 branches, 1.9 s for 100)."""


def _chip_match(chip_id: str) -> Document:
    """Equality on ``chip_id``; the chip ``""`` is a document without one."""
    return {"$eq": chip_id or None}


def _distinct(collection: Collection[Document], field: str, match: Document) -> list[object]:
    """The distinct values of ``field`` among documents matching ``match`` (one command).

    A ``$group`` on the single field, not the ``distinct`` command: the embedded server's
    ``distinct`` ignores its whole filter once the filter holds an ``$in`` (docs/mongodb.md).
    """
    rows = collection.aggregate([{"$match": match}, {"$group": {"_id": f"${field}"}}])
    return [row["_id"] for row in rows]


def _relation_document(relation: ProvenanceRelation) -> Document:
    return {
        "_id": f"{relation.project_id}|"
        + relation_key(relation.relation_type, relation.source_id, relation.target_id),
        **relation.model_dump(mode="json"),
    }


def _newest(versions: Iterable[ParameterVersion]) -> dict[tuple[str, str], ParameterVersion]:
    """The highest version per ``(parameter_name, qid)``."""
    newest: dict[tuple[str, str], ParameterVersion] = {}
    for version in versions:
        key = (version.parameter_name, version.qid)
        if key not in newest or version.version > newest[key].version:
            newest[key] = version
    return newest


class MongoProvenanceRepository:
    """Provenance in MongoDB (standard semantics; runs on the embedded server too).

    Args:
        db: The database holding the three provenance collections.
    """

    def __init__(self, db: Database[Document]) -> None:
        self.db = db
        self.versions: Collection[Document] = db[VERSIONS]
        self.relations: Collection[Document] = db[RELATIONS]
        self.activity_docs: Collection[Document] = db[ACTIVITIES]
        self.other_entities: Collection[Document] = db[ENTITIES]

    def ensure_indexes(self) -> None:
        """Create every index the queries below rely on (idempotent)."""
        # A version chain is per (project, chip, parameter, qid). Databases written before
        # chains were per chip hold a unique index without the chip, which would refuse the
        # first version of a parameter on a second chip: it is dropped (found by its keys,
        # the embedded server names indexes its own way).
        if self._drop_index_on(_CHAINS_WITHOUT_CHIP):
            self.split_chains_by_chip()
        # history, current version of a parameter, version numbering; unique: no duplicate
        # version of a (project, chip, parameter, qid) even with concurrent writers.
        self.versions.create_index(
            [
                ("project_id", ASCENDING),
                ("chip_id", ASCENDING),
                ("parameter_name", ASCENDING),
                ("qid", ASCENDING),
                ("version", DESCENDING),
            ],
            unique=True,
        )
        # compare: versions written by an execution.
        self.versions.create_index([("project_id", ASCENDING), ("execution_id", ASCENDING)])
        # entity look-up by id (also the _id; kept as the documented unique key).
        self.versions.create_index([("entity_id", ASCENDING)], unique=True)
        # changes: recent versions.
        self.versions.create_index([("valid_from", DESCENDING)])
        # current_versions: current parameters of a chip.
        self.versions.create_index(
            [("project_id", ASCENDING), ("chip_id", ASCENDING), ("valid_until", ASCENDING)]
        )
        # lineage: relations leaving a node.
        self.relations.create_index([("project_id", ASCENDING), ("source_id", ASCENDING)])
        # impact: relations entering a node.
        self.relations.create_index([("project_id", ASCENDING), ("target_id", ASCENDING)])
        # stats: relations by type.
        self.relations.create_index([("relation_type", ASCENDING)])
        # a relation is stored once (the _id is derived from the same three fields).
        self.relations.create_index(
            [
                ("project_id", ASCENDING),
                ("relation_type", ASCENDING),
                ("source_id", ASCENDING),
                ("target_id", ASCENDING),
            ],
            unique=True,
        )
        # activity by id, unique per task run.
        self.activity_docs.create_index([("activity_id", ASCENDING)], unique=True)
        # executions and stats: activities of a project by execution.
        self.activity_docs.create_index([("project_id", ASCENDING), ("execution_id", ASCENDING)])
        # datasets and file versions by id, once per project (also the _id).
        self.other_entities.create_index(
            [("project_id", ASCENDING), ("entity_id", ASCENDING)], unique=True
        )
        # dataset_files: the file versions of one raw measurement.
        self.other_entities.create_index([("project_id", ASCENDING), ("guid", ASCENDING)])

    def _drop_index_on(self, fields: tuple[str, ...]) -> bool:
        """Drop the unique index of ``parameter_versions`` on exactly ``fields``, if any."""
        dropped = False
        for name, info in self.versions.index_information().items():
            keys = tuple(str(key) for key, _direction in info.get("key", []))
            if keys == fields and info.get("unique"):
                logger.info("dropping the index %s of %s on %s", name, VERSIONS, fields)
                try:
                    self.versions.drop_index(name)
                except OperationFailure:
                    # Another process dropped it meanwhile (and relinks the chains).
                    logger.info("index %s of %s already dropped", name, VERSIONS)
                    continue
                dropped = True
        return dropped

    def split_chains_by_chip(self) -> int:
        """Relink versions chained across chips (as written before chains were per chip).

        Within each ``(project, parameter, qid)``, a version's predecessor becomes the
        newest earlier version of its own chip (or none); its ``wasDerivedFrom`` to a
        version of another chip is removed unless its task run also used that version as
        an input, and one to its own predecessor is added; every version's ``valid_until``
        becomes its own chip's successor's ``valid_from`` (``null`` for the newest, which
        is current again). Version numbers are kept, so a split chain may start above 1.
        Idempotent; run once by :meth:`ensure_indexes` when it drops the old index.

        Returns:
            How many versions were relinked or reopened.
        """
        fields = (
            "project_id",
            "chip_id",
            "parameter_name",
            "qid",
            "version",
            "valid_from",
            "previous_entity_id",
            "execution_id",
            "task_id",
        )
        groups: dict[tuple[str, str, str], list[Document]] = {}
        for doc in self.versions.find({}, dict.fromkeys(fields, 1)):
            key = (str(doc["project_id"]), str(doc["parameter_name"]), str(doc["qid"]))
            groups.setdefault(key, []).append(doc)
        version_ops: list[UpdateOne] = []
        relation_ops: list[UpdateOne | DeleteOne] = []
        for (project, _name, _qid), docs in groups.items():
            docs.sort(key=lambda d: int(d["version"]))
            old_successor = {
                d["previous_entity_id"]: d for d in docs if d.get("previous_entity_id")
            }
            last_of_chip: dict[str, Document] = {}
            new_successor: dict[str, Document | None] = {}
            for doc in docs:
                own = last_of_chip.get(str(doc["chip_id"]))
                new_successor[str(doc["_id"])] = None
                if own is not None:
                    new_successor[str(own["_id"])] = doc
                last_of_chip[str(doc["chip_id"])] = doc
                old_previous = doc.get("previous_entity_id")
                own_id = None if own is None else str(own["_id"])
                if old_previous == own_id:
                    continue
                version_ops.append(
                    UpdateOne({"_id": doc["_id"]}, {"$set": {"previous_entity_id": own_id}})
                )
                act_id = activity_id(str(doc["execution_id"]), str(doc["task_id"]))
                derived = RelationType.WAS_DERIVED_FROM
                if old_previous is not None:
                    used = relation_key(RelationType.USED, act_id, str(old_previous))
                    if self.relations.find_one({"_id": f"{project}|{used}"}, {"_id": 1}) is None:
                        dropped = relation_key(derived, str(doc["_id"]), str(old_previous))
                        relation_ops.append(DeleteOne({"_id": f"{project}|{dropped}"}))
                if own_id is not None:
                    relation = _relation_document(
                        ProvenanceRelation(
                            relation_type=derived,
                            source_id=str(doc["_id"]),
                            source_type=NodeType.ENTITY,
                            target_id=own_id,
                            target_type=NodeType.ENTITY,
                            project_id=project,
                            execution_id=str(doc["execution_id"]),
                        )
                    )
                    relation_ops.append(
                        UpdateOne(
                            {"_id": relation.pop("_id")}, {"$setOnInsert": relation}, upsert=True
                        )
                    )
            for doc in docs:
                successor = new_successor[str(doc["_id"])]
                before = old_successor.get(doc["_id"])
                if (None if before is None else before["_id"]) == (
                    None if successor is None else successor["_id"]
                ):
                    continue
                until = None if successor is None else successor["valid_from"]
                version_ops.append(UpdateOne({"_id": doc["_id"]}, {"$set": {"valid_until": until}}))
        if relation_ops:
            self.relations.bulk_write(relation_ops, ordered=False)
        if version_ops:
            self.versions.bulk_write(version_ops, ordered=False)
            logger.info("split version chains by chip: %d updates", len(version_ops))
        return len(version_ops)

    # --- writing ----------------------------------------------------------------------

    def record(self, record: TaskRecord) -> RecordResult:
        """Write one task run: the activity, its relations, the versions, then the closes.

        The order keeps readers safe at every point, also when the writer dies part-way:

        1. the activity (its ``status`` and times), and the raw measurements it used;
        2. the relations: ``used`` per input and raw measurement, per new version
           ``wasGeneratedBy``, and ``wasDerivedFrom`` to each input, each raw measurement
           and the predecessor it is planned on; per generated file version
           ``wasGeneratedBy``, and ``wasDerivedFrom`` to each raw measurement and to the
           file version before it;
        3. the generated file versions, then the new parameter versions (one bulk upsert
           each; an entity appears with its activity and relations already in place, and a
           parameter version is current from then on: readers take the newest open
           version of a chain);
        4. the predecessors' ``valid_until`` (until then a chain has two open versions,
           and the newer is current).

        A writer that dies between two steps leaves an activity without (all) its
        versions, or relations naming versions not yet written, or an open predecessor;
        never a version without its activity or relations. Writing the same record again
        (the recorder's write-ahead journal, an outbox replay, a retry) completes it:
        every document has a deterministic ``_id`` and is written by an idempotent upsert.
        A completed calibration run costs five commands (for up to :data:`UNION_CHUNK`
        outputs), one more when it names raw measurements, plus a look-up, a relation
        delete and a bulk write per round lost to concurrent writers; a sync's run (a
        measurement used, a file version generated, no parameters) costs four, five when
        the file replaces an earlier version (is that one recorded?).

        Raises:
            VersionConflictError: Concurrent writers won every numbering round.
            EntityIdCollisionError: An entity id is held by another project.
            pymongo.errors.PyMongoError: The server failed (the caller retries or defers).
        """
        act_id = activity_id(record.execution_id, record.task_id)
        result = RecordResult(activity_id=act_id)
        self._write_activity(record, act_id)
        completed = record.status is ActivityStatus.COMPLETED
        if completed and record.datasets:
            self._write_entities(record.project_id, record.datasets)
        if completed and not record.outputs and (record.inputs or record.datasets or record.files):
            # A completed run without parameter outputs (a maintenance check, a sync)
            # records what it used and the files it generated.
            recorded = self._recorded_predecessors(record)
            self._write_relations(self._relations_of(record, act_id, {}, recorded))
        if completed and record.files:
            self._write_entities(record.project_id, record.files)
        if completed and record.outputs:
            written = self._write_versions(record, act_id)
            closes = [
                UpdateOne(
                    {"entity_id": {"$eq": version.previous_entity_id}, "valid_until": None},
                    {"$set": {"valid_until": version.valid_from}},
                )
                for version in written.values()
                if version.previous_entity_id is not None
            ]
            if closes:
                self.versions.bulk_write(closes, ordered=False)
            result.entity_ids = {name: v.entity_id for name, v in written.items()}
            result.versions = {name: v.version for name, v in written.items()}
        return result

    def _write_activity(self, record: TaskRecord, act_id: str) -> None:
        activity = Activity(
            activity_id=act_id,
            execution_id=record.execution_id,
            task_id=record.task_id,
            task_name=record.task_name,
            task_type=record.task_type,
            qid=record.qid,
            started_at=record.started_at,
            ended_at=record.ended_at,
            status=record.status,
            project_id=record.project_id,
            chip_id=record.chip_id,
            agent=record.agent,
            error_message=record.error_message,
        )
        document = activity.model_dump(mode="python")
        document["status"] = activity.status.value
        # An agent without a host is stored as before the host was recorded.
        document["agent"] = record.agent.model_dump(mode="json", exclude_none=True)
        # replace_one keeps the dates real dates on the embedded server (docs/mongodb.md).
        self.activity_docs.replace_one({"_id": act_id}, {"_id": act_id, **document}, upsert=True)

    def _recorded_predecessors(self, record: TaskRecord) -> set[str]:
        """Which file versions replaced by ``record``'s files are recorded (one query, or
        none when every file is a first version).

        A file version synced before the sync recorded provenance has no entity: its
        successor is not derived from it, so no relation names what is not stored.
        """
        wanted = [f.previous_entity_id for f in record.files if f.previous_entity_id]
        if not wanted:
            return set()
        return set(self.other_entities_by_id(record.project_id, wanted))

    def _write_entities(self, project_id: str, entities: Sequence[OtherEntity]) -> None:
        """Upsert datasets or file versions (one command; each stored once per project)."""
        operations = []
        for entity in entities:
            key, once, every = _entity_document(project_id, entity)
            operations.append(
                UpdateOne({"_id": key}, {"$setOnInsert": once, "$set": every}, upsert=True)
            )
        try:
            self.other_entities.bulk_write(operations, ordered=False)
        except BulkWriteError as e:
            # A concurrent writer inserted the same entity first: write ours over it.
            errors: list[dict[str, Any]] = e.details.get("writeErrors", [])
            if any(err.get("code") != _DUPLICATE_KEY for err in errors):
                raise
            retry = [operations[int(err["index"])] for err in errors]
            self.other_entities.bulk_write(retry, ordered=False)

    def _write_relations(self, relations: Iterable[ProvenanceRelation]) -> None:
        """Upsert relations on their documented fields (one command; each stored once)."""
        operations = [
            UpdateOne(
                {
                    "project_id": {"$eq": doc["project_id"]},
                    "relation_type": {"$eq": doc["relation_type"]},
                    "source_id": {"$eq": doc["source_id"]},
                    "target_id": {"$eq": doc["target_id"]},
                },
                {"$setOnInsert": doc},
                upsert=True,
            )
            for doc in map(_relation_document, relations)
        ]
        if not operations:
            return
        try:
            self.relations.bulk_write(operations, ordered=False)
        except BulkWriteError as e:
            # A concurrent writer of the same record inserted the same relation first.
            errors: list[dict[str, Any]] = e.details.get("writeErrors", [])
            if any(err.get("code") != _DUPLICATE_KEY for err in errors):
                raise

    def _drop_derivations(self, project_id: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Delete ``wasDerivedFrom`` relations planned on a predecessor that did not hold."""
        operations = [
            DeleteOne(
                {
                    "project_id": {"$eq": project_id},
                    "relation_type": {"$eq": RelationType.WAS_DERIVED_FROM.value},
                    "source_id": {"$eq": source},
                    "target_id": {"$eq": target},
                }
            )
            for source, target in pairs
        ]
        if operations:
            self.relations.bulk_write(operations, ordered=False)

    def _write_versions(self, record: TaskRecord, act_id: str) -> dict[str, ParameterVersion]:
        """Insert one new version per output (or update this run's own, on a retry).

        Per round: one query for the current versions, one relations upsert (see
        :meth:`record`) and one bulk upsert of the versions; a name whose planned version
        number a concurrent writer took (duplicate key on the unique version index) goes
        round again, and the ``wasDerivedFrom`` to the predecessor it was planned on is
        deleted first. A version this run wrote earlier keeps its number and takes the new
        values; it is recognised as current, or by its upsert matching instead of inserting.
        """
        ids = {
            name: entity_id(name, record.qid, record.execution_id, record.task_id)
            for name in record.outputs
        }
        inputs = {used.entity_id for used in record.inputs}
        pending = sorted(record.outputs)
        written: dict[str, ParameterVersion] = {}
        for _attempt in range(MAX_VERSION_ATTEMPTS):
            current = _newest(
                map(
                    version_from_document,
                    _union(
                        self.versions,
                        _current(record.project_id, record.chip_id, record.qid, pending),
                    ),
                )
            )
            # A version is valid from its measurement (the end of the run), also when it
            # is written later from the outbox; never before its predecessor.
            measured_at = record.ended_at
            operations: list[UpdateOne] = []
            planned: list[ParameterVersion] = []
            inserting: set[int] = set()
            for name in pending:
                measured = record.outputs[name]
                values: Document = {
                    "value": encode_value(measured.value),
                    "value_type": value_type_of(measured.value),
                    "unit": measured.unit,
                    "error": json_safe(measured.error),
                }
                previous = current.get((name, record.qid))
                if previous is not None and previous.entity_id == ids[name]:
                    operations.append(
                        UpdateOne(
                            {"entity_id": {"$eq": ids[name]}},
                            {"$set": values, "$inc": _ONE_WRITE},
                        )
                    )
                    planned.append(previous.model_copy(update={"value": measured.value}))
                    continue
                version = ParameterVersion(
                    entity_id=ids[name],
                    parameter_name=name,
                    qid=record.qid,
                    value=measured.value,
                    value_type=values["value_type"],
                    unit=measured.unit,
                    error=measured.error,
                    version=1 if previous is None else previous.version + 1,
                    valid_from=measured_at
                    if previous is None
                    else max(measured_at, previous.valid_from),
                    execution_id=record.execution_id,
                    task_id=record.task_id,
                    task_name=record.task_name,
                    project_id=record.project_id,
                    chip_id=record.chip_id,
                    previous_entity_id=None if previous is None else previous.entity_id,
                )
                rest = version.model_dump(mode="python", exclude={"value", "error", "unit"})
                del rest["value_type"]
                rest["_id"] = version.entity_id
                inserting.add(len(operations))
                operations.append(
                    UpdateOne(
                        {
                            "entity_id": {"$eq": version.entity_id},
                            "project_id": {"$eq": record.project_id},
                        },
                        {"$set": values, "$setOnInsert": rest, "$inc": _ONE_WRITE},
                        upsert=True,
                    )
                )
                planned.append(version)
            self._write_relations(
                self._relations_of(record, act_id, {v.parameter_name: v for v in planned})
            )
            lost: set[int] = set()
            upserted: set[int]
            try:
                outcome = self.versions.bulk_write(operations, ordered=False)
                upserted = set(outcome.upserted_ids or {})
            except BulkWriteError as e:
                errors: list[dict[str, Any]] = e.details.get("writeErrors", [])
                if any(err.get("code") != _DUPLICATE_KEY for err in errors):
                    raise
                lost = {int(err["index"]) for err in errors}
                upserted = {int(u["index"]) for u in e.details.get("upserted", [])}
            # New-version upserts that matched instead of inserting found this run's own
            # version from an earlier attempt (no longer current): read its real number.
            matched = {
                planned[i].entity_id: i for i in inserting if i not in lost and i not in upserted
            }
            stale: list[tuple[str, str]] = []
            if matched:
                for doc in self._by_id(self.versions, "entity_id", record.project_id, [*matched]):
                    own = version_from_document(doc)
                    plan = planned[matched[own.entity_id]]
                    if plan.previous_entity_id not in (None, own.previous_entity_id):
                        stale.append((own.entity_id, str(plan.previous_entity_id)))
                    planned[matched[own.entity_id]] = own
            for index in lost:
                if planned[index].previous_entity_id is not None:
                    stale.append((planned[index].entity_id, str(planned[index].previous_entity_id)))
            self._drop_derivations(
                record.project_id, [pair for pair in stale if pair[1] not in inputs]
            )
            for index, version in enumerate(planned):
                if index not in lost:
                    written[version.parameter_name] = version
            pending = [version.parameter_name for i, version in enumerate(planned) if i in lost]
            if not pending:
                return written
            self._check_foreign_ids(record.project_id, [ids[name] for name in pending])
            logger.debug("version numbers of %s for %s taken; retrying", pending, record.qid)
        raise VersionConflictError(pending, record.qid, MAX_VERSION_ATTEMPTS)

    def _check_foreign_ids(self, project_id: str, ids: list[str]) -> None:
        """Raise if a lost write lost to a document of another project (not a writer race).

        The relations this project wrote for the foreign id are deleted first.
        """
        for wanted in ids:
            doc = self.versions.find_one({"entity_id": {"$eq": wanted}}, {"project_id": 1})
            if doc is not None and doc.get("project_id") != project_id:
                self.relations.delete_many(
                    {"project_id": {"$eq": project_id}, "source_id": {"$eq": wanted}}
                )
                raise EntityIdCollisionError(wanted, str(doc["project_id"]), project_id)

    @staticmethod
    def _relations_of(
        record: TaskRecord,
        act_id: str,
        written: dict[str, ParameterVersion],
        recorded_files: AbstractSet[str] = frozenset(),
    ) -> list[ProvenanceRelation]:
        def relation(
            kind: RelationType,
            source: str,
            source_type: NodeType,
            target: str,
            target_type: NodeType,
        ) -> ProvenanceRelation:
            return ProvenanceRelation(
                relation_type=kind,
                source_id=source,
                source_type=source_type,
                target_id=target,
                target_type=target_type,
                project_id=record.project_id,
                execution_id=record.execution_id,
            )

        entity, activity = NodeType.ENTITY, NodeType.ACTIVITY
        measured = [dataset.entity_id for dataset in record.datasets]
        relations = [
            relation(RelationType.USED, act_id, activity, used, entity)
            for used in dict.fromkeys([*(u.entity_id for u in record.inputs), *measured])
        ]
        for file in record.files:
            relations.append(
                relation(RelationType.WAS_GENERATED_BY, file.entity_id, entity, act_id, activity)
            )
            previous = file.previous_entity_id
            sources = measured
            if previous is not None and previous in recorded_files:
                sources = [*measured, previous]
            relations.extend(
                relation(RelationType.WAS_DERIVED_FROM, file.entity_id, entity, source, entity)
                for source in dict.fromkeys(sources)
            )
        for version in written.values():
            relations.append(
                relation(RelationType.WAS_GENERATED_BY, version.entity_id, entity, act_id, activity)
            )
            derived_from = [*(used.entity_id for used in record.inputs), *measured]
            if version.previous_entity_id is not None:
                derived_from.append(version.previous_entity_id)
            relations.extend(
                relation(RelationType.WAS_DERIVED_FROM, version.entity_id, entity, source, entity)
                for source in dict.fromkeys(derived_from)
            )
        return relations

    # --- reading ----------------------------------------------------------------------

    def all_versions(self, project_id: str | None = None) -> list[ParameterVersion]:
        """Every version (of one project), for integrity checks (one query)."""
        query: Document = {} if project_id is None else {"project_id": {"$eq": project_id}}
        return [version_from_document(doc) for doc in self.versions.find(query)]

    def all_relations(self, project_id: str | None = None) -> list[ProvenanceRelation]:
        """Every relation (of one project), for integrity checks (one query)."""
        query: Document = {} if project_id is None else {"project_id": {"$eq": project_id}}
        return [relation_from_document(doc) for doc in self.relations.find(query)]

    def all_activity_ids(self, project_id: str | None = None) -> set[tuple[str, str]]:
        """``(project_id, activity_id)`` of every activity (of one project; one query)."""
        query: Document = {} if project_id is None else {"project_id": {"$eq": project_id}}
        found = self.activity_docs.find(query, {"project_id": 1, "activity_id": 1})
        return {(str(doc.get("project_id")), str(doc.get("activity_id"))) for doc in found}

    def all_other_entities(self, project_id: str | None = None) -> list[tuple[str, OtherEntity]]:
        """``(project_id, entity)`` of every dataset and file version (one query)."""
        query: Document = {} if project_id is None else {"project_id": {"$eq": project_id}}
        return [
            (str(doc.get("project_id")), other_entity_from_document(doc))
            for doc in self.other_entities.find(query)
        ]

    def other_entities_by_id(self, project_id: str, ids: Sequence[str]) -> dict[str, OtherEntity]:
        """The datasets and file versions of a project with these entity ids (one query)."""
        wanted = [f"{project_id}|{i}" for i in dict.fromkeys(ids)]
        if not wanted:
            return {}
        found = self.other_entities.find({"_id": {"$in": wanted}})
        return {str(doc["entity_id"]): other_entity_from_document(doc) for doc in found}

    def dataset_files(self, project_id: str, guid: str) -> list[DatasetFileEntity]:
        """The synced file versions of raw measurement ``guid``, oldest first (one query)."""
        found = self.other_entities.find({"project_id": {"$eq": project_id}, "guid": {"$eq": guid}})
        files = [
            entity
            for entity in map(other_entity_from_document, found)
            if isinstance(entity, DatasetFileEntity)
        ]
        return sorted(files, key=lambda f: (f.dataset_uuid, f.version))

    def set_valid_until(self, until: dict[str, datetime]) -> None:
        """Set ``valid_until`` of versions by entity id (one bulk write)."""
        if until:
            self.versions.bulk_write(
                [
                    UpdateOne({"entity_id": {"$eq": eid}}, {"$set": {"valid_until": when}})
                    for eid, when in until.items()
                ],
                ordered=False,
            )

    def current_versions(self, project_id: str, chip_id: str) -> list[ParameterVersion]:
        """Return the current version of every parameter of a chip (one query).

        "Current" is the newest version of each ``(parameter_name, qid)`` of the chip's own
        chains (another chip's versions never close this chip's); while a writer
        is between inserting a version and closing its predecessor both have no
        ``valid_until``, and the newer one wins.
        """
        found = (
            version_from_document(doc)
            for doc in self.versions.find(
                {
                    "project_id": {"$eq": project_id},
                    "chip_id": {"$eq": chip_id},
                    "valid_until": None,
                }
            )
        )
        return sorted(_newest(found).values(), key=lambda v: (v.qid, v.parameter_name))

    def current_versions_stamp(self, project_id: str, chip_id: str) -> Hashable:
        """Return ``(count, sum of version, sum of write_count)`` of a chip's open versions.

        One aggregation over the documents :meth:`current_versions` reads (same index);
        three numbers come back. Once writers have closed their predecessors, the version
        sum is the sum of the current version numbers: every new version adds 1 to it (a
        first version also adds 1 to the count), and a half-written successor, open next to
        its predecessor, adds its whole number meanwhile. A retry that rewrites a version in
        place adds to the write counts. So the stamp changes whenever the current versions
        do, without reading them.
        """
        rows = list(
            self.versions.aggregate(
                [
                    {
                        "$match": {
                            "project_id": {"$eq": project_id},
                            "chip_id": {"$eq": chip_id},
                            "valid_until": None,
                        }
                    },
                    {
                        "$group": {
                            "_id": None,
                            "count": {"$sum": 1},
                            "versions": {"$sum": "$version"},
                            "writes": {"$sum": "$write_count"},
                        }
                    },
                ]
            )
        )
        if not rows:
            return (0, 0, 0)
        row = rows[0]
        return (int(row["count"]), int(row["versions"]), int(row["writes"]))

    def current_inputs(
        self, project_id: str, chip_id: str, qid: str, parameter_names: Sequence[str]
    ) -> dict[str, ParameterVersion]:
        """Return the current version of each named parameter of ``qid`` of a chip (one query)."""
        if not parameter_names:
            return {}
        found = map(
            version_from_document,
            _union(self.versions, _current(project_id, chip_id, qid, parameter_names)),
        )
        return {name: version for (name, _), version in _newest(found).items()}

    def get_entity(self, project_id: str, entity_id: str) -> ParameterVersion | None:
        """Return one parameter version, or ``None``."""
        # The documented unique entity_id index; the _id may be anything (an ObjectId).
        document = self.versions.find_one({"entity_id": {"$eq": entity_id}})
        if document is None or document.get("project_id") != project_id:
            return None
        return version_from_document(document)

    def history(
        self,
        project_id: str,
        parameter_name: str,
        qid: str,
        limit: int,
        chip_id: str | None = None,
    ) -> tuple[list[ParameterVersion], int]:
        """Return up to ``limit`` versions newest first, and how many there are in all.

        With ``chip_id``, the chain of that chip (by version number, from the chain index);
        without, the versions of every chip of the project, newest ``valid_from`` first.
        """
        query: Document = {
            "project_id": {"$eq": project_id},
            "parameter_name": {"$eq": parameter_name},
            "qid": {"$eq": qid},
        }
        if chip_id is not None:
            query["chip_id"] = {"$eq": chip_id}
            order = [("version", DESCENDING)]
        else:
            order = [("valid_from", DESCENDING), ("version", DESCENDING)]
        versions = [
            version_from_document(doc) for doc in self.versions.find(query).sort(order).limit(limit)
        ]
        return versions, self.versions.count_documents(query)

    def relations_from(
        self, project_id: str, node_ids: Sequence[str], *, downstream: bool
    ) -> list[ProvenanceRelation]:
        """Relations whose source (``downstream=False``) or target is one of ``node_ids``.

        One command per :data:`UNION_CHUNK` ids (see :func:`_union`).
        """
        field = "target_id" if downstream else "source_id"
        matches = [
            {"project_id": {"$eq": project_id}, field: {"$eq": node}}
            for node in dict.fromkeys(node_ids)
        ]
        return [relation_from_document(d) for d in _union(self.relations, matches)]

    def entities(self, project_id: str, ids: Sequence[str]) -> list[ParameterVersion]:
        """The parameter versions with these ids (see :meth:`_by_id`)."""
        return [
            version_from_document(doc)
            for doc in self._by_id(self.versions, "entity_id", project_id, ids)
        ]

    def activities(self, project_id: str, ids: Sequence[str]) -> list[Activity]:
        """The activities with these ids (see :meth:`_by_id`)."""
        return [
            activity_from_document(doc)
            for doc in self._by_id(self.activity_docs, "activity_id", project_id, ids)
        ]

    @staticmethod
    def _by_id(
        collection: Collection[Document], field: str, project_id: str, ids: Sequence[str]
    ) -> list[Document]:
        """Documents of a project whose ``field`` is one of ``ids``, each once.

        qops writes ``_id`` = the id, so one ``_id: {$in}`` (served by the embedded
        server's ``_id`` column) finds its own documents; ids it does not find (documents
        with any other ``_id``, such as an ObjectId) are looked up on ``field``'s index,
        :data:`LOOKUP_CHUNK` per command. No command when ``ids`` is empty; one when all
        are qops's own.
        """
        wanted = set(ids)
        if not wanted:
            return []
        found: dict[str, Document] = {}
        for doc in collection.find({"_id": {"$in": list(wanted)}}):
            if doc.get(field) in wanted:
                found[str(doc[field])] = doc
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        matches = [{field: {"$eq": i}} for i in missing]
        for doc in _union(collection, matches, LOOKUP_CHUNK):
            found.setdefault(str(doc[field]), doc)
        return [doc for doc in found.values() if doc.get("project_id") == project_id]

    def previous_versions(
        self, project_id: str, versions: Sequence[ParameterVersion]
    ) -> dict[str, ParameterVersion]:
        """The predecessor of each version in its chain, by the version's entity id.

        The predecessor is the version of the same ``(project, chip, parameter, qid)``
        with the highest number below it. qops's ``previous_entity_id`` names it when
        present (one look-up for all); for a version without it (the documented format),
        one branch per version on the chain index, :data:`LOOKUP_CHUNK` per command.
        A first version has none.
        """
        named = {v.entity_id: v.previous_entity_id for v in versions if v.previous_entity_id}
        by_id = {v.entity_id: v for v in self.entities(project_id, list(named.values()))}
        previous = {eid: by_id[pid] for eid, pid in named.items() if pid in by_id}
        unnamed = [v for v in versions if not v.previous_entity_id and v.version > 1]
        matches = [
            {
                "project_id": {"$eq": project_id},
                "chip_id": _chip_match(v.chip_id),
                "parameter_name": {"$eq": v.parameter_name},
                "qid": {"$eq": v.qid},
                "version": {"$lt": v.version},
            }
            for v in unnamed
        ]
        found = [
            version_from_document(doc)
            for doc in _union(self.versions, matches, LOOKUP_CHUNK, newest_version=True)
        ]
        for version in unnamed:
            below = [
                f
                for f in found
                if (f.chip_id, f.parameter_name, f.qid)
                == (version.chip_id, version.parameter_name, version.qid)
                and f.version < version.version
            ]
            if below:
                previous[version.entity_id] = max(below, key=lambda f: f.version)
        return previous

    def versions_of_executions(
        self, project_id: str, execution_ids: Sequence[str]
    ) -> list[ParameterVersion]:
        """Every version written by the given executions (one query)."""
        return [
            version_from_document(doc)
            for doc in self.versions.find(
                {"project_id": {"$eq": project_id}, "execution_id": {"$in": list(execution_ids)}}
            )
        ]

    def executions_known(self, project_id: str, execution_ids: Sequence[str]) -> set[str]:
        """Which of the execution ids have a recorded activity (one query)."""
        match = {"project_id": {"$eq": project_id}, "execution_id": {"$in": list(execution_ids)}}
        return {str(value) for value in _distinct(self.activity_docs, "execution_id", match)}

    def recent_versions(
        self, project_id: str, since: datetime, limit: int, chip_id: str | None = None
    ) -> tuple[list[ParameterVersion], int]:
        """Versions valid from ``since`` on (of one chip), newest first, and how many in all."""
        query: Document = {"project_id": {"$eq": project_id}, "valid_from": {"$gte": since}}
        if chip_id is not None:
            query["chip_id"] = {"$eq": chip_id}
        versions = [
            version_from_document(doc)
            for doc in self.versions.find(query)
            .sort([("valid_from", DESCENDING), ("version", DESCENDING)])
            .limit(limit)
        ]
        return versions, self.versions.count_documents(query)

    def stats(self, project_id: str) -> tuple[int, int, dict[str, int], int]:
        """Counts of entities, activities, relations by type and executions."""
        query = {"project_id": {"$eq": project_id}}
        by_type = {
            str(row["_id"]): int(row["count"])
            for row in self.relations.aggregate(
                [{"$match": query}, {"$group": {"_id": "$relation_type", "count": {"$sum": 1}}}]
            )
        }
        executions = len(_distinct(self.activity_docs, "execution_id", query))
        return (
            self.versions.count_documents(query),
            self.activity_docs.count_documents(query),
            by_type,
            executions,
        )

    def recent_executions(
        self, project_id: str, limit: int, chip_id: str | None = None
    ) -> list[tuple[str, datetime, datetime | None, int]]:
        """``(execution_id, started_at, ended_at, task_count)`` newest first (one command).

        With ``chip_id``, only the executions that ran a task on that chip.
        """
        # A sync is a task run of no execution of the lab's: it is not listed.
        match: Document = {"project_id": {"$eq": project_id}, "task_type": {"$ne": SYNC_TASK_TYPE}}
        if chip_id is not None:
            match["chip_id"] = {"$eq": chip_id}
        rows = self.activity_docs.aggregate(
            [
                {"$match": match},
                {
                    "$group": {
                        "_id": "$execution_id",
                        "started_at": {"$min": "$started_at"},
                        "ended_at": {"$max": "$ended_at"},
                        "task_count": {"$sum": 1},
                    }
                },
                {"$sort": {"started_at": -1}},
                {"$limit": limit},
            ]
        )
        return [
            (
                str(row["_id"]),
                _aggregated_date(row["started_at"]),
                None if row.get("ended_at") is None else _aggregated_date(row["ended_at"]),
                int(row["task_count"]),
            )
            for row in rows
        ]

    def activities_of_execution(self, project_id: str, execution_id: str) -> list[Activity]:
        """The activities (task runs) of one execution, in start order (one query)."""
        # Served by the (project_id, execution_id) index of the activities.
        found = self.activity_docs.find(
            {"project_id": {"$eq": project_id}, "execution_id": {"$eq": execution_id}}
        )
        activities = [activity_from_document(doc) for doc in found]
        return sorted(activities, key=lambda a: (a.started_at, a.activity_id))

    def chip_ids(self, project_id: str) -> list[str]:
        """The chips with a recorded activity in the project, sorted (one command)."""
        chips = _distinct(self.activity_docs, "chip_id", {"project_id": {"$eq": project_id}})
        return sorted(str(chip) for chip in chips if chip)
