"""Recording task runs in the embedded MongoDB: versions, idempotency, concurrency, outbox."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr
from pymongo import MongoClient
from pymongo.database import Database

from qops.config import MongoSettings
from qops.mongo import Document, connect
from qops.process import free_port
from qops.provenance.models import ActivityStatus, Measured
from qops.provenance.outbox import Outbox
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import EntityIdCollisionError, MongoProvenanceRepository
from tests.integration.provenance.records import (
    CHIP,
    PROJECT,
    CommandCounter,
    make_record,
    record_chain,
)

WRITERS = 8
RUNS_PER_WRITER = 6


def test_record_concurrent_writers_versions_gap_free_with_one_current(
    mongo_settings: MongoSettings, repository: MongoProvenanceRepository
) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    assert mongo_settings.mongodb_url is not None
    url = mongo_settings.mongodb_url.get_secret_value()

    def writer(index: int) -> None:
        # A client of its own per writer, as separate worker processes would have.
        client: MongoClient[Document] = MongoClient(url)
        try:
            own = MongoProvenanceRepository(client[mongo_settings.mongodb_db])
            start.wait()
            for run in range(RUNS_PER_WRITER):
                own.record(
                    make_record(
                        f"exec-w{index}",
                        f"task-{run}",
                        {"qubit_frequency": 5e9 + index, "t1": 1e-5 * run},
                    )
                )
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            client.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors

    total = WRITERS * RUNS_PER_WRITER
    for name in ("qubit_frequency", "t1"):
        versions, count = repository.history(PROJECT, name, "Q0", limit=1000)
        assert count == total
        assert sorted(v.version for v in versions) == list(range(1, total + 1))
        current = [v for v in versions if v.valid_until is None]
        assert [v.version for v in current] == [total]
        by_version = {v.version: v for v in versions}
        for v in versions:
            if v.version > 1:
                assert v.previous_entity_id == by_version[v.version - 1].entity_id
                assert by_version[v.version - 1].valid_until == v.valid_from


def test_record_same_run_twice_writes_everything_once(
    repository: MongoProvenanceRepository, mongo_db: Database[Document]
) -> None:
    ids = record_chain(repository, "exec-1", 5e9)
    inputs = repository.current_inputs(PROJECT, CHIP, "Q0", ["qubit_frequency", "rabi_amplitude"])
    t1_again = make_record("exec-1", "t-t1", {"t1": 5e-5}, inputs=list(inputs.values()))
    counts = {c: mongo_db[c].count_documents({}) for c in mongo_db.list_collection_names()}

    result = repository.record(t1_again)

    assert result.entity_ids["t1"] == ids["t1"]
    assert result.versions["t1"] == 1
    assert {c: mongo_db[c].count_documents({}) for c in counts} == counts


def test_record_crash_after_versions_retry_completes_the_run(
    repository: MongoProvenanceRepository, mongo_db: Database[Document]
) -> None:
    repository.record(make_record("exec-1", "t-a", {"qubit_frequency": 5.0e9}))
    second = make_record("exec-2", "t-a", {"qubit_frequency": 5.1e9})
    repository._write_activity(second, "exec-2:t-a")
    repository._write_versions(second, "exec-2:t-a")  # the process dies before the close

    assert mongo_db.activities.count_documents({}) == 2
    result = repository.record(second)  # the retry

    assert result.versions == {"qubit_frequency": 2}
    versions, _ = repository.history(PROJECT, "qubit_frequency", "Q0", 10)
    assert [v.valid_until is None for v in versions] == [True, False]
    assert mongo_db.activities.count_documents({}) == 2
    assert mongo_db.provenance_relations.count_documents({"relation_type": "wasDerivedFrom"}) == 1


def test_record_commands_do_not_grow_with_parameter_count(
    mongo_settings: MongoSettings, repository: MongoProvenanceRepository
) -> None:
    counter = CommandCounter()
    assert mongo_settings.mongodb_url is not None
    client: MongoClient[Document] = MongoClient(
        mongo_settings.mongodb_url.get_secret_value(), event_listeners=[counter]
    )
    try:
        counted = MongoProvenanceRepository(client[mongo_settings.mongodb_db])
        inputs = list(
            repository.current_inputs(PROJECT, CHIP, "Q0", ["p0"]).values()
        )  # none yet: first runs have no inputs
        per_size: dict[int, int] = {}
        for size in (1, 40):
            for round_ in range(2):  # the second round has predecessors to close
                outputs: dict[str, Measured | float | int | str] = {
                    f"p{i}": float(i) for i in range(size)
                }
                counter.commands.clear()
                counted.record(make_record(f"e{size}-{round_}", "t", outputs, inputs=inputs))
                per_size[size] = len(counter.commands)
    finally:
        client.close()
    assert per_size[1] == per_size[40] == 5


def test_record_value_type_change_keeps_type_per_version(
    repository: MongoProvenanceRepository,
) -> None:
    repository.record(make_record("e1", "t", {"readout_mode": 3}))
    repository.record(make_record("e2", "t", {"readout_mode": "dispersive"}))
    repository.record(make_record("e3", "t", {"readout_mode": -math.inf}))

    versions, _ = repository.history(PROJECT, "readout_mode", "Q0", 10)
    assert [(v.value, v.value_type) for v in versions] == [
        (-math.inf, "float"),
        ("dispersive", "str"),
        (3, "int"),
    ]


def test_record_failed_run_stores_activity_only(
    repository: MongoProvenanceRepository, mongo_db: Database[Document]
) -> None:
    result = repository.record(make_record("e1", "t", {}, status=ActivityStatus.FAILED))
    assert result.entity_ids == {}
    activity = mongo_db.activities.find_one({"_id": "e1:t"})
    assert activity is not None
    assert activity["status"] == "failed"
    assert mongo_db.parameter_versions.count_documents({}) == 0


def test_current_versions_returns_newest_per_parameter_of_chip(
    repository: MongoProvenanceRepository,
) -> None:
    record_chain(repository, "exec-1", 5.0e9)
    record_chain(repository, "exec-2", 5.1e9)
    repository.record(make_record("exec-3", "t", {"qubit_frequency": 4.9e9}, qid="Q1"))

    current = repository.current_versions(PROJECT, "64Qv3")

    assert [(v.qid, v.parameter_name, v.version) for v in current] == [
        ("Q0", "qubit_frequency", 2),
        ("Q0", "rabi_amplitude", 2),
        ("Q0", "t1", 2),
        ("Q1", "qubit_frequency", 1),
    ]
    assert repository.current_versions(PROJECT, "other-chip") == []


def _unreachable(tmp_path: Path) -> MongoSettings:
    return MongoSettings(
        mongodb_url=SecretStr(f"mongodb://127.0.0.1:{free_port()}/"),
        mongodb_timeout_s=0.2,
        data_dir=tmp_path,
    )


def test_recorder_mongo_unreachable_keeps_records_and_replays_in_order(
    tmp_path: Path, repository: MongoProvenanceRepository
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    down_settings = _unreachable(tmp_path)

    def down() -> MongoProvenanceRepository:
        return MongoProvenanceRepository(connect(down_settings)["x"])

    offline = ProvenanceRecorder(down, outbox)
    first = offline.record(make_record("e1", "t", {"qubit_frequency": math.nan}))
    second = offline.record(make_record("e2", "t", {"qubit_frequency": 5.2e9}))
    assert first.deferred
    assert second.deferred
    assert repository.history(PROJECT, "qubit_frequency", "Q0", 10)[1] == 0

    reopened = Outbox(tmp_path / "outbox.sqlite")  # as a later process would
    assert reopened.pending() == 2
    assert math.isnan(reopened.peek()[0].outputs["qubit_frequency"].value)  # type: ignore[arg-type]

    online = ProvenanceRecorder(lambda: repository, reopened)
    third = online.record(make_record("e3", "t", {"qubit_frequency": 5.3e9}))

    assert not third.deferred
    assert third.versions == {"qubit_frequency": 3}
    assert reopened.pending() == 0
    versions, _ = repository.history(PROJECT, "qubit_frequency", "Q0", 10)
    assert [v.execution_id for v in versions] == ["e3", "e2", "e1"]
    assert math.isnan(versions[-1].value)  # type: ignore[arg-type]


def test_recorder_entity_id_of_other_project_fails_without_outbox(
    tmp_path: Path, repository: MongoProvenanceRepository
) -> None:
    repository.record(make_record("e1", "t", {"x": 1}, project_id="other"))
    outbox = Outbox(tmp_path / "outbox.sqlite")
    recorder = ProvenanceRecorder(lambda: repository, outbox)

    with pytest.raises(EntityIdCollisionError, match=r"x:Q0:e1:t.*project 'other'"):
        recorder.record(make_record("e1", "t", {"x": 2}))

    assert outbox.pending() == 0
    stored = repository.get_entity("other", "x:Q0:e1:t")
    assert stored is not None
    assert stored.value == 1


def test_record_retry_after_newer_version_keeps_its_own_number(
    repository: MongoProvenanceRepository,
) -> None:
    repository.record(make_record("e1", "t", {"qubit_frequency": 5.0e9}))
    slow = make_record("e2", "t", {"qubit_frequency": 5.1e9})
    repository._write_versions(slow, "e2:t")  # this run dies after writing version 2 ...
    repository.record(make_record("e3", "t", {"qubit_frequency": 5.2e9}))  # ... e3 writes 3

    retried = repository.record(slow)

    assert retried.versions == {"qubit_frequency": 2}
    versions, total = repository.history(PROJECT, "qubit_frequency", "Q0", 10)
    assert total == 3
    assert [(v.version, v.execution_id) for v in versions] == [(3, "e3"), (2, "e2"), (1, "e1")]
    assert [v.valid_until is None for v in versions] == [True, False, False]
