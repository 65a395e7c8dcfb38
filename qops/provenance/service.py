"""Provenance queries: entity, history, lineage, impact, compare, stats, executions, changes.

The service owns validation and graph traversal; it raises qops errors (never HTTP ones)
and reads through a :class:`ProvenanceRepository`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from qops.provenance.errors import (
    EntityNotFoundError,
    ExecutionNotFoundError,
    InvalidEntityIdError,
    InvalidQueryError,
    ProvenanceError,
)
from qops.provenance.ids import EntityKind, dataset_entity_id, entity_kind, parse_entity_id
from qops.provenance.models import (
    Activity,
    ActivitySummary,
    AddedParameter,
    ChangedParameter,
    ChangesResponse,
    CompareResponse,
    DatasetEntity,
    DatasetFileProvenance,
    DatasetProvenance,
    EntitySummary,
    ExecutionDetail,
    ExecutionsResponse,
    ExecutionSummary,
    GraphEdge,
    GraphNode,
    GraphResponse,
    HistoryResponse,
    NodeType,
    OtherEntity,
    ParameterChange,
    ParameterVersion,
    RelationType,
    RemovedParameter,
    StatsResponse,
)
from qops.provenance.prov_json import to_prov_json
from qops.provenance.repository import ProvenanceRepository
from qops.provenance.values import numeric
from qops.timeutil import utc_now

MAX_DEPTH = 50
"""Deepest traversal served; larger requests are capped to it."""
MAX_LIMIT = 1000
"""Most rows a list query returns."""
MAX_WITHIN_HOURS = 24 * 365 * 100
DEFAULT_REL_TOL = 1e-9


@dataclass(frozen=True)
class _Traversal:
    graph: GraphResponse
    versions: dict[str, ParameterVersion]
    activities: dict[str, Activity]
    others: dict[str, OtherEntity]


def _limit(limit: int) -> int:
    if limit < 1:
        raise InvalidQueryError("limit", limit, f"an integer from 1 to {MAX_LIMIT}")
    return min(limit, MAX_LIMIT)


def _depth(max_depth: int) -> int:
    if max_depth < 1:
        raise InvalidQueryError(
            "max_depth", max_depth, f"an integer from 1 (capped at {MAX_DEPTH})"
        )
    return min(max_depth, MAX_DEPTH)


def _entity_summary(version: ParameterVersion) -> EntitySummary:
    return EntitySummary(
        parameter_name=version.parameter_name,
        qid=version.qid,
        value=version.value,
        value_type=version.value_type,
        unit=version.unit,
        version=version.version,
        task_name=version.task_name,
        execution_id=version.execution_id,
    )


def _activity_summary(activity: Activity) -> ActivitySummary:
    return ActivitySummary(
        task_name=activity.task_name,
        task_type=activity.task_type,
        qid=activity.qid,
        status=activity.status,
        execution_id=activity.execution_id,
        started_at=activity.started_at,
        ended_at=activity.ended_at,
    )


def _node(
    node_id: str,
    node_type: NodeType,
    depth: int,
    versions: dict[str, ParameterVersion],
    others: dict[str, OtherEntity],
    activities: dict[str, Activity],
) -> GraphNode:
    """A graph node with what is stored of it."""
    node = GraphNode(node_type=node_type, node_id=node_id, depth=depth)
    if node_id in versions:
        node.entity_type = EntityKind.PARAMETER
        node.entity = _entity_summary(versions[node_id])
    elif node_id in others:
        other = others[node_id]
        if isinstance(other, DatasetEntity):
            node.entity_type, node.dataset = EntityKind.DATASET, other
        else:
            node.entity_type, node.dataset_file = EntityKind.DATASET_FILE, other
    elif node_id in activities:
        node.activity = _activity_summary(activities[node_id])
    return node


def delta_of(
    before: float | int | str, after: float | int | str
) -> tuple[float | None, float | None]:
    """Return ``(after - before, percent of |before|)``; ``None`` where undefined.

    Non-numeric values have no delta; a zero ``before`` has no percentage.
    """
    old, new = numeric(before), numeric(after)
    if old is None or new is None:
        return None, None
    delta = new - old
    percent = None if old == 0 or math.isnan(old) else delta / abs(old) * 100.0
    return delta, percent


def values_equal(before: float | int | str, after: float | int | str, rel_tol: float) -> bool:
    """Whether two recorded values are the same within ``rel_tol`` (NaN equals NaN)."""
    old, new = numeric(before), numeric(after)
    if old is None or new is None:
        return type(before) is type(after) and before == after
    if math.isnan(old) or math.isnan(new):
        return math.isnan(old) and math.isnan(new)
    return math.isclose(old, new, rel_tol=rel_tol, abs_tol=0.0)


def _is_parameter(node_id: str) -> bool:
    """Whether an entity id names a parameter version (a malformed stored id counts as one)."""
    try:
        return entity_kind(node_id) is EntityKind.PARAMETER
    except ProvenanceError:
        return True


class ProvenanceService:
    """Answers provenance queries for one repository.

    Args:
        repository: Where provenance is stored.
        default_project_id: Project used when a query names none.
    """

    def __init__(self, repository: ProvenanceRepository, default_project_id: str) -> None:
        self.repository = repository
        self.default_project_id = default_project_id

    def _project(self, project_id: str | None) -> str:
        if project_id is None:
            return self.default_project_id
        if not project_id:
            raise InvalidQueryError("project_id", project_id, "a non-empty project id")
        return project_id

    def entity(self, entity_id: str, project_id: str | None = None) -> ParameterVersion:
        """Return one parameter version.

        Raises:
            InvalidEntityIdError: ``entity_id`` is malformed.
            EntityNotFoundError: No such version in the project.
        """
        parse_entity_id(entity_id)
        project = self._project(project_id)
        version = self.repository.get_entity(project, entity_id)
        if version is None:
            raise EntityNotFoundError(entity_id, project)
        return version

    def history(
        self,
        parameter_name: str,
        qid: str,
        limit: int = 50,
        project_id: str | None = None,
        chip_id: str | None = None,
    ) -> HistoryResponse:
        """Versions of one parameter of one qid, newest first (two commands).

        With ``chip_id``, that chip's version chain; without, the versions of every chip.
        """
        if not parameter_name or not qid:
            raise InvalidQueryError(
                "parameter_name/qid", f"{parameter_name}/{qid}", "both non-empty"
            )
        if chip_id is not None and not chip_id:
            raise InvalidQueryError("chip_id", chip_id, "a non-empty chip id")
        project = self._project(project_id)
        versions, total = self.repository.history(
            project, parameter_name, qid, _limit(limit), chip_id
        )
        return HistoryResponse(
            parameter_name=parameter_name,
            qid=qid,
            project_id=project,
            chip_id=chip_id,
            versions=versions,
            total_versions=total,
        )

    def lineage(
        self, entity_id: str, max_depth: int = 5, project_id: str | None = None
    ) -> GraphResponse:
        """Ancestors of an entity: what it was generated by and derived from.

        Breadth-first: every node within ``max_depth`` hops at its shortest distance and every
        edge between returned nodes (those from the deepest level included); one relations
        query per level, one more for the deepest level's edges, plus three look-ups,
        whatever the graph's size.
        """
        return self._traverse(entity_id, max_depth, project_id, downstream=False).graph

    def impact(
        self, entity_id: str, max_depth: int = 5, project_id: str | None = None
    ) -> GraphResponse:
        """Descendants of an entity: the activities that used it and what they produced."""
        return self._traverse(entity_id, max_depth, project_id, downstream=True).graph

    def export_prov_json(
        self,
        entity_id: str,
        max_depth: int = 5,
        project_id: str | None = None,
        *,
        direction: Literal["lineage", "impact"] = "lineage",
    ) -> dict[str, Any]:
        """The lineage (or impact) graph of an entity as a W3C PROV-JSON document."""
        traversal = self._traverse(
            entity_id, max_depth, project_id, downstream=direction == "impact"
        )
        return to_prov_json(
            traversal.graph, traversal.versions, traversal.activities, traversal.others
        )

    def dataset(self, guid: str, project_id: str | None = None) -> DatasetProvenance:
        """A raw measurement's provenance: its synced file versions (each with its sync
        activity), the parameter versions fitted from it and every activity that used it.

        Four commands: the entity, the relations into it, then the file versions and
        their ``wasGeneratedBy``, and the versions and activities they name.

        Raises:
            InvalidEntityIdError: ``guid`` is empty or contains ``:``.
            EntityNotFoundError: No such raw measurement in the project.
        """
        entity_id = dataset_entity_id(guid)
        project = self._project(project_id)
        found = self.repository.other_entities_by_id(project, [entity_id])
        dataset = found.get(entity_id)
        if not isinstance(dataset, DatasetEntity):
            raise EntityNotFoundError(entity_id, project)
        into = self.repository.relations_from(project, [entity_id], downstream=True)
        derived = [
            r.source_id
            for r in into
            if r.relation_type is RelationType.WAS_DERIVED_FROM
            and entity_kind(r.source_id) is EntityKind.PARAMETER
        ]
        users = [r.source_id for r in into if r.relation_type is RelationType.USED]
        files = self.repository.dataset_files(project, guid)
        generated = {
            r.source_id: r.target_id
            for r in self.repository.relations_from(
                project, [f.entity_id for f in files], downstream=False
            )
            if r.relation_type is RelationType.WAS_GENERATED_BY
        }
        activities = {
            a.activity_id: a
            for a in self.repository.activities(project, [*users, *generated.values()])
        }
        versions = self.repository.entities(project, derived)
        versions.sort(key=lambda v: (v.parameter_name, v.qid, v.version))
        return DatasetProvenance(
            entity_id=entity_id,
            project_id=project,
            dataset=dataset,
            files=[
                DatasetFileProvenance(
                    file=f, generated_by=activities.get(generated.get(f.entity_id, ""))
                )
                for f in files
            ],
            derived_versions=versions,
            used_by=sorted(
                (activities[u] for u in dict.fromkeys(users) if u in activities),
                key=lambda a: (a.started_at, a.activity_id),
            ),
        )

    def other_entity(self, entity_id: str, project_id: str | None = None) -> OtherEntity:
        """Return one raw measurement (``dataset:{guid}``) or synced file version
        (``dataset-file:{uuid}:v{n}``).

        Raises:
            InvalidEntityIdError: ``entity_id`` is malformed or names a parameter version.
            EntityNotFoundError: No such entity in the project.
        """
        if entity_kind(entity_id) is EntityKind.PARAMETER:
            raise InvalidEntityIdError(entity_id, "names a parameter version, not a dataset")
        project = self._project(project_id)
        found = self.repository.other_entities_by_id(project, [entity_id]).get(entity_id)
        if found is None:
            raise EntityNotFoundError(entity_id, project)
        return found

    def fitted_from(self, version: ParameterVersion) -> list[DatasetEntity]:
        """The raw measurements ``version`` was derived from (the runs it was fitted to).

        Two commands: the relations out of it, the datasets they name; ordered by run id.
        """
        project = version.project_id
        targets = [
            r.target_id
            for r in self.repository.relations_from(project, [version.entity_id], downstream=False)
            if r.relation_type is RelationType.WAS_DERIVED_FROM and not _is_parameter(r.target_id)
        ]
        found = self.repository.other_entities_by_id(project, targets) if targets else {}
        datasets = [e for e in found.values() if isinstance(e, DatasetEntity)]
        return sorted(datasets, key=lambda d: (d.run_id is None, d.run_id or 0, d.guid))

    def _traverse(
        self, entity_id: str, max_depth: int, project_id: str | None, *, downstream: bool
    ) -> _Traversal:
        depth_limit = _depth(max_depth)
        origin_version: ParameterVersion | None = None
        origin_other: OtherEntity | None = None
        if entity_kind(entity_id) is EntityKind.PARAMETER:
            origin_version = self.entity(entity_id, project_id)
            project = origin_version.project_id
        else:
            project = self._project(project_id)
            origin_other = self.repository.other_entities_by_id(project, [entity_id]).get(entity_id)
            if origin_other is None:
                raise EntityNotFoundError(entity_id, project)
        depths: dict[str, int] = {entity_id: 0}
        types: dict[str, NodeType] = {entity_id: NodeType.ENTITY}
        edges: dict[tuple[str, str, str], GraphEdge] = {}
        frontier = [entity_id]
        # Levels 1..depth_limit add nodes; one more pass over the last level (the boundary)
        # adds only the edges from it to nodes already returned, so every edge between
        # returned nodes is in the graph whatever the depth.
        for depth in range(1, depth_limit + 2):
            if not frontier:
                break
            boundary = depth > depth_limit
            next_frontier: list[str] = []
            for relation in self.repository.relations_from(
                project, frontier, downstream=downstream
            ):
                if downstream:
                    other, other_type = relation.source_id, relation.source_type
                else:
                    other, other_type = relation.target_id, relation.target_type
                if other not in depths:
                    if boundary:
                        continue
                    depths[other] = depth
                    types[other] = other_type
                    next_frontier.append(other)
                key = (relation.relation_type.value, relation.source_id, relation.target_id)
                edges[key] = GraphEdge(
                    relation_type=relation.relation_type,
                    source_id=relation.source_id,
                    target_id=relation.target_id,
                )
            frontier = next_frontier
        entity_ids = [n for n, t in types.items() if t is NodeType.ENTITY and n != entity_id]
        parameter_ids = [n for n in entity_ids if _is_parameter(n)]
        other_ids = [n for n in entity_ids if not _is_parameter(n)]
        activity_ids = [n for n, t in types.items() if t is NodeType.ACTIVITY]
        versions = {v.entity_id: v for v in self.repository.entities(project, parameter_ids)}
        # A graph without datasets costs no look-up of them.
        others = self.repository.other_entities_by_id(project, other_ids) if other_ids else {}
        if origin_version is not None:
            versions[entity_id] = origin_version
        if origin_other is not None:
            others[entity_id] = origin_other
        activities = {a.activity_id: a for a in self.repository.activities(project, activity_ids)}
        nodes = [
            _node(node_id, types[node_id], depth, versions, others, activities)
            for node_id, depth in depths.items()
            if node_id != entity_id
        ]
        nodes.sort(key=lambda n: (n.depth, n.node_id))
        graph = GraphResponse(
            direction="impact" if downstream else "lineage",
            origin=_node(entity_id, NodeType.ENTITY, 0, versions, others, activities),
            nodes=nodes,
            edges=sorted(
                edges.values(), key=lambda e: (e.source_id, e.target_id, e.relation_type.value)
            ),
            max_depth=depth_limit,
        )
        return _Traversal(graph, versions, activities, others)

    def compare(
        self,
        execution_id_before: str,
        execution_id_after: str,
        rel_tol: float = DEFAULT_REL_TOL,
        project_id: str | None = None,
    ) -> CompareResponse:
        """Parameters added, removed and changed from one execution to another.

        A parameter written several times by one execution counts with its newest version.

        Raises:
            ExecutionNotFoundError: An execution has nothing recorded in the project.
            InvalidQueryError: ``rel_tol`` is negative or not finite.
        """
        if not math.isfinite(rel_tol) or rel_tol < 0:
            raise InvalidQueryError("rel_tol", rel_tol, "a finite number >= 0")
        project = self._project(project_id)
        requested = [execution_id_before, execution_id_after]
        known = self.repository.executions_known(project, requested)
        for execution_id in requested:
            if execution_id not in known:
                raise ExecutionNotFoundError(execution_id, project)
        newest: dict[str, dict[tuple[str, str], ParameterVersion]] = {e: {} for e in requested}
        for version in self.repository.versions_of_executions(project, requested):
            side = newest[version.execution_id]
            key = (version.parameter_name, version.qid)
            if key not in side or version.version > side[key].version:
                side[key] = version
        before, after = newest[execution_id_before], newest[execution_id_after]
        added = [
            AddedParameter(
                parameter_name=v.parameter_name, qid=v.qid, value_after=v.value, unit=v.unit
            )
            for key, v in sorted(after.items())
            if key not in before
        ]
        removed = [
            RemovedParameter(
                parameter_name=v.parameter_name, qid=v.qid, value_before=v.value, unit=v.unit
            )
            for key, v in sorted(before.items())
            if key not in after
        ]
        changed: list[ChangedParameter] = []
        unchanged = 0
        for key in sorted(before.keys() & after.keys()):
            old, new = before[key], after[key]
            if values_equal(old.value, new.value, rel_tol):
                unchanged += 1
                continue
            delta, percent = delta_of(old.value, new.value)
            changed.append(
                ChangedParameter(
                    parameter_name=key[0],
                    qid=key[1],
                    value_before=old.value,
                    value_after=new.value,
                    unit=new.unit,
                    delta=delta,
                    delta_percent=percent,
                )
            )
        return CompareResponse(
            execution_id_before=execution_id_before,
            execution_id_after=execution_id_after,
            added_parameters=added,
            removed_parameters=removed,
            changed_parameters=changed,
            unchanged_count=unchanged,
            rel_tol=rel_tol,
        )

    def stats(self, project_id: str | None = None) -> StatsResponse:
        """Counts of entities, activities, relations by type and executions."""
        project = self._project(project_id)
        entities, activities, by_type, executions = self.repository.stats(project)
        return StatsResponse(
            project_id=project,
            total_entities=entities,
            total_activities=activities,
            total_relations=sum(by_type.values()),
            relations_by_type={kind.value: by_type.get(kind.value, 0) for kind in RelationType},
            total_executions=executions,
        )

    def executions(
        self, limit: int = 20, project_id: str | None = None, chip_id: str | None = None
    ) -> ExecutionsResponse:
        """Recent executions, newest first, with their task-run counts (of one chip)."""
        project = self._project(project_id)
        if chip_id is None:
            rows = self.repository.recent_executions(project, _limit(limit))
        else:
            rows = self.repository.recent_executions(project, _limit(limit), chip_id)
        return ExecutionsResponse(
            executions=[
                ExecutionSummary(
                    execution_id=execution_id,
                    started_at=started,
                    ended_at=ended,
                    task_count=count,
                )
                for execution_id, started, ended, count in rows
            ]
        )

    def execution(self, execution_id: str, project_id: str | None = None) -> ExecutionDetail:
        """The task runs of one execution and the versions they wrote (two queries).

        Versions are ordered by parameter, qid and version.

        Raises:
            ExecutionNotFoundError: The execution has no recorded task run in the project.
        """
        project = self._project(project_id)
        activities = self.repository.activities_of_execution(project, execution_id)
        if not activities:
            raise ExecutionNotFoundError(execution_id, project)
        versions = self.repository.versions_of_executions(project, [execution_id])
        versions.sort(key=lambda v: (v.parameter_name, v.qid, v.version))
        return ExecutionDetail(
            execution_id=execution_id,
            project_id=project,
            activities=activities,
            versions=versions,
        )

    def versions_of_executions(
        self, execution_ids: list[str], project_id: str | None = None
    ) -> list[ParameterVersion]:
        """Every version the given executions wrote (one query)."""
        if not execution_ids:
            return []
        return self.repository.versions_of_executions(self._project(project_id), execution_ids)

    def current_versions(
        self, chip_id: str, project_id: str | None = None
    ) -> list[ParameterVersion]:
        """The current version of every parameter of a chip (one query)."""
        return self.repository.current_versions(self._project(project_id), chip_id)

    def chip_ids(self, project_id: str | None = None) -> list[str]:
        """The chips with a recorded task run in the project, sorted."""
        return self.repository.chip_ids(self._project(project_id))

    def changes(
        self,
        limit: int = 20,
        within_hours: float = 24.0,
        project_id: str | None = None,
        chip_id: str | None = None,
    ) -> ChangesResponse:
        """New versions from the last ``within_hours`` hours (of one chip), newest first.

        Each with its delta to its predecessor in its own chip's chain.
        """
        if not math.isfinite(within_hours) or not 0 < within_hours <= MAX_WITHIN_HOURS:
            raise InvalidQueryError(
                "within_hours", within_hours, f"a number > 0 and <= {MAX_WITHIN_HOURS}"
            )
        if chip_id is not None and not chip_id:
            raise InvalidQueryError("chip_id", chip_id, "a non-empty chip id")
        project = self._project(project_id)
        since = utc_now() - timedelta(hours=within_hours)
        versions, total = self.repository.recent_versions(project, since, _limit(limit), chip_id)
        previous = self.repository.previous_versions(project, versions)
        changes: list[ParameterChange] = []
        for version in versions:
            before = previous.get(version.entity_id)
            delta, percent = (None, None)
            if before is not None:
                delta, percent = delta_of(before.value, version.value)
            changes.append(
                ParameterChange(
                    entity_id=version.entity_id,
                    parameter_name=version.parameter_name,
                    qid=version.qid,
                    value=version.value,
                    value_type=version.value_type,
                    unit=version.unit,
                    previous_value=None if before is None else before.value,
                    delta=delta,
                    delta_percent=percent,
                    version=version.version,
                    task_name=version.task_name,
                    execution_id=version.execution_id,
                    valid_from=version.valid_from,
                )
            )
        return ChangesResponse(changes=changes, total_count=total, within_hours=within_hours)
