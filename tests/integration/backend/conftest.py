"""2300 meta servers on loopback ports, in threads of the test process.

``start_server`` (from :mod:`tests.meta_support`) starts one over in-memory calibration
values; ``serve_source`` one answering get_dynamic from a given source, e.g. the
provenance store, which ``record`` writes to.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pymongo.database import Database

from qops.backend.config import BackendConfig
from qops.backend.server import MetaServer
from qops.backend.sources import CalibrationSource
from qops.backend.state import MongoBackendStateStore
from qops.mongo import Document
from qops.provenance.models import (
    ActivityStatus,
    Agent,
    AgentType,
    Measured,
    RecordResult,
    TaskRecord,
)
from qops.provenance.outbox import Outbox
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository
from qops.timeutil import utc_now
from tests.meta_support import start_server, zmq_context

__all__ = ["serve_source", "start_server", "zmq_context"]

PROJECT = "lab"
CHIP = "chip-a"

Record = Callable[..., RecordResult]
StartServer = Callable[[CalibrationSource], str]


def backend_config(**overrides: object) -> BackendConfig:
    fields: dict[str, object] = {
        "name": "spin-2",
        "chip_id": CHIP,
        "project_id": PROJECT,
        "nqubits": 2,
        "topology": [(0, 1)],
        "extra_metrics": {"fridge_temperature_in_mk": 8.4},
    }
    fields.update(overrides)
    return BackendConfig.model_validate(fields)


@pytest.fixture
def repository(mongo_db: Database[Document]) -> MongoProvenanceRepository:
    repo = MongoProvenanceRepository(mongo_db)
    repo.ensure_indexes()
    return repo


@pytest.fixture
def record(repository: MongoProvenanceRepository, tmp_path: Path) -> Record:
    """Record one completed task run through the recorder, as ``@calibration_task`` does."""
    recorder = ProvenanceRecorder(lambda: repository, Outbox(tmp_path / "outbox.sqlite"))

    def write(
        qid: str,
        outputs: dict[str, float | int | str],
        *,
        chip_id: str = CHIP,
        project_id: str = PROJECT,
        execution_id: str | None = None,
        task_id: str | None = None,
    ) -> RecordResult:
        now = utc_now()
        result = recorder.record(
            TaskRecord(
                project_id=project_id,
                chip_id=chip_id,
                execution_id=execution_id or f"run-{uuid.uuid4().hex[:8]}",
                task_id=task_id or f"task-{uuid.uuid4().hex[:8]}",
                task_name="check-something",
                qid=qid,
                started_at=now - timedelta(seconds=1),
                ended_at=now,
                status=ActivityStatus.COMPLETED,
                agent=Agent(agent_type=AgentType.SYSTEM, name="prefect:test"),
                outputs={name: Measured(value=value) for name, value in outputs.items()},
            )
        )
        assert not result.deferred
        return result

    return write


@pytest.fixture
def serve_source(mongo_db: Database[Document]) -> Iterator[StartServer]:
    """Start a meta server with a given calibration source; return its REP endpoint."""
    running: list[tuple[MetaServer, threading.Thread]] = []

    def start(source: CalibrationSource) -> str:
        server = MetaServer(
            backend_config(),
            source,
            MongoBackendStateStore(mongo_db),
            "tcp://127.0.0.1:*",
            "tcp://127.0.0.1:*",
        )
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        running.append((server, thread))
        return server.req_endpoint

    yield start
    for server, thread in running:
        server.stop()
        thread.join(timeout=5)
        server.close()
        assert not thread.is_alive()
