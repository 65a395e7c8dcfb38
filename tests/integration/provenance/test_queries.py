"""Provenance queries on the embedded MongoDB, bad input included."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from qops.config import MongoSettings
from qops.mongo import Document
from qops.provenance.errors import (
    EntityNotFoundError,
    ExecutionNotFoundError,
    InvalidEntityIdError,
    InvalidQueryError,
)
from qops.provenance.models import Measured, NodeType, ProvenanceRelation, RelationType
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import MAX_DEPTH, ProvenanceService
from qops.timeutil import utc_now
from tests.integration.provenance.records import (
    CHIP,
    PROJECT,
    CommandCounter,
    make_record,
    record_chain,
)


def test_entity_malformed_id_raises_naming_format(service: ProvenanceService) -> None:
    with pytest.raises(InvalidEntityIdError, match="has 2 ':'-separated parts, not 4"):
        service.entity("qubit_frequency:Q0")
    with pytest.raises(InvalidEntityIdError, match="empty part"):
        service.entity("qubit_frequency::e:t")


def test_entity_unknown_or_other_project_not_found(
    service: ProvenanceService, repository: MongoProvenanceRepository
) -> None:
    ids = record_chain(repository, "e1", 5e9)
    assert service.entity(ids["t1"]).value == 5e-5
    with pytest.raises(EntityNotFoundError, match="in project 'elsewhere'"):
        service.entity(ids["t1"], project_id="elsewhere")
    with pytest.raises(EntityNotFoundError):
        service.entity("t1:Q0:nope:nope")


@pytest.mark.parametrize("depth", [0, -3])
def test_lineage_depth_not_positive_raises(
    service: ProvenanceService, repository: MongoProvenanceRepository, depth: int
) -> None:
    ids = record_chain(repository, "e1", 5e9)
    with pytest.raises(InvalidQueryError, match="max_depth"):
        service.lineage(ids["t1"], max_depth=depth)


def test_lineage_huge_depth_is_capped(
    service: ProvenanceService, repository: MongoProvenanceRepository
) -> None:
    ids = record_chain(repository, "e1", 5e9)
    graph = service.lineage(ids["t1"], max_depth=10**9)
    assert graph.max_depth == MAX_DEPTH
    assert {n.node_id for n in graph.nodes} >= {ids["qubit_frequency"], ids["rabi_amplitude"]}


def test_lineage_depth_one_stops_at_direct_neighbours(
    service: ProvenanceService, repository: MongoProvenanceRepository
) -> None:
    ids = record_chain(repository, "e1", 5e9)
    graph = service.lineage(ids["rabi_amplitude"], max_depth=1)
    assert {(n.node_id, n.depth) for n in graph.nodes} == {
        (ids["qubit_frequency"], 1),
        ("e1:t-rabi", 1),
    }
    # the frequency's own activity is at depth 2: neither it nor its edge is returned
    assert all(e.target_id != "e1:t-freq" for e in graph.edges)


def test_lineage_cycle_in_relations_terminates_with_shortest_depths(
    service: ProvenanceService,
    repository: MongoProvenanceRepository,
    mongo_db: Database[Document],
) -> None:
    a = repository.record(make_record("e1", "ta", {"a": 1.0})).entity_ids["a"]
    b = repository.record(make_record("e1", "tb", {"b": 2.0})).entity_ids["b"]
    c = repository.record(make_record("e1", "tc", {"c": 3.0})).entity_ids["c"]

    def derived(source: str, target: str) -> ProvenanceRelation:
        return ProvenanceRelation(
            relation_type=RelationType.WAS_DERIVED_FROM,
            source_id=source,
            source_type=NodeType.ENTITY,
            target_id=target,
            target_type=NodeType.ENTITY,
            project_id=PROJECT,
            execution_id="e1",
        )

    # A cycle cannot come from recording; it is written as stored relation documents.
    mongo_db.provenance_relations.insert_many(
        [r.model_dump(mode="json") for r in (derived(a, b), derived(b, c), derived(c, a))]
    )
    graph = service.lineage(a, max_depth=MAX_DEPTH)
    depths = {n.node_id: n.depth for n in graph.nodes}
    assert depths[b] == 1
    assert depths[c] == 2
    assert a not in depths  # the origin is not repeated as a node
    impact = service.impact(a, max_depth=MAX_DEPTH)
    assert {n.node_id: n.depth for n in impact.nodes if n.node_type is NodeType.ENTITY} == {
        c: 1,
        b: 2,
    }


def test_history_newest_first_with_total_and_limit(
    service: ProvenanceService, repository: MongoProvenanceRepository
) -> None:
    for i in range(4):
        repository.record(make_record(f"e{i}", "t", {"qubit_frequency": 5e9 + i}))
    result = service.history("qubit_frequency", "Q0", limit=2)
    assert [v.version for v in result.versions] == [4, 3]
    assert result.total_versions == 4
    with pytest.raises(InvalidQueryError, match="limit"):
        service.history("qubit_frequency", "Q0", limit=0)


def test_compare_unknown_execution_raises_not_found(
    service: ProvenanceService, repository: MongoProvenanceRepository
) -> None:
    record_chain(repository, "e1", 5e9)
    with pytest.raises(ExecutionNotFoundError, match="'missing'"):
        service.compare("e1", "missing")
    with pytest.raises(ExecutionNotFoundError, match="'missing'"):
        service.compare("missing", "e1")


def test_compare_tolerance_types_added_removed_and_nan(
    service: ProvenanceService, repository: MongoProvenanceRepository
) -> None:
    before = {
        "f": 5.0e9,
        "same_within_tol": 1.0,
        "mode": "dispersive",
        "fit": math.nan,
        "gone": 3,
        "int_count": 7,
    }
    after = {
        "f": 5.1e9,
        "same_within_tol": 1.0 + 1e-12,
        "mode": "resonant",
        "fit": math.nan,
        "new": 4.5,
        "int_count": 7,
    }
    repository.record(make_record("before", "t", dict(before)))
    repository.record(make_record("after", "t", dict(after)))

    result = service.compare("before", "after")

    changed = {c.parameter_name: c for c in result.changed_parameters}
    assert set(changed) == {"f", "mode"}
    assert changed["f"].delta == pytest.approx(1e8)
    assert changed["f"].delta_percent == pytest.approx(2.0)
    assert changed["mode"].delta is None
    assert changed["mode"].delta_percent is None
    assert result.unchanged_count == 3  # within tolerance, NaN == NaN, equal ints
    assert [a.parameter_name for a in result.added_parameters] == ["new"]
    assert [r.parameter_name for r in result.removed_parameters] == ["gone"]
    strict = service.compare("before", "after", rel_tol=0.0)
    assert strict.unchanged_count == 2
    with pytest.raises(InvalidQueryError, match="rel_tol"):
        service.compare("before", "after", rel_tol=-1.0)


def test_changes_honours_within_hours_and_reports_previous_value(
    service: ProvenanceService,
    repository: MongoProvenanceRepository,
    mongo_db: Database[Document],
) -> None:
    repository.record(make_record("e1", "t", {"f": Measured(value=100.0, unit="Hz")}))
    repository.record(make_record("e2", "t", {"f": Measured(value=110.0, unit="Hz")}))
    repository.record(make_record("e3", "t", {"g": "x"}))
    # Move the first version two days back (insert keeps a real date on every server).
    old = mongo_db.parameter_versions.find_one_and_delete({"_id": "f:Q0:e1:t"})
    assert old is not None
    old["valid_from"] = utc_now() - timedelta(hours=48)
    mongo_db.parameter_versions.insert_one(old)

    recent = service.changes(limit=10, within_hours=24)
    assert recent.total_count == 2
    by_name = {c.parameter_name: c for c in recent.changes}
    assert by_name["f"].previous_value == 100.0
    assert by_name["f"].delta == pytest.approx(10.0)
    assert by_name["f"].delta_percent == pytest.approx(10.0)
    assert by_name["g"].previous_value is None
    assert service.changes(limit=1, within_hours=72).total_count == 3
    assert len(service.changes(limit=1, within_hours=72).changes) == 1
    with pytest.raises(InvalidQueryError, match="within_hours"):
        service.changes(within_hours=0)


def test_stats_and_executions_count_what_was_recorded(
    service: ProvenanceService, repository: MongoProvenanceRepository
) -> None:
    record_chain(repository, "e1", 5.0e9)
    record_chain(repository, "e2", 5.1e9)

    stats = service.stats()
    assert stats.total_entities == 6
    assert stats.total_activities == 6
    assert stats.total_executions == 2
    # per chain: used 3, wasGeneratedBy 3, wasDerivedFrom 3 (+3 to previous versions in e2)
    assert stats.relations_by_type == {"wasGeneratedBy": 6, "used": 6, "wasDerivedFrom": 9}
    assert stats.total_relations == 21

    executions = service.executions(limit=10)
    assert [(e.execution_id, e.task_count) for e in executions.executions] == [
        ("e2", 3),
        ("e1", 3),
    ]
    assert executions.executions[0].started_at.tzinfo is not None


def test_lineage_commands_grow_with_depth_not_with_nodes(
    mongo_settings: MongoSettings, repository: MongoProvenanceRepository
) -> None:
    # 30 inputs feed one task; each input has its own generating activity.
    inputs = [
        repository.record(make_record("e1", f"in{i}", {f"p{i}": float(i)})).entity_ids[f"p{i}"]
        for i in range(30)
    ]
    current = repository.current_inputs(PROJECT, CHIP, "Q0", [f"p{i}" for i in range(30)])
    out = repository.record(
        make_record("e1", "fit", {"result": 1.0}, inputs=list(current.values()))
    ).entity_ids["result"]

    listener = CommandCounter()
    assert mongo_settings.mongodb_url is not None
    client: MongoClient[Document] = MongoClient(
        mongo_settings.mongodb_url.get_secret_value(), event_listeners=[listener]
    )
    try:
        counted = ProvenanceService(
            MongoProvenanceRepository(client[mongo_settings.mongodb_db]), PROJECT
        )
        graph = counted.lineage(out, max_depth=3)
        deep_commands = list(listener.commands)
        listener.commands.clear()
        shallow = counted.lineage(out, max_depth=1)
    finally:
        client.close()

    assert {n.node_id for n in graph.nodes} >= set(inputs)
    assert len(graph.nodes) == 61  # the fit activity, 30 inputs, their 30 activities
    # origin, one relations command per level that has a frontier, entities, activities
    assert deep_commands == ["find", "aggregate", "aggregate", "aggregate", "find", "find"]
    # depth 1 (the fit activity and the 30 inputs): one level, then one command for the
    # edges leaving the deepest level (the fit activity used the 30 inputs)
    assert len(shallow.nodes) == 31
    assert len(shallow.edges) == 1 + 30 + 30  # generation, derivations, usages
    assert listener.commands == ["find", "aggregate", "aggregate", "find", "find"]


def _edges_between(mongo_db: Database[Document], node_ids: set[str]) -> set[tuple[str, str, str]]:
    """Every stored relation of the project whose two ends are both in ``node_ids``."""
    return {
        (str(d["relation_type"]), str(d["source_id"]), str(d["target_id"]))
        for d in mongo_db.provenance_relations.find({"project_id": {"$eq": PROJECT}})
        if d["source_id"] in node_ids and d["target_id"] in node_ids
    }


@pytest.mark.parametrize("direction", ["lineage", "impact"])
def test_graph_has_every_edge_between_returned_nodes_at_every_depth(
    service: ProvenanceService,
    repository: MongoProvenanceRepository,
    mongo_db: Database[Document],
    direction: str,
) -> None:
    # Two chains: e2's versions derive from e1's, so edges join nodes of one level and
    # nodes of the boundary level to nodes found earlier.
    record_chain(repository, "e1", 5.0e9)
    record_chain(repository, "e2", 5.1e9)
    entity_ids = [str(d["_id"]) for d in mongo_db.parameter_versions.find()]
    query = service.lineage if direction == "lineage" else service.impact
    checked_boundary = 0
    for origin in entity_ids:
        for depth in range(1, 7):
            graph = query(origin, max_depth=depth)
            returned = {n.node_id for n in graph.nodes} | {origin}
            got = {(e.relation_type.value, e.source_id, e.target_id) for e in graph.edges}
            assert got == _edges_between(mongo_db, returned), (origin, depth)
            deepest = {n.node_id for n in graph.nodes if n.depth == depth}
            checked_boundary += sum(1 for _, s, t in got if {s, t} <= deepest)
    assert checked_boundary > 0  # edges within the deepest level were among those checked


def test_lineage_depth_one_has_the_edge_between_its_two_neighbours(
    service: ProvenanceService, repository: MongoProvenanceRepository
) -> None:
    ids = record_chain(repository, "e1", 5e9)
    graph = service.lineage(ids["rabi_amplitude"], max_depth=1)
    edges = {(e.relation_type, e.source_id, e.target_id) for e in graph.edges}
    # the rabi task used the frequency: both are at depth 1
    assert (RelationType.USED, "e1:t-rabi", ids["qubit_frequency"]) in edges
    document = service.export_prov_json(ids["rabi_amplitude"], max_depth=1)
    assert {"prov:activity": "qops:e1:t-rabi", "prov:entity": f"qops:{ids['qubit_frequency']}"} in (
        document["used"].values()
    )


def test_compare_of_another_projects_execution_is_not_found(
    service: ProvenanceService, repository: MongoProvenanceRepository
) -> None:
    record_chain(repository, "e1", 5e9)
    repository.record(make_record("other-run", "t", {"f": 1.0}, project_id="elsewhere"))
    with pytest.raises(ExecutionNotFoundError, match="'other-run'"):
        service.compare("e1", "other-run")
    with pytest.raises(ExecutionNotFoundError, match="'other-run'"):
        service.compare("other-run", "e1")
    assert service.compare("other-run", "other-run", project_id="elsewhere").unchanged_count == 1


def test_stats_and_chips_count_only_the_project(
    service: ProvenanceService, repository: MongoProvenanceRepository
) -> None:
    record_chain(repository, "e1", 5e9)
    other = make_record("other-run", "t", {"f": 1.0}, project_id="elsewhere")
    repository.record(other.model_copy(update={"chip_id": "chipX"}))
    assert service.stats().total_executions == 1
    assert service.stats(project_id="elsewhere").total_executions == 1
    assert service.stats(project_id="nobody").total_executions == 0
    assert service.chip_ids(project_id="nobody") == []
    assert service.chip_ids() == ["64Qv3"]
    assert service.chip_ids(project_id="elsewhere") == ["chipX"]
