"""Crash-safe recording of a sync: a writer SIGKILLed at every boundary between the
MongoDB commands of one synced file version's record (issue 16).

The child (``killed_writer.py``) records file version 2 of a run whose version 1 is
recorded. Afterwards no file version is visible without its sync activity and relations,
``check`` reports the unfinished record, and a replay completes it exactly once.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pymongo.database import Database

from qops.catalog.models import FileVersion
from qops.catalog.service import FileWritten
from qops.config import MongoSettings
from qops.mongo import Document
from qops.provenance.integrity import ProblemKind, check
from qops.provenance.models import RelationType, TaskRecord
from qops.provenance.outbox import Outbox
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from qops.sync_provenance import sync_record
from qops.timeutil import utc_now
from tests.integration.provenance.records import PROJECT
from tests.integration.provenance.test_crash_safety import _run_child

GUID = "aaaaaaaa-bbbb-cccc-dddd-000000000001"
UUID = "0f0f0f0f-1111-5222-8333-444444444444"
COMMANDS_PER_SYNC_RECORD = 5
"""activity, the measurement, is the predecessor recorded?, relations, the file version."""


def _file_record(version: int) -> TaskRecord:
    now = utc_now() + timedelta(seconds=version)
    file = FileVersion(
        name=f"{GUID}.h5",
        version=version,
        location=f"lab/{GUID}.h5",
        size=1000 + version,
        md5=f"{version:032x}",
        rows=10 * version,
        complete=True,
        created=now,
    )
    event = FileWritten(
        source="lab",
        location="/labs/lab.db",
        run_id=7,
        guid=GUID,
        name="CheckT1",
        dataset_uuid=UUID,
        file=file,
        previous=None,
        started_at=now,
        ended_at=now,
    )
    return sync_record(event, PROJECT, "host-a")


def _counts(db: Database[Document]) -> dict[str, int]:
    return {
        name: db[name].count_documents({})
        for name in ("provenance_entities", "activities", "provenance_relations")
    }


def _assert_files_safe(service: ProvenanceService) -> None:
    """Every visible file version has its sync activity and its derivations."""
    for listed in service.dataset(GUID).files:
        assert listed.generated_by is not None, listed.file.entity_id
        lineage = service.lineage(listed.file.entity_id, max_depth=1)
        derived = {
            e.target_id for e in lineage.edges if e.relation_type is RelationType.WAS_DERIVED_FROM
        }
        assert f"dataset:{GUID}" in derived
        if listed.file.version > 1:
            assert listed.file.previous_entity_id in derived


@pytest.mark.parametrize("kill_at", range(COMMANDS_PER_SYNC_RECORD + 1))
def test_sync_writer_killed_at_each_boundary_is_invisible_and_completed_once(
    kill_at: int,
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
    repository: MongoProvenanceRepository,
    tmp_path: Path,
) -> None:
    repository.record(_file_record(1))
    outbox = Outbox(tmp_path / "outbox.sqlite")
    service = ProvenanceService(repository, PROJECT)
    clean = _counts(mongo_db)

    _run_child(mongo_settings, outbox, kill_at, _file_record(2))

    _assert_files_safe(service)
    broken = check(repository, PROJECT, outbox)
    kinds = {p.kind for p in broken.problems}
    assert ProblemKind.UNFINISHED_RECORD in kinds
    assert ProblemKind.ORPHAN not in kinds  # never a file version without its activity

    assert ProvenanceRecorder(lambda: repository, outbox).replay() == 1
    final = check(repository, PROJECT, outbox)
    assert final.ok, final.problems
    _assert_files_safe(service)
    assert [f.file.version for f in service.dataset(GUID).files] == [1, 2]
    # One more file version, one more activity; wasGeneratedBy, used, and wasDerivedFrom
    # the measurement and version 1: nothing doubled.
    assert _counts(mongo_db) == {
        "provenance_entities": clean["provenance_entities"] + 1,
        "activities": clean["activities"] + 1,
        "provenance_relations": clean["provenance_relations"] + 4,
    }
