"""A history written in the documented collection format is read and extended correctly
(issue 12, finding 8).

The documents are inserted by hand with ``insert_many`` as the format documents them: an
ObjectId ``_id`` and only the documented fields (no ``previous_entity_id``, no
``write_count``; some versions without ``value_type``, ``unit`` or ``error``; activities
without an agent, relations without an execution id).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo.database import Database

from qops.backend.provenance_source import ProvenanceCalibrationSource
from qops.calibration.recording import InputValues, ProvenanceSink, RecordedCalibration, RunIds
from qops.mongo import Document
from qops.provenance.config import ProvenanceSettings
from qops.provenance.integrity import check
from qops.provenance.models import Measured, RelationType
from qops.provenance.outbox import Outbox
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from qops.timeutil import utc_now
from tests.integration.provenance.records import make_record

PROJECT = "project_alpha"
CHIP = "64Qv3"
FREQ = [f"qubit_frequency:Q0:exec00{i}:task{i}" for i in (1, 2, 3)]
T1 = "t1:Q0:exec003:task_t1"
FREQ_VALUES = [5.119e9, 5.121e9, 5.123e9]


def _write_documented_history(db: Database[Document]) -> dict[str, Any]:
    """Three versions of qubit_frequency of Q0 and a t1 derived from the third."""
    now = utc_now().replace(microsecond=0)
    starts = [now - timedelta(hours=h) for h in (5, 3, 1)]
    versions: list[Document] = []
    activities: list[Document] = []
    relations: list[Document] = []

    def relation(kind: str, source: str, source_type: str, target: str, target_type: str) -> None:
        relations.append(
            {
                "_id": ObjectId(),
                "relation_type": kind,
                "source_id": source,
                "source_type": source_type,
                "target_id": target,
                "target_type": target_type,
                "project_id": PROJECT,
            }
        )

    for index, (eid, value, start) in enumerate(zip(FREQ, FREQ_VALUES, starts, strict=True)):
        execution = f"exec00{index + 1}"
        act = f"activity:check_freq:{execution}"
        document: Document = {
            "_id": ObjectId(),
            "entity_id": eid,
            "parameter_name": "qubit_frequency",
            "qid": "Q0",
            "value": value,
            "value_type": "float",
            "unit": "Hz",
            "error": 1e3,
            "version": index + 1,
            "valid_from": start,
            "valid_until": starts[index + 1] if index < 2 else None,
            "execution_id": execution,
            "task_id": f"task{index + 1}",
            "task_name": "CheckFrequency",
            "project_id": PROJECT,
            "chip_id": CHIP,
        }
        if index == 0:  # the optional fields may be missing
            for optional in ("value_type", "unit", "error"):
                del document[optional]
        versions.append(document)
        activities.append(
            {
                "_id": ObjectId(),
                "activity_id": act,
                "execution_id": execution,
                "task_id": f"task{index + 1}",
                "task_name": "CheckFrequency",
                "task_type": "calibration",
                "qid": "Q0",
                "started_at": start - timedelta(minutes=1),
                "ended_at": start,
                "status": "completed",
                "project_id": PROJECT,
                "chip_id": CHIP,
            }
        )
        relation("wasGeneratedBy", eid, "entity", act, "activity")
        if index > 0:
            relation("wasDerivedFrom", eid, "entity", FREQ[index - 1], "entity")
    t1_activity = "activity:check_t1:exec003"
    versions.append(
        {
            "_id": ObjectId(),
            "entity_id": T1,
            "parameter_name": "t1",
            "qid": "Q0",
            "value": 5e-5,
            "value_type": "float",
            "unit": "s",
            "error": 2e-6,
            "version": 1,
            "valid_from": starts[2] + timedelta(minutes=5),
            "valid_until": None,
            "execution_id": "exec003",
            "task_id": "task_t1",
            "task_name": "CheckT1",
            "project_id": PROJECT,
            "chip_id": CHIP,
        }
    )
    activities.append(
        {
            "_id": ObjectId(),
            "activity_id": t1_activity,
            "execution_id": "exec003",
            "task_id": "task_t1",
            "task_name": "CheckT1",
            "task_type": "calibration",
            "qid": "Q0",
            "started_at": starts[2] + timedelta(minutes=4),
            "ended_at": starts[2] + timedelta(minutes=5),
            "status": "completed",
            "project_id": PROJECT,
            "chip_id": CHIP,
        }
    )
    relation("wasGeneratedBy", T1, "entity", t1_activity, "activity")
    relation("used", t1_activity, "activity", FREQ[2], "entity")
    relation("wasDerivedFrom", T1, "entity", FREQ[2], "entity")
    db.parameter_versions.insert_many(versions)
    db.activities.insert_many(activities)
    db.provenance_relations.insert_many(relations)
    return {"t1_activity": t1_activity}


@pytest.fixture
def documented(mongo_db: Database[Document]) -> dict[str, Any]:
    written = _write_documented_history(mongo_db)
    MongoProvenanceRepository(mongo_db).ensure_indexes()  # as every qops command does
    return written


def test_documented_history_entity_history_changes_compare_executions_and_stats(
    documented: dict[str, Any], repository: MongoProvenanceRepository
) -> None:
    service = ProvenanceService(repository, PROJECT)

    third = service.entity(FREQ[2])
    assert (third.value, third.unit, third.version, third.chip_id) == (5.123e9, "Hz", 3, CHIP)
    first = service.entity(FREQ[0])  # no value_type, unit or error: sane defaults
    assert (first.value, first.value_type, first.unit, first.error) == (5.119e9, "float", "", None)

    history = service.history("qubit_frequency", "Q0", chip_id=CHIP)
    assert [v.entity_id for v in history.versions] == FREQ[::-1]
    assert history.total_versions == 3

    changes = {c.entity_id: c for c in service.changes(limit=10, within_hours=24).changes}
    assert changes[FREQ[2]].previous_value == FREQ_VALUES[1]
    assert changes[FREQ[2]].delta == pytest.approx(FREQ_VALUES[2] - FREQ_VALUES[1])
    assert changes[FREQ[1]].previous_value == FREQ_VALUES[0]
    assert changes[FREQ[0]].previous_value is None
    assert changes[T1].previous_value is None

    diff = service.compare("exec002", "exec003")
    assert [c.parameter_name for c in diff.changed_parameters] == ["qubit_frequency"]
    assert [a.parameter_name for a in diff.added_parameters] == ["t1"]

    executions = [e.execution_id for e in service.executions().executions]
    assert executions == ["exec003", "exec002", "exec001"]
    detail = service.execution("exec003")
    assert {a.activity_id for a in detail.activities} == {
        "activity:check_freq:exec003",
        documented["t1_activity"],
    }
    assert all(a.agent is None for a in detail.activities)  # the format has no agent

    stats = service.stats()
    assert (stats.total_entities, stats.total_activities, stats.total_executions) == (4, 4, 3)
    assert stats.relations_by_type == {"wasGeneratedBy": 4, "used": 1, "wasDerivedFrom": 3}


def test_documented_history_lineage_impact_and_current_versions(
    documented: dict[str, Any], repository: MongoProvenanceRepository
) -> None:
    service = ProvenanceService(repository, PROJECT)

    lineage = service.lineage(T1, max_depth=3)
    nodes = {n.node_id: n for n in lineage.nodes}
    activity = nodes[documented["t1_activity"]].activity
    assert activity is not None
    assert activity.task_name == "CheckT1"
    for depth, eid in ((1, FREQ[2]), (2, FREQ[1]), (3, FREQ[0])):
        entity = nodes[eid].entity
        assert nodes[eid].depth == depth
        assert entity is not None
    assert nodes[FREQ[0]].entity is not None
    assert nodes[FREQ[0]].entity.value == FREQ_VALUES[0]

    impact = service.impact(FREQ[0], max_depth=3)
    reached = {n.node_id: n for n in impact.nodes}
    assert {FREQ[1], FREQ[2], T1} <= reached.keys()
    assert all(reached[e].entity is not None for e in (FREQ[1], FREQ[2], T1))

    current = {v.parameter_name: v.entity_id for v in repository.current_versions(PROJECT, CHIP)}
    assert current == {"qubit_frequency": FREQ[2], "t1": T1}
    served = ProvenanceCalibrationSource(repository, PROJECT).current_parameters(CHIP)
    assert {(c.parameter_name, c.value) for c in served} >= {("qubit_frequency", 5.123e9)}

    report = check(repository)
    assert report.ok, report.problems


def test_calibration_recorded_on_top_of_a_documented_chain_continues_it(
    documented: dict[str, Any], repository: MongoProvenanceRepository, tmp_path: Any
) -> None:
    def check_t1(qid: str, inputs: InputValues) -> dict[str, Measured]:
        assert inputs["qubit_frequency"].entity_id == FREQ[2]
        return {"t1": Measured(value=6e-5, unit="s")}

    task = RecordedCalibration(check_t1, outputs=["t1"], inputs=["qubit_frequency"], name="CheckT1")
    sink = ProvenanceSink(lambda: repository, Outbox(tmp_path / "outbox.sqlite"))
    settings = ProvenanceSettings(project_id=PROJECT, chip_id=CHIP)
    outcome = task.run(RunIds(task_id="task_t1b", flow_run_id="exec004"), sink, settings, "Q0")

    service = ProvenanceService(repository, PROJECT)
    new_id = outcome.entity_ids["t1"]
    assert outcome.versions == {"t1": 2}
    new = service.entity(new_id)
    old = service.entity(T1)
    assert old.valid_until == new.valid_from  # the hand-written predecessor is closed
    assert new.valid_until is None
    current = {v.parameter_name: v.entity_id for v in repository.current_versions(PROJECT, CHIP)}
    assert current == {"qubit_frequency": FREQ[2], "t1": new_id}

    lineage = service.lineage(new_id, max_depth=1)
    derived = {
        e.target_id for e in lineage.edges if e.relation_type is RelationType.WAS_DERIVED_FROM
    }
    assert derived == {T1, FREQ[2]}
    change = next(c for c in service.changes(limit=10).changes if c.entity_id == new_id)
    assert change.previous_value == 5e-5

    report = check(repository)
    assert report.ok, report.problems


def test_documented_version_without_chip_is_in_no_chain(
    documented: dict[str, Any], repository: MongoProvenanceRepository, mongo_db: Database[Document]
) -> None:
    chipless = {
        "_id": ObjectId(),
        "entity_id": "t2_echo:Q0:exec009:task9",
        "parameter_name": "t2_echo",
        "qid": "Q0",
        "value": 8e-5,
        "version": 1,
        "valid_from": utc_now().replace(microsecond=0) - timedelta(minutes=30),
        "valid_until": None,
        "execution_id": "exec009",
        "task_id": "task9",
        "task_name": "CheckT2Echo",
        "project_id": PROJECT,
    }
    mongo_db.parameter_versions.insert_one(chipless)
    service = ProvenanceService(repository, PROJECT)

    found = service.entity("t2_echo:Q0:exec009:task9")
    assert (found.chip_id, found.value_type, found.value) == ("", "float", 8e-5)
    assert [v.chip_id for v in service.history("t2_echo", "Q0").versions] == [""]
    assert service.history("t2_echo", "Q0", chip_id=CHIP).versions == []
    assert "t2_echo" not in {v.parameter_name for v in repository.current_versions(PROJECT, CHIP)}

    outcome = repository.record(
        make_record("exec010", "task10", {"t2_echo": 9e-5}, project_id=PROJECT, chip_id=CHIP)
    )
    assert outcome.versions == {"t2_echo": 1}  # a chain of its own chip, not on top of it
    assert service.entity("t2_echo:Q0:exec009:task9").valid_until is None
