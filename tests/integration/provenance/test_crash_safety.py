"""Crash-safe recording: a writer SIGKILLed at every boundary between its MongoDB commands
(issue 12, finding 2).

Each case starts a real child process (``killed_writer.py``) that records one task run on
the embedded MongoDB and kills itself with ``SIGKILL`` at one boundary. Afterwards readers
never serve a version without its activity and relations, ``check`` reports the damage, and
the next record, a replay or ``repair`` on this machine completes the run exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pymongo.database import Database

from qops.calibration.recording import InputValues, ProvenanceSink, RecordedCalibration, RunIds
from qops.config import MongoSettings
from qops.mongo import Document
from qops.provenance.config import ProvenanceSettings
from qops.provenance.integrity import ProblemKind, check, repair
from qops.provenance.models import Measured, RelationType, TaskRecord
from qops.provenance.outbox import Outbox, encode_record
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.integration.provenance.records import CHIP, PROJECT, make_record

CHILD = Path(__file__).with_name("killed_writer.py")
COMMANDS_PER_RECORD = 5
"""activity, current versions, relations, versions, closes."""


def _seed(repository: MongoProvenanceRepository) -> TaskRecord:
    """qubit_frequency v1 and t1 v1 (using it); return the record the child will write."""
    repository.record(make_record("exec-1", "t-freq", {"qubit_frequency": 5.0e9}))
    freq = repository.current_inputs(PROJECT, CHIP, "Q0", ["qubit_frequency"])
    repository.record(make_record("exec-1", "t-t1", {"t1": 4e-5}, inputs=list(freq.values())))
    return make_record(
        "exec-2",
        "t-c",
        {"t1": Measured(value=5e-5, unit="s"), "rabi_amplitude": 0.4},
        inputs=list(freq.values()),
    )


def _run_child(settings: MongoSettings, outbox: Outbox, kill_at: int, record: TaskRecord) -> int:
    assert settings.mongodb_url is not None
    done = subprocess.run(
        [
            sys.executable,
            str(CHILD),
            settings.mongodb_url.get_secret_value(),
            settings.mongodb_db,
            str(outbox.path),
            str(kill_at),
            encode_record(record),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[3],
    )
    if kill_at <= COMMANDS_PER_RECORD:
        assert done.returncode == -signal.SIGKILL, done.stderr
    else:
        assert done.returncode == 0, done.stderr
    return done.returncode


def _assert_readers_safe(repository: MongoProvenanceRepository) -> None:
    """Every current version (as get_dynamic and inputs read them) has its provenance."""
    service = ProvenanceService(repository, PROJECT)
    current = repository.current_versions(PROJECT, CHIP)
    inputs = repository.current_inputs(PROJECT, CHIP, "Q0", ["qubit_frequency", "t1"])
    for version in [*current, *inputs.values()]:
        lineage = service.lineage(version.entity_id, max_depth=1)
        generated = [e for e in lineage.edges if e.relation_type is RelationType.WAS_GENERATED_BY]
        assert len(generated) == 1, f"{version.entity_id} is current without wasGeneratedBy"
        activity = next(n for n in lineage.nodes if n.node_id == generated[0].target_id)
        assert activity.activity is not None, f"{version.entity_id}: activity not stored"
        if version.version > 1:
            derived = {
                e.target_id
                for e in lineage.edges
                if e.relation_type is RelationType.WAS_DERIVED_FROM
            }
            assert version.previous_entity_id in derived, version.entity_id


def _counts(db: Database[Document]) -> dict[str, int]:
    return {
        name: db[name].count_documents({})
        for name in ("parameter_versions", "activities", "provenance_relations")
    }


def test_killed_writer_child_sends_the_expected_commands(
    mongo_settings: MongoSettings, repository: MongoProvenanceRepository, tmp_path: Path
) -> None:
    """The boundaries below are every gap of a record's five commands (none skipped)."""
    record = _seed(repository)
    outbox = Outbox(tmp_path / "outbox.sqlite")
    assert mongo_settings.mongodb_url is not None
    done = subprocess.run(
        [
            sys.executable,
            str(CHILD),
            mongo_settings.mongodb_url.get_secret_value(),
            mongo_settings.mongodb_db,
            str(outbox.path),
            "1000",
            encode_record(record),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).parents[3],
    )
    assert int(done.stdout.strip()) == COMMANDS_PER_RECORD
    assert check(repository, PROJECT, outbox).ok
    assert outbox.in_flight() == []


@pytest.mark.parametrize("completion", ["next-record", "next-calibration", "replay", "repair"])
@pytest.mark.parametrize("kill_at", range(COMMANDS_PER_RECORD + 1))
def test_writer_killed_at_each_boundary_is_invisible_checked_and_completed_once(
    kill_at: int,
    completion: str,
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
    repository: MongoProvenanceRepository,
    tmp_path: Path,
) -> None:
    record = _seed(repository)
    outbox = Outbox(tmp_path / "outbox.sqlite")

    _run_child(mongo_settings, outbox, kill_at, record)

    _assert_readers_safe(repository)
    broken = check(repository, PROJECT, outbox)
    assert not broken.ok
    kinds = {p.kind for p in broken.problems}
    assert ProblemKind.UNFINISHED_RECORD in kinds
    assert ProblemKind.ORPHAN not in kinds  # never a version without its provenance
    if kill_at == COMMANDS_PER_RECORD - 1:  # versions written, predecessor not yet closed
        assert ProblemKind.OPEN_PREDECESSOR in kinds

    recorder = ProvenanceRecorder(lambda: repository, outbox)
    sink = ProvenanceSink(lambda: repository, outbox)
    extra = {"parameter_versions": 0, "activities": 0, "provenance_relations": 0}
    if completion == "next-record":
        recorder.record(make_record("exec-3", "t-freq", {"qubit_frequency": 5.1e9}))
        extra = {"parameter_versions": 1, "activities": 1, "provenance_relations": 2}
    elif completion == "next-calibration":
        # A task reading t1 completes the killed run before it reads its inputs.
        def check_frequency(qid: str, inputs: InputValues) -> dict[str, float]:
            assert inputs["t1"].entity_id == "t1:Q0:exec-2:t-c"
            return {"qubit_frequency": 5.2e9}

        task = RecordedCalibration(check_frequency, outputs=["qubit_frequency"], inputs=["t1"])
        settings = ProvenanceSettings(project_id=PROJECT, chip_id=CHIP)
        task.run(RunIds(task_id="t-next", flow_run_id="exec-3"), sink, settings, "Q0")
        # used t1, wasGeneratedBy, wasDerivedFrom t1 and the previous frequency
        extra = {"parameter_versions": 1, "activities": 1, "provenance_relations": 4}
    elif completion == "replay":
        assert recorder.replay() == 1
    else:
        assert repair(repository, PROJECT, recorder, dry_run=True).actions
        report = repair(repository, PROJECT, recorder)
        assert report.left == []
        assert ProblemKind.UNFINISHED_RECORD in {a.kind for a in report.actions}
        again = repair(repository, PROJECT, recorder)  # idempotent
        assert (again.actions, again.left) == ([], [])

    final = check(repository, PROJECT, outbox)
    assert final.ok, final.problems
    assert outbox.pending() == 0
    assert outbox.in_flight() == []
    _assert_readers_safe(repository)
    # Exactly the seed (2 versions, 2 activities, 4 relations) and the killed record
    # (2 versions, 1 activity; used, 2 wasGeneratedBy, 3 wasDerivedFrom): nothing doubled.
    expected = {"parameter_versions": 4, "activities": 3, "provenance_relations": 10}
    assert _counts(mongo_db) == {k: n + extra[k] for k, n in expected.items()}
    history, total = repository.history(PROJECT, "t1", "Q0", 10, CHIP)
    assert [v.version for v in history] == [2, 1]
    assert total == 2
    assert history[1].valid_until == history[0].valid_from
