"""Version chains per (project, chip, parameter, qid): two chips in one project, on the
embedded MongoDB (issue 12, finding 1)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from qops.backend.provenance_source import ProvenanceCalibrationSource
from qops.mongo import Document
from qops.provenance.models import Measured, RelationType
from qops.provenance.repository import VERSIONS, MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.integration.provenance.records import PROJECT, make_record

CHIP_A = "default"
CHIP_B = "chipB"
PARAMETERS = ("qubit_frequency", "t1")


def _calibrate(
    repository: MongoProvenanceRepository, chip_id: str, execution_id: str, scale: float
) -> dict[str, str]:
    """One calibration of a chip: Q0's frequency, then t1 using it; return the entity ids."""
    freq = repository.record(
        make_record(
            execution_id,
            "t-freq",
            {"qubit_frequency": Measured(value=5e9 * scale, unit="Hz")},
            chip_id=chip_id,
        )
    )
    used = repository.current_inputs(PROJECT, chip_id, "Q0", ["qubit_frequency"])
    t1 = repository.record(
        make_record(
            execution_id,
            "t-t1",
            {"t1": 4e-5 * scale},
            chip_id=chip_id,
            inputs=list(used.values()),
        )
    )
    return {**freq.entity_ids, **t1.entity_ids}


def test_calibrating_chip_b_leaves_chip_a_chains_current_values_and_inputs(
    repository: MongoProvenanceRepository, service: ProvenanceService
) -> None:
    first_a = _calibrate(repository, CHIP_A, "exec-a1", 1.0)
    second_a = _calibrate(repository, CHIP_A, "exec-a2", 1.01)
    before = repository.current_versions(PROJECT, CHIP_A)
    source = ProvenanceCalibrationSource(repository, PROJECT)
    served_before = source.current_parameters(CHIP_A)

    chip_b = _calibrate(repository, CHIP_B, "exec-b1", 1.2)

    # Chip B starts its own chains: version 1, no predecessor, nothing of chip A closed.
    for name in PARAMETERS:
        version_b = service.entity(chip_b[name])
        assert version_b.chip_id == CHIP_B
        assert version_b.version == 1, name
        assert version_b.previous_entity_id is None, name
        version_a = service.entity(second_a[name])
        assert version_a.valid_until is None, name
        assert service.entity(first_a[name]).valid_until == version_a.valid_from
    # Chip A's current versions and the values get_dynamic serves are unchanged.
    assert repository.current_versions(PROJECT, CHIP_A) == before
    assert [v.version for v in before] == [2, 2]
    assert source.current_parameters(CHIP_A) == served_before
    assert {v.entity_id for v in repository.current_versions(PROJECT, CHIP_B)} == set(
        chip_b.values()
    )
    # Chip A's next calibration reads chip A's inputs and continues chip A's chain.
    inputs_a = repository.current_inputs(PROJECT, CHIP_A, "Q0", list(PARAMETERS))
    assert {n: v.entity_id for n, v in inputs_a.items()} == second_a
    inputs_b = repository.current_inputs(PROJECT, CHIP_B, "Q0", list(PARAMETERS))
    assert {n: v.entity_id for n, v in inputs_b.items()} == chip_b
    third_a = _calibrate(repository, CHIP_A, "exec-a3", 1.02)
    for name in PARAMETERS:
        version = service.entity(third_a[name])
        assert (version.version, version.previous_entity_id) == (3, second_a[name])
    t1_run = repository.relations_from(PROJECT, ["exec-a3:t-t1"], downstream=False)
    used = {r.target_id for r in t1_run if r.relation_type is RelationType.USED}
    assert used == {third_a["qubit_frequency"]}

    # History per chip, and of every chip.
    history_a = service.history("qubit_frequency", "Q0", chip_id=CHIP_A)
    assert [v.version for v in history_a.versions] == [3, 2, 1]
    assert {v.chip_id for v in history_a.versions} == {CHIP_A}
    history_b = service.history("qubit_frequency", "Q0", chip_id=CHIP_B)
    assert [v.entity_id for v in history_b.versions] == [chip_b["qubit_frequency"]]
    assert service.history("qubit_frequency", "Q0").total_versions == 4
    # Changes: chip B's first version has no previous value; chip A's have their own.
    changes = {c.entity_id: c for c in service.changes(limit=50).changes}
    assert changes[chip_b["qubit_frequency"]].previous_value is None
    assert changes[third_a["qubit_frequency"]].previous_value == 5e9 * 1.01
    # Impact of chip A's version stays on chip A; lineage of chip B's never reaches chip A.
    impact = service.impact(second_a["qubit_frequency"], max_depth=10)
    reached = {n.node_id for n in impact.nodes}
    assert not reached & set(chip_b.values())
    assert third_a["qubit_frequency"] in reached
    lineage = service.lineage(chip_b["t1"], max_depth=10)
    ancestors = [n.node_id for n in lineage.nodes if n.entity is not None]
    assert ancestors
    assert {service.entity(node).chip_id for node in ancestors} == {CHIP_B}


def _old_unique_index(db: Database[Document]) -> None:
    db[VERSIONS].create_index(
        [
            ("project_id", ASCENDING),
            ("parameter_name", ASCENDING),
            ("qid", ASCENDING),
            ("version", DESCENDING),
        ],
        unique=True,
    )


def test_ensure_indexes_on_an_old_database_drops_the_chipless_index(
    mongo_db: Database[Document],
) -> None:
    _old_unique_index(mongo_db)
    repository = MongoProvenanceRepository(mongo_db)
    first_a = _calibrate(repository, CHIP_A, "exec-a1", 1.0)

    repository.ensure_indexes()
    repository.ensure_indexes()  # idempotent

    chip_b = _calibrate(repository, CHIP_B, "exec-b1", 1.2)
    assert repository.get_entity(PROJECT, chip_b["t1"]) is not None
    assert repository.get_entity(PROJECT, chip_b["t1"]).version == 1  # type: ignore[union-attr]
    assert repository.get_entity(PROJECT, first_a["t1"]).valid_until is None  # type: ignore[union-attr]


def test_ensure_indexes_splits_chains_written_across_chips(
    mongo_db: Database[Document],
) -> None:
    """A history as written before chains were per chip: chip B's v3 succeeded chip A's v2."""
    repository = MongoProvenanceRepository(mongo_db)
    first_a = _calibrate(repository, CHIP_A, "exec-a1", 1.0)
    second_a = _calibrate(repository, CHIP_A, "exec-a2", 1.01)
    chip_b = _calibrate(repository, CHIP_B, "exec-b1", 1.2)
    versions = mongo_db[VERSIONS]
    relations = mongo_db["provenance_relations"]
    for name in PARAMETERS:
        # What the chip-blind numbering wrote: v3 on chip B after chip A's v2, which closed.
        b_doc = versions.find_one({"_id": chip_b[name]})
        assert b_doc is not None
        versions.update_one(
            {"_id": chip_b[name]},
            {"$set": {"version": 3, "previous_entity_id": second_a[name]}},
        )
        versions.update_one({"_id": second_a[name]}, {"$set": {"valid_until": b_doc["valid_from"]}})
        key = f"{RelationType.WAS_DERIVED_FROM.value}|{chip_b[name]}|{second_a[name]}"
        relations.insert_one(
            {
                "_id": f"{PROJECT}|{key}",
                "relation_type": RelationType.WAS_DERIVED_FROM.value,
                "source_id": chip_b[name],
                "source_type": "entity",
                "target_id": second_a[name],
                "target_type": "entity",
                "project_id": PROJECT,
                "execution_id": "exec-b1",
            }
        )
    _old_unique_index(mongo_db)
    service = ProvenanceService(repository, PROJECT)
    assert repository.current_versions(PROJECT, CHIP_A) == []  # what the issue saw

    repository.ensure_indexes()

    current_a = repository.current_versions(PROJECT, CHIP_A)
    assert {v.entity_id for v in current_a} == set(second_a.values())
    for name in PARAMETERS:
        b_version = service.entity(chip_b[name])
        assert b_version.previous_entity_id is None
        assert (
            service.entity(first_a[name]).valid_until == service.entity(second_a[name]).valid_from
        )
    impact = service.impact(second_a["qubit_frequency"], max_depth=10)
    assert not {n.node_id for n in impact.nodes} & set(chip_b.values())
    inputs = repository.current_inputs(PROJECT, CHIP_A, "Q0", list(PARAMETERS))
    assert {n: v.entity_id for n, v in inputs.items()} == second_a
    assert repository.split_chains_by_chip() == 0  # nothing left to relink
