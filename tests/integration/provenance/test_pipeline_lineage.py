"""Provenance across the pipeline: calibrated values back to their QCoDeS runs, and syncs.

Real calibrations of the simulated chip (real QCoDeS runs, fits, recorded provenance) and
real syncs of their database into the catalog, on the embedded MongoDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo.database import Database
from qcodes.dataset import connect as qcodes_connect
from qcodes.dataset import load_by_guid

from qops.calibration.instruments import close_instruments
from qops.calibration.plan import ChipSpec
from qops.catalog.repository import DatasetRepository
from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.export.store import LocalDirStore
from qops.mongo import Document
from qops.provenance.errors import EntityNotFoundError
from qops.provenance.ids import EntityKind, dataset_entity_id
from qops.provenance.integrity import check
from qops.provenance.models import RelationType
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import (
    ACTIVITIES,
    ENTITIES,
    RELATIONS,
    MongoProvenanceRepository,
)
from qops.provenance.service import ProvenanceService
from qops.sync_provenance import SyncProvenance, backfill
from tests.browser.calibrated import Calibration, record_calibration, sync_calibration_runs
from tests.cli import run_qops

PROJECT = "pipeline"
CHIP = ChipSpec(chip_id="chip-pipeline", n_qubits=1, seed=20261204)


@pytest.fixture
def calibrated(mongo_settings: MongoSettings, tmp_path: Path) -> Iterator[tuple[Calibration, Path]]:
    """One recorded calibration of a one-qubit chip, its QCoDeS database, then synced."""
    database_path = tmp_path / "lab.db"
    try:
        calibration = record_calibration(
            mongo_settings, "exec-1", database_path, chip=CHIP, project_id=PROJECT
        )
        yield calibration, database_path
    finally:
        close_instruments()


def _service(db: Database[Document]) -> ProvenanceService:
    return ProvenanceService(MongoProvenanceRepository(db), PROJECT)


def _counts(db: Database[Document]) -> tuple[int, int, int]:
    return (
        db[ENTITIES].count_documents({}),
        db[RELATIONS].count_documents({}),
        db[ACTIVITIES].count_documents({}),
    )


def test_every_calibrated_value_reaches_the_qcodes_run_it_was_fitted_from(
    calibrated: tuple[Calibration, Path], mongo_db: Database[Document]
) -> None:
    calibration, database_path = calibrated
    service = _service(mongo_db)
    assert calibration.outcomes, calibration.failed
    for (step, _qid), outcome in calibration.outcomes.items():
        assert len(outcome.datasets) == 1, step
        measured = outcome.datasets[0]
        # The run is a real one of the lab's database, named by the step.
        conn = qcodes_connect(str(database_path))
        try:
            assert load_by_guid(measured.guid, conn=conn).name == step.value
        finally:
            conn.close()
        assert measured.source_db == str(database_path.resolve())
        for entity_id in outcome.entity_ids.values():
            graph = service.lineage(entity_id, max_depth=50)
            datasets = {n.node_id: n for n in graph.nodes if n.entity_type is EntityKind.DATASET}
            # The step's own run, at depth 1 (wasDerivedFrom) ...
            own = datasets[dataset_entity_id(measured.guid)]
            assert own.depth == 1
            assert own.dataset is not None
            assert own.dataset.run_id == measured.run_id
            edges = {(e.relation_type, e.source_id, e.target_id) for e in graph.edges}
            assert (RelationType.WAS_DERIVED_FROM, entity_id, own.node_id) in edges
            assert (RelationType.USED, outcome.activity_id, own.node_id) in edges
            # ... and every input's run further down: each input version's own dataset.
            for used in outcome.inputs.values():
                feeding = [
                    o
                    for o in calibration.outcomes.values()
                    if used.entity_id in o.entity_ids.values()
                ]
                assert feeding, used.entity_id
                assert dataset_entity_id(feeding[0].datasets[0].guid) in datasets
            # The raw datasets are at the bottom: nothing leads further from them.
            for node_id in datasets:
                assert not [e for e in graph.edges if e.source_id == node_id]


def test_impact_of_a_dataset_lists_every_version_that_depends_on_it(
    calibrated: tuple[Calibration, Path], mongo_db: Database[Document]
) -> None:
    calibration, _ = calibrated
    service = _service(mongo_db)
    frequency = next(o for (s, _), o in calibration.outcomes.items() if s.value == "CheckFrequency")
    origin = dataset_entity_id(frequency.datasets[0].guid)
    graph = service.impact(origin, max_depth=50)
    assert graph.origin.entity_type is EntityKind.DATASET
    reached = {n.node_id for n in graph.nodes if n.entity_type is EntityKind.PARAMETER}
    # Every version of this calibration but those of steps that read no qubit_frequency
    # descend from the frequency measurement; at least its own and the Rabi step's do.
    assert set(frequency.entity_ids.values()) <= reached
    rabi = next(o for (s, _), o in calibration.outcomes.items() if s.value == "CheckRabi")
    assert set(rabi.entity_ids.values()) <= reached
    independent = {
        eid
        for o in calibration.outcomes.values()
        if not o.inputs and o is not frequency
        for eid in o.entity_ids.values()
    }
    assert not (independent & reached)


def test_sync_records_each_file_version_with_its_activity_once(
    calibrated: tuple[Calibration, Path],
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
    tmp_path: Path,
) -> None:
    calibration, database_path = calibrated
    synced = sync_calibration_runs(
        mongo_settings, database_path, tmp_path / "files", project_id=PROJECT
    )
    assert synced == len(calibration.outcomes) + len(calibration.failed)
    service = _service(mongo_db)
    records = list(DatasetRepository(mongo_db).collection.find({}))
    assert len(records) == synced
    for record in records:
        found = service.dataset(record["alt_uid"])
        assert [f.file.version for f in found.files] == [1]
        generated = found.files[0].generated_by
        assert generated is not None
        assert generated.task_type == "sync"
        assert generated.agent is not None
        assert generated.agent.name == "sync:calibration-lab"
        assert generated.agent.host
        assert found.files[0].file.md5 == record["files"][-1]["md5"]
        assert found.dataset.source_db == str(database_path.resolve())
    for outcome in calibration.outcomes.values():
        found = service.dataset(outcome.datasets[0].guid)
        assert {v.entity_id for v in found.derived_versions} == set(outcome.entity_ids.values())
        assert {a.task_type for a in found.used_by} >= {"sync"}
    report = check(MongoProvenanceRepository(mongo_db), PROJECT)
    assert report.ok, report.problems
    # Synced again: nothing changed, nothing written twice.
    before = _counts(mongo_db)
    service_again = SyncService(
        mongo_db,
        LocalDirStore(tmp_path / "files"),
        SyncSettings(),
        SyncProvenance(ProvenanceRecorder.mongo(mongo_settings), PROJECT),
    )
    service_again.sync_source("calibration-lab")
    assert _counts(mongo_db) == before
    # The executions list is the lab's calibrations, not the syncs.
    assert [e.execution_id for e in service.executions().executions] == ["exec-1"]


def test_a_metadata_change_derives_file_version_2_from_1_and_a_redone_sync_writes_it_once(
    calibrated: tuple[Calibration, Path],
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calibration, database_path = calibrated
    sync_calibration_runs(mongo_settings, database_path, tmp_path / "files", project_id=PROJECT)
    measured = next(iter(calibration.outcomes.values())).datasets[0]
    guid = measured.guid
    conn = qcodes_connect(str(database_path))
    try:
        load_by_guid(guid, conn=conn).add_metadata("reviewed_by", "a scientist")
    finally:
        conn.close()
    service = SyncService(
        mongo_db,
        LocalDirStore(tmp_path / "files"),
        SyncSettings(),
        SyncProvenance(ProvenanceRecorder.mongo(mongo_settings), PROJECT),
    )
    # The first attempt dies after recording the provenance, before the catalog record.
    real_save = DatasetRepository.save
    calls: list[int] = []

    def dies_once(self: DatasetRepository, record: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("killed between the provenance and the catalog record")
        real_save(self, record)  # type: ignore[arg-type]

    monkeypatch.setattr(DatasetRepository, "save", dies_once)
    assert measured.run_id in service.discover("calibration-lab").run_ids
    assert measured.run_id is not None
    with pytest.raises(RuntimeError, match="killed"):
        service.sync_run("calibration-lab", measured.run_id)
    after_crash = _counts(mongo_db)
    outcome = service.sync_run("calibration-lab", measured.run_id)
    assert outcome.action == "updated"
    assert outcome.file_version == 2
    assert _counts(mongo_db) == after_crash  # the redone sync wrote the same documents
    provenance = _service(mongo_db)
    found = provenance.dataset(guid)
    assert [f.file.version for f in found.files] == [1, 2]
    assert all(f.generated_by is not None for f in found.files)
    second = found.files[1].file
    lineage = provenance.lineage(second.entity_id, max_depth=3)
    edges = {(e.relation_type, e.source_id, e.target_id) for e in lineage.edges}
    first_id = found.files[0].file.entity_id
    assert (RelationType.WAS_DERIVED_FROM, second.entity_id, first_id) in edges
    assert (RelationType.WAS_DERIVED_FROM, second.entity_id, dataset_entity_id(guid)) in edges
    document = provenance.export_prov_json(second.entity_id, max_depth=3)
    assert document["entity"][f"qops:{dataset_entity_id(guid)}"]["prov:type"]["$"] == (
        "qops:QCoDeSRun"
    )
    assert document["entity"][f"qops:{second.entity_id}"]["qops:version"] == 2


def test_an_unknown_dataset_is_a_clear_not_found(mongo_db: Database[Document]) -> None:
    service = _service(mongo_db)
    with pytest.raises(EntityNotFoundError, match="raw measurement"):
        service.dataset("aaaaaaaa-0000-0000-0000-000000000000")
    with pytest.raises(EntityNotFoundError, match="synced file version"):
        service.lineage("dataset-file:aaaaaaaa-0000-0000-0000-000000000000:v1")


def test_runs_synced_before_provenance_are_backfilled_once_and_chain_on(
    calibrated: tuple[Calibration, Path],
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
    tmp_path: Path,
) -> None:
    calibration, database_path = calibrated
    files = LocalDirStore(tmp_path / "files")
    SyncSources.create(
        name="legacy-lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(database_path), "set_up": "simulated-chip"},
        settings=mongo_settings,
    )
    legacy = SyncService(mongo_db, files, SyncSettings())  # as synced before: no observer
    legacy.ensure_indexes()
    synced = len(legacy.sync_source("legacy-lab"))
    assert mongo_db[ENTITIES].count_documents({"entity_type": "dataset_file"}) == 0
    # A run re-synced after the upgrade: its v2 is not derived from the unrecorded v1.
    measured = next(iter(calibration.outcomes.values())).datasets[0]
    assert measured.run_id is not None
    conn = qcodes_connect(str(database_path))
    try:
        load_by_guid(measured.guid, conn=conn).add_metadata("reviewed_by", "a scientist")
    finally:
        conn.close()
    observer = SyncProvenance(ProvenanceRecorder.mongo(mongo_settings), PROJECT)
    upgraded = SyncService(mongo_db, files, SyncSettings(), observer)
    upgraded.discover("legacy-lab")
    assert upgraded.sync_run("legacy-lab", measured.run_id).file_version == 2
    repository = MongoProvenanceRepository(mongo_db)
    assert check(repository, PROJECT).ok  # no relation names the unrecorded v1
    # The backfill records the current file of every other run, once.
    report = backfill(upgraded, observer)
    assert report.already == 1
    assert report.recorded == synced - 1
    assert not report.skipped
    again = backfill(upgraded, observer)
    assert (again.recorded, again.already) == (0, synced)
    service = _service(mongo_db)
    for record in DatasetRepository(mongo_db).collection.find({}):
        found = service.dataset(record["alt_uid"])
        assert [f.file.version for f in found.files] == [record["files"][-1]["version"]]
        assert found.files[0].generated_by is not None
    assert check(repository, PROJECT).ok
    # The command a lab runs once after upgrading says what it did.
    ran = run_qops("sync", "backfill-provenance", "legacy-lab", env={"QOPS_PROJECT_ID": PROJECT})
    assert ran.returncode == 0, ran.stderr
    assert f"0 file versions recorded, {synced} already recorded, 0 skipped" in ran.stdout
    unknown = run_qops("sync", "backfill-provenance", "no-such-source")
    assert unknown.returncode != 0
    assert "no-such-source" in unknown.stderr
