"""Integrity of stored provenance: find broken invariants (``check``) and fix the safe ones
(``repair``).

Invariants (docs/provenance.md, "Integrity"):

- per ``(project, chip, parameter, qid)`` one open version (``valid_until`` null), the
  newest; versions numbered without gaps;
- every closed version's ``valid_until`` is its successor's ``valid_from``;
- every version, and every synced file version, has a ``wasGeneratedBy`` to an activity
  that is stored;
- every relation's ends are stored (an entity in ``parameter_versions`` or
  ``provenance_entities``, an activity in ``activities``);
- no record of this machine's write-ahead journal is abandoned (a writer died part-way).

Both read the whole of a project's provenance (four queries) and work in memory: they are
maintenance commands, not served per request.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from qops.provenance.models import DatasetFileEntity, NodeType, ParameterVersion, RelationType
from qops.provenance.outbox import Outbox
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository
from qops.timeutil import as_utc

logger = logging.getLogger(__name__)


class ProblemKind(StrEnum):
    """A broken invariant."""

    OPEN_PREDECESSOR = "open_predecessor"
    """A chain has more than one open version: this older one was never closed."""
    CLOSED_NEWEST = "closed_newest"
    """The newest version of a chain is closed: the chain has no current version."""
    VALID_UNTIL_MISMATCH = "valid_until_mismatch"
    """A closed version's ``valid_until`` is not its successor's ``valid_from``."""
    VERSION_GAP = "version_gap"
    """Version numbers of a chain skip one or more numbers (or repeat one)."""
    ORPHAN = "orphan"
    """A version without ``wasGeneratedBy``, or whose activity is not stored."""
    DANGLING_RELATION = "dangling_relation"
    """A relation names an entity or activity that is not stored."""
    UNFINISHED_RECORD = "unfinished_record"
    """This machine's journal holds a record whose writer died before finishing it."""


FIXABLE = frozenset(
    {
        ProblemKind.OPEN_PREDECESSOR,
        ProblemKind.VALID_UNTIL_MISMATCH,
        ProblemKind.UNFINISHED_RECORD,
    }
)
"""What :func:`repair` fixes: closes from the chain itself, records from the journal."""


class Problem(BaseModel):
    """One broken invariant, at one stored document."""

    kind: ProblemKind
    project_id: str
    subject: str = Field(description="The entity, relation or record concerned.")
    detail: str


class CheckReport(BaseModel):
    """What :func:`check` found."""

    project_id: str | None = Field(description="The project checked; null: every project.")
    versions: int
    relations: int
    activities: int
    waiting_records: int = Field(description="Records waiting in this machine's outbox.")
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        """Whether no invariant is broken."""
        return not self.problems


class RepairAction(BaseModel):
    """One fix :func:`repair` made (or would make, with ``dry_run``)."""

    kind: ProblemKind
    project_id: str
    subject: str
    action: str


class RepairReport(BaseModel):
    """What :func:`repair` did and what it left."""

    dry_run: bool
    actions: list[RepairAction]
    left: list[Problem] = Field(description="Broken invariants it cannot fix safely.")


Chain = tuple[str, str, str, str]


def _chains(versions: list[ParameterVersion]) -> dict[Chain, list[ParameterVersion]]:
    chains: dict[Chain, list[ParameterVersion]] = defaultdict(list)
    for version in versions:
        chains[(version.project_id, version.chip_id, version.parameter_name, version.qid)].append(
            version
        )
    for chain in chains.values():
        chain.sort(key=lambda v: v.version)
    return chains


def _same_time(a: datetime, b: datetime) -> bool:
    return as_utc(a) == as_utc(b)


def _chain_problems(chain: list[ParameterVersion]) -> list[Problem]:
    problems: list[Problem] = []
    project = chain[0].project_id
    name = f"{chain[0].parameter_name} of {chain[0].qid} on chip {chain[0].chip_id or '(none)'}"
    for older, newer in itertools.pairwise(chain):
        if newer.version != older.version + 1:
            problems.append(
                Problem(
                    kind=ProblemKind.VERSION_GAP,
                    project_id=project,
                    subject=newer.entity_id,
                    detail=f"{name}: version {newer.version} follows version {older.version}",
                )
            )
        if older.valid_until is None:
            problems.append(
                Problem(
                    kind=ProblemKind.OPEN_PREDECESSOR,
                    project_id=project,
                    subject=older.entity_id,
                    detail=f"{name}: version {older.version} is open although version "
                    f"{newer.version} follows it",
                )
            )
        elif not _same_time(older.valid_until, newer.valid_from):
            problems.append(
                Problem(
                    kind=ProblemKind.VALID_UNTIL_MISMATCH,
                    project_id=project,
                    subject=older.entity_id,
                    detail=f"{name}: version {older.version} is valid until "
                    f"{as_utc(older.valid_until).isoformat()}, its successor from "
                    f"{as_utc(newer.valid_from).isoformat()}",
                )
            )
    newest = chain[-1]
    if newest.valid_until is not None:
        problems.append(
            Problem(
                kind=ProblemKind.CLOSED_NEWEST,
                project_id=project,
                subject=newest.entity_id,
                detail=f"{name}: the newest version {newest.version} is closed "
                f"(valid until {as_utc(newest.valid_until).isoformat()})",
            )
        )
    return problems


def check(
    repository: MongoProvenanceRepository,
    project_id: str | None = None,
    outbox: Outbox | None = None,
) -> CheckReport:
    """Every broken invariant of the stored provenance (of one project, or all).

    Args:
        repository: The store.
        project_id: Only this project; ``None``: every project.
        outbox: This machine's outbox, to report abandoned journal records; ``None``: skip.
    """
    versions = repository.all_versions(project_id)
    relations = repository.all_relations(project_id)
    activity_ids = repository.all_activity_ids(project_id)
    others = repository.all_other_entities(project_id)
    entity_ids = {(v.project_id, v.entity_id) for v in versions}
    entity_ids.update((project, other.entity_id) for project, other in others)
    problems: list[Problem] = []
    for chain in _chains(versions).values():
        problems.extend(_chain_problems(chain))
    generated: dict[tuple[str, str], list[str]] = defaultdict(list)
    for relation in relations:
        if relation.relation_type is RelationType.WAS_GENERATED_BY:
            generated[(relation.project_id, relation.source_id)].append(relation.target_id)
        for end, kind in (
            (relation.source_id, relation.source_type),
            (relation.target_id, relation.target_type),
        ):
            known = entity_ids if kind is NodeType.ENTITY else activity_ids
            if (relation.project_id, end) not in known:
                problems.append(
                    Problem(
                        kind=ProblemKind.DANGLING_RELATION,
                        project_id=relation.project_id,
                        subject=f"{relation.relation_type.value} {relation.source_id} -> "
                        f"{relation.target_id}",
                        detail=f"its {kind.value} {end!r} is not stored",
                    )
                )
    for version in versions:
        targets = generated.get((version.project_id, version.entity_id), [])
        if not targets:
            detail = "no wasGeneratedBy relation"
        elif not any((version.project_id, t) in activity_ids for t in targets):
            detail = f"its activity {targets[0]!r} is not stored"
        else:
            continue
        problems.append(
            Problem(
                kind=ProblemKind.ORPHAN,
                project_id=version.project_id,
                subject=version.entity_id,
                detail=f"version {version.version} of {version.parameter_name} of "
                f"{version.qid} (execution {version.execution_id}): {detail}",
            )
        )
    for project, other in others:
        if not isinstance(other, DatasetFileEntity):
            continue  # a raw measurement is generated outside provenance (by QCoDeS)
        targets = generated.get((project, other.entity_id), [])
        if any((project, t) in activity_ids for t in targets):
            continue
        missing = f"its activity {targets[0]!r} is not stored" if targets else "no wasGeneratedBy"
        problems.append(
            Problem(
                kind=ProblemKind.ORPHAN,
                project_id=project,
                subject=other.entity_id,
                detail=f"file version {other.version} of run {other.guid} (source "
                f"{other.source}): {missing}",
            )
        )
    waiting = 0
    if outbox is not None:
        waiting = outbox.pending()
        for summary, started, abandoned in outbox.in_flight():
            if abandoned:
                problems.append(
                    Problem(
                        kind=ProblemKind.UNFINISHED_RECORD,
                        project_id=project_id or "",
                        subject=summary,
                        detail=f"its writer died part-way (journaled {started}) in {outbox.path}",
                    )
                )
    return CheckReport(
        project_id=project_id,
        versions=len(versions),
        relations=len(relations),
        activities=len(activity_ids),
        waiting_records=waiting,
        problems=problems,
    )


def repair(
    repository: MongoProvenanceRepository,
    project_id: str | None = None,
    recorder: ProvenanceRecorder | None = None,
    *,
    dry_run: bool = False,
) -> RepairReport:
    """Fix what is safely fixable, in this order; idempotent.

    1. Records of this machine's journal whose writer died (``recorder`` given): moved
       into the outbox and replayed, which completes their activity, relations, versions
       and closes (writing a record is idempotent).
    2. Open predecessors and mismatched ``valid_until``: set to the successor's
       ``valid_from`` (the chain itself says what it must be).

    Everything else (orphans no journal completes, gaps, dangling relations, a closed
    newest version) is left and reported: fixing it needs what is not stored.

    Args:
        repository: The store.
        project_id: Only this project's chains; ``None``: every project.
        recorder: This machine's recorder (its outbox holds the journal); ``None``: skip 1.
        dry_run: Only report what would be done.
    """
    actions: list[RepairAction] = []
    outbox = None if recorder is None else recorder.outbox
    before = check(repository, project_id, outbox)
    if recorder is not None:
        unfinished = [p for p in before.problems if p.kind is ProblemKind.UNFINISHED_RECORD]
        actions.extend(
            RepairAction(
                kind=p.kind,
                project_id=p.project_id,
                subject=p.subject,
                action="completed from the journal (through the outbox)",
            )
            for p in unfinished
        )
        if not dry_run and (unfinished or recorder.outbox.pending()):
            recorder.replay()
    after = before if dry_run else check(repository, project_id, outbox)
    fixable = {(p.project_id, p.subject): p for p in after.problems if p.kind in FIXABLE}
    closes: dict[str, datetime] = {}
    for chain in _chains(repository.all_versions(project_id)).values():
        for older, newer in itertools.pairwise(chain):
            problem = fixable.get((older.project_id, older.entity_id))
            if problem is None:
                continue
            closes[older.entity_id] = newer.valid_from
            actions.append(
                RepairAction(
                    kind=problem.kind,
                    project_id=older.project_id,
                    subject=older.entity_id,
                    action="valid_until set to its successor's valid_from "
                    f"{as_utc(newer.valid_from).isoformat()}",
                )
            )
    left = [p for p in after.problems if p.kind not in FIXABLE]
    if closes and not dry_run:
        repository.set_valid_until(closes)
        logger.info("provenance repair closed %d versions", len(closes))
        left = check(repository, project_id, outbox).problems
    return RepairReport(dry_run=dry_run, actions=actions, left=left)
