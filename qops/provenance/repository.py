"""Storage of provenance: the repository contract and its MongoDB implementation.

Collections (indexes are declared in :meth:`MongoProvenanceRepository.ensure_indexes`, each
next to the query it serves):

- ``parameter_versions``: one document per entity, ``_id`` = entity id; ``write_count``
  counts the writes to it (a retry of a task run rewrites its values in place);
- ``provenance_relations``: one document per relation, ``_id`` from :func:`relation_key`
  scoped by project, so a relation is stored once however often it is written;
- ``activities``: one document per task run, ``_id`` = activity id.

Every write is an idempotent upsert on a deterministic ``_id``; a task run is written with
a fixed number of bulk commands whatever the number of parameters it touches. Equality on
a single value is written ``{"$eq": value}``: the same query on MongoDB, and the form the
embedded server can serve from an index (docs/mongodb.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from pymongo import ASCENDING, DESCENDING, DeleteOne, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, OperationFailure

from qops.mongo import Document
from qops.provenance.errors import ProvenanceError
from qops.provenance.ids import activity_id, entity_id, relation_key
from qops.provenance.models import (
    Activity,
    ActivityStatus,
    NodeType,
    ParameterVersion,
    ProvenanceRelation,
    RecordResult,
    RelationType,
    TaskRecord,
)
from qops.provenance.values import (
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


def version_from_document(document: Document) -> ParameterVersion:
    """Decode a ``parameter_versions`` document (non-finite floats are stored as text)."""
    value_type = document["value_type"]
    return ParameterVersion(
        entity_id=document["entity_id"],
        parameter_name=document["parameter_name"],
        qid=document["qid"],
        value=decode_value(document["value"], value_type),
        value_type=value_type,
        unit=document.get("unit", ""),
        error=decode_optional_float(document.get("error")),
        version=document["version"],
        valid_from=document["valid_from"],
        valid_until=document.get("valid_until"),
        execution_id=document["execution_id"],
        task_id=document["task_id"],
        task_name=document["task_name"],
        project_id=document["project_id"],
        chip_id=document["chip_id"],
        previous_entity_id=document.get("previous_entity_id"),
    )


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


def _union(collection: Collection[Document], matches: Sequence[Document]) -> Iterator[Document]:
    """Documents matching any of ``matches``: one ``aggregate`` per :data:`UNION_CHUNK`.

    Each ``$match`` branch (joined by ``$unionWith``) is an exact index look-up on MongoDB
    and on the embedded server, which cannot serve ``$in`` or ``$or`` from an index
    (docs/mongodb.md). A document matching two branches is returned twice.
    """
    for start in range(0, len(matches), UNION_CHUNK):
        chunk = matches[start : start + UNION_CHUNK]
        pipeline: list[Document] = [{"$match": chunk[0]}]
        pipeline += [
            {"$unionWith": {"coll": collection.name, "pipeline": [{"$match": match}]}}
            for match in chunk[1:]
        ]
        yield from collection.aggregate(pipeline)


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
        """Write one task run: versions, relations, closed predecessors, then the activity.

        Idempotent: every document has a deterministic ``_id``, so writing the same record
        again (a retry after a crash part-way, an outbox replay) completes what is missing
        and duplicates nothing. A completed run costs five commands (for up to
        :data:`UNION_CHUNK` outputs) plus one look-up and one bulk write per round lost to
        concurrent writers of the same parameter.

        Raises:
            VersionConflictError: Concurrent writers won every numbering round.
            pymongo.errors.PyMongoError: The server failed (the caller retries or defers).
        """
        act_id = activity_id(record.execution_id, record.task_id)
        result = RecordResult(activity_id=act_id)
        if record.status is ActivityStatus.COMPLETED and record.outputs:
            written = self._write_versions(record)
            relations = self._relations_of(record, act_id, written)
            self.relations.bulk_write(
                [
                    UpdateOne({"_id": doc.pop("_id")}, {"$setOnInsert": doc}, upsert=True)
                    for doc in map(_relation_document, relations)
                ],
                ordered=False,
            )
            closes = [
                UpdateOne(
                    {"_id": version.previous_entity_id, "valid_until": None},
                    {"$set": {"valid_until": version.valid_from}},
                )
                for version in written.values()
                if version.previous_entity_id is not None
            ]
            if closes:
                self.versions.bulk_write(closes, ordered=False)
            result.entity_ids = {name: v.entity_id for name, v in written.items()}
            result.versions = {name: v.version for name, v in written.items()}
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
        document["agent"] = activity.agent.model_dump(mode="json")
        self.activity_docs.replace_one({"_id": act_id}, {"_id": act_id, **document}, upsert=True)
        return result

    def _write_versions(self, record: TaskRecord) -> dict[str, ParameterVersion]:
        """Insert one new version per output (or update this run's own, on a retry).

        One query for the current versions and one bulk upsert; a name whose planned version
        number a concurrent writer took (duplicate key on the unique version index) goes
        round again. A version this run wrote earlier keeps its number and takes the new
        values; it is recognised as current, or by its upsert matching instead of inserting.
        """
        ids = {
            name: entity_id(name, record.qid, record.execution_id, record.task_id)
            for name in record.outputs
        }
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
                        UpdateOne({"_id": ids[name]}, {"$set": values, "$inc": _ONE_WRITE})
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
                inserting.add(len(operations))
                operations.append(
                    UpdateOne(
                        {"_id": version.entity_id, "project_id": record.project_id},
                        {"$set": values, "$setOnInsert": rest, "$inc": _ONE_WRITE},
                        upsert=True,
                    )
                )
                planned.append(version)
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
            if matched:
                for doc in self.versions.find({"_id": {"$in": list(matched)}}):
                    own = version_from_document(doc)
                    planned[matched[own.entity_id]] = own
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
        """Raise if a lost write lost to a document of another project (not a writer race)."""
        for doc in self.versions.find(
            {"_id": {"$in": ids}, "project_id": {"$ne": project_id}}, {"project_id": 1}
        ):
            raise EntityIdCollisionError(str(doc["_id"]), str(doc["project_id"]), project_id)

    @staticmethod
    def _relations_of(
        record: TaskRecord, act_id: str, written: dict[str, ParameterVersion]
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
        relations = [
            relation(RelationType.USED, act_id, activity, used.entity_id, entity)
            for used in record.inputs
        ]
        for version in written.values():
            relations.append(
                relation(RelationType.WAS_GENERATED_BY, version.entity_id, entity, act_id, activity)
            )
            derived_from = [used.entity_id for used in record.inputs]
            if version.previous_entity_id is not None:
                derived_from.append(version.previous_entity_id)
            relations.extend(
                relation(RelationType.WAS_DERIVED_FROM, version.entity_id, entity, source, entity)
                for source in dict.fromkeys(derived_from)
            )
        return relations

    # --- reading ----------------------------------------------------------------------

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
        document = self.versions.find_one({"_id": entity_id})  # the _id index, then scope
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
        return [ProvenanceRelation.model_validate(d) for d in _union(self.relations, matches)]

    def entities(self, project_id: str, ids: Sequence[str]) -> list[ParameterVersion]:
        """The parameter versions with these ids (one query)."""
        if not ids:
            return []
        # By _id alone (the embedded server then uses the _id index); scoped here.
        return [
            version_from_document(doc)
            for doc in self.versions.find({"_id": {"$in": list(ids)}})
            if doc.get("project_id") == project_id
        ]

    def activities(self, project_id: str, ids: Sequence[str]) -> list[Activity]:
        """The activities with these ids (one query)."""
        if not ids:
            return []
        # By _id alone (the embedded server then uses the _id index); scoped here.
        return [
            Activity.model_validate(doc)
            for doc in self.activity_docs.find({"_id": {"$in": list(ids)}})
            if doc.get("project_id") == project_id
        ]

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
        match: Document = {"project_id": {"$eq": project_id}}
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
        activities = [Activity.model_validate(doc) for doc in found]
        return sorted(activities, key=lambda a: (a.started_at, a.activity_id))

    def chip_ids(self, project_id: str) -> list[str]:
        """The chips with a recorded activity in the project, sorted (one command)."""
        chips = _distinct(self.activity_docs, "chip_id", {"project_id": {"$eq": project_id}})
        return sorted(str(chip) for chip in chips)
