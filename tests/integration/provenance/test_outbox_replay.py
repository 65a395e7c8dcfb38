"""The outbox after an outage: dead letters, one copy per run, drained before inputs are read."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from qops.calibration.recording import ProvenanceSink, RecordedCalibration, RunIds
from qops.config import MongoSettings
from qops.mongo import connect
from qops.process import free_port
from qops.provenance.config import ProvenanceSettings
from qops.provenance.errors import InvalidValueError, OutboxPendingError
from qops.provenance.models import ActivityStatus, InputUse, RecordResult, TaskRecord
from qops.provenance.outbox import Failure, Outbox, encode_record, outbox_path
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.values import INT64_MAX, INT64_MIN
from tests.cli import run_qops
from tests.integration.provenance.records import PROJECT, make_record

SETTINGS = ProvenanceSettings(project_id=PROJECT, chip_id="64Qv3")


def _down(tmp_path: Path) -> MongoProvenanceRepository:
    settings = MongoSettings(
        mongodb_url=SecretStr(f"mongodb://127.0.0.1:{free_port()}/"),
        mongodb_timeout_s=0.2,
        data_dir=tmp_path,
    )
    return MongoProvenanceRepository(connect(settings)["x"])


def _raw_append(outbox: Outbox, payload: str) -> None:
    """Append a payload as an earlier qops (without validation at build) wrote it."""
    outbox.path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(outbox.path) as connection:
        connection.execute(  # the table as an earlier qops created it
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "enqueued_at TEXT NOT NULL, payload TEXT NOT NULL)"
        )
        connection.execute(
            "INSERT INTO outbox (enqueued_at, payload) VALUES ('2026-01-01T00:00:00+00:00', ?)",
            (payload,),
        )


def _oversized_int_payload() -> str:
    body = json.loads(encode_record(make_record("e-big", "t-big", {"counts": 1})))
    body["outputs"]["counts"]["value"] = 2**63
    return json.dumps(body)


def test_record_build_refuses_values_mongodb_cannot_store_naming_the_parameter() -> None:
    make_record("e", "t", {"lo": INT64_MIN, "hi": INT64_MAX})  # the int64 bounds are fine
    with pytest.raises(ValidationError, match=r"parameter 'counts'.*outside the 64-bit range"):
        make_record("e", "t", {"counts": 2**63})
    with pytest.raises(ValidationError, match=r"parameter 'note'.*longer than"):
        make_record("e", "t", {"note": "x" * (1024 * 1024 + 1)})


def test_calibration_returning_int_beyond_64_bits_fails_naming_it_and_records_failed(
    tmp_path: Path, repository: MongoProvenanceRepository
) -> None:
    def count_photons(qid: str) -> dict[str, int]:
        return {"photon_count": 2**64}

    task = RecordedCalibration(count_photons, outputs=["photon_count"])
    sink = ProvenanceSink(lambda: repository, Outbox(tmp_path / "outbox.sqlite"))
    with pytest.raises(InvalidValueError, match=r"'photon_count'.*'CountPhotons'.*64-bit"):
        task.run(RunIds(task_id="t1", flow_run_id="e1"), sink, SETTINGS, "Q0")

    failed = repository.activities(PROJECT, ["e1:t1"])
    assert [a.status for a in failed] == [ActivityStatus.FAILED]
    assert "photon_count" in (failed[0].error_message or "")
    assert sink.outbox.pending() == 0


def test_unwritable_head_is_dead_lettered_and_the_outbox_keeps_draining(
    tmp_path: Path, repository: MongoProvenanceRepository
) -> None:
    # An entity id held by another project, and an int an earlier qops let through.
    repository.record(make_record("e1", "t", {"x": 1}, project_id="other"))
    outbox = Outbox(tmp_path / "outbox.sqlite")
    ProvenanceRecorder(lambda: _down(tmp_path), outbox).record(make_record("e1", "t", {"x": 2}))
    _raw_append(outbox, _oversized_int_payload())
    assert outbox.pending() == 2

    recorder = ProvenanceRecorder(lambda: repository, outbox)
    later = recorder.record(make_record("e2", "t", {"x": 3}))

    assert not later.deferred
    assert later.versions == {"x": 1}
    assert outbox.pending() == 0
    dead = outbox.dead_letters()
    assert len(dead) == 2
    assert "EntityIdCollisionError" in dead[0].reason
    assert "project 'other'" in dead[0].reason
    assert "x:Q0:e1:t" in dead[0].reason
    assert "counts" in dead[1].reason
    assert "64-bit" in dead[1].reason
    assert all(d.attempts == 1 for d in dead)
    stored = repository.get_entity("other", "x:Q0:e1:t")
    assert stored is not None
    assert stored.value == 1

    # The next task runs as usual: nothing is tried again.
    assert not recorder.record(make_record("e3", "t", {"x": 4})).deferred
    assert len(outbox.dead_letters()) == 2


def test_failing_record_is_dead_lettered_after_bounded_attempts(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.append(make_record("e1", "t", {"x": 1}))
    outbox.append(make_record("e2", "t", {"x": 2}))
    tries: list[str] = []

    def refuse_e1(record: TaskRecord) -> RecordResult:
        tries.append(record.execution_id)
        if record.execution_id == "e1":
            raise RuntimeError("server refused the write")
        return RecordResult(activity_id=f"{record.execution_id}:t")

    reports = [outbox.replay(refuse_e1, lambda _e: Failure.TRANSIENT) for _ in range(3)]
    assert [r.blocked is not None for r in reports] == [True, True, False]
    assert "1 of 3 attempts" in (reports[0].blocked or "")
    assert tries == ["e1", "e1", "e1", "e2"]
    assert outbox.pending() == 0
    (dead,) = outbox.dead_letters()
    assert dead.attempts == 3
    assert dead.reason == "RuntimeError: server refused the write"


def test_retried_run_is_kept_once_in_the_outbox(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    recorder = ProvenanceRecorder(lambda: _down(tmp_path), outbox)
    for value in (1.0, 2.0, 3.0):  # the same task run retried while MongoDB is down
        assert recorder.record(make_record("e1", "t", {"f": value})).deferred
    recorder.record(make_record("e1", "t", {}, status=ActivityStatus.FAILED))

    assert outbox.pending() == 2
    completed, failed = outbox.peek()
    assert completed.outputs["f"].value == 3.0
    assert failed.status is ActivityStatus.FAILED


def test_replayed_version_keeps_its_measurement_time(
    tmp_path: Path, repository: MongoProvenanceRepository
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    measured = make_record("e1", "t", {"f": 5.0e9})
    measured = measured.model_copy(
        update={
            "started_at": measured.started_at - timedelta(hours=2),
            "ended_at": measured.ended_at - timedelta(hours=2),
        }
    )
    assert ProvenanceRecorder(lambda: _down(tmp_path), outbox).record(measured).deferred

    assert ProvenanceRecorder(lambda: repository, outbox).replay() == 1
    (version,), _ = repository.history(PROJECT, "f", "Q0", 10)
    assert abs(version.valid_from - measured.ended_at) < timedelta(milliseconds=1)


def _frequency_user() -> RecordedCalibration:
    def check_rabi(qid: str, inputs: dict[str, InputUse]) -> dict[str, float]:
        return {"rabi_amplitude": float(inputs["f"].value) / 1e10}

    return RecordedCalibration(check_rabi, outputs=["rabi_amplitude"], inputs=["f"])


def test_task_reads_inputs_only_after_the_outbox_is_drained(
    tmp_path: Path, repository: MongoProvenanceRepository
) -> None:
    repository.record(make_record("e1", "t-f", {"f": 5.0e9}))
    outbox = Outbox(tmp_path / "outbox.sqlite")
    # f v2 measured during an outage waits in the outbox.
    ProvenanceRecorder(lambda: _down(tmp_path), outbox).record(
        make_record("e2", "t-f", {"f": 5.2e9})
    )

    sink = ProvenanceSink(lambda: repository, outbox)
    outcome = _frequency_user().run(
        RunIds(task_id="t-rabi", flow_run_id="e3"), sink, SETTINGS, "Q0"
    )

    assert outcome.inputs["f"].version == 2
    assert outcome.inputs["f"].value == 5.2e9
    assert outbox.pending() == 0


def test_task_fails_naming_what_waits_when_the_outbox_cannot_drain(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    ProvenanceRecorder(lambda: _down(tmp_path), outbox).record(
        make_record("e2", "t-f", {"f": 5.2e9})
    )

    sink = ProvenanceSink(lambda: _down(tmp_path), outbox)
    with pytest.raises(OutboxPendingError, match=r"check-something completed for Q0.*e2.*f\)") as e:
        _frequency_user().run(RunIds(task_id="t-rabi", flow_run_id="e3"), sink, SETTINGS, "Q0")
    assert "MongoDB unreachable" in str(e.value)
    assert "'CheckRabi'" in str(e.value)
    assert str(outbox.path) in str(e.value)


def test_cli_replay_reports_dead_letters_and_unreachable_mongodb_without_traceback(
    repository: MongoProvenanceRepository, tmp_path: Path
) -> None:
    repository.record(make_record("e1", "t", {"x": 1}, project_id="other"))
    outbox = Outbox(outbox_path(tmp_path))
    ProvenanceRecorder(lambda: _down(tmp_path), outbox).record(make_record("e1", "t", {"x": 2}))
    _raw_append(outbox, _oversized_int_payload())
    ProvenanceRecorder(lambda: _down(tmp_path), outbox).record(
        make_record("e2", "t", {"x": math.pi})
    )

    here = {"QOPS_DATA_DIR": str(tmp_path)}
    down = run_qops(
        "provenance",
        "replay",
        env={
            **here,
            "QOPS_MONGODB_URL": f"mongodb://127.0.0.1:{free_port()}/",
            "QOPS_MONGODB_TIMEOUT_S": "0.3",
        },
    )
    assert down.returncode == 1
    assert "Traceback" not in down.stderr + down.stdout
    assert "3 still waiting" in down.stdout
    assert "MongoDB unreachable" in down.stderr

    result = run_qops("provenance", "replay", env=here)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "replayed 1 of 3 records; 2 dead-lettered; 0 still waiting" in result.stdout
    assert "EntityIdCollisionError" in result.stdout
    assert "counts" in result.stdout
    listed = run_qops("provenance", "replay", "--dead-letters", env=here)
    assert listed.returncode == 0, listed.stderr
    assert "replayed 0 of 0 records; 0 dead-lettered; 0 still waiting" in listed.stdout
    assert listed.stdout.count("dead-lettered #") == 2
    versions, _ = repository.history(PROJECT, "x", "Q0", 10)
    assert [v.execution_id for v in versions] == ["e2"]


def test_record_too_large_for_mongodb_is_dead_lettered(
    tmp_path: Path, repository: MongoProvenanceRepository
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    failed = make_record("e1", "t", {}, status=ActivityStatus.FAILED)
    huge = failed.model_copy(update={"error_message": "y" * (17 * 1024 * 1024)})
    _raw_append(outbox, encode_record(huge))

    recorder = ProvenanceRecorder(lambda: repository, outbox)
    assert recorder.record(make_record("e2", "t", {"x": 1})).versions == {"x": 1}

    assert outbox.pending() == 0
    (dead,) = outbox.dead_letters()
    assert "DocumentTooLarge" in dead.reason
    assert dead.attempts == 1
    assert repository.activities(PROJECT, ["e1:t"]) == []
