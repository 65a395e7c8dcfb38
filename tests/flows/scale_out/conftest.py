"""The scale-out set-up, once for the module that uses it: PostgreSQL, a Prefect server on
it, the ``qops`` pool with the deployments of ``prefect.yaml`` and the automations of
``automations/*.yaml``, and three process workers on the session's embedded MongoDB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from qops.config import MongoSettings
from qops.mongo import EmbeddedServer, connect
from tests.flows.scale_out.cluster import (
    HEARTBEAT_S,
    Api,
    Postgres,
    PrefectServer,
    Worker,
    set_up_pool,
    worker_env,
)

ZOMBIE_WITHIN_S = HEARTBEAT_S + 20
"""Seconds without a heartbeat before the automation marks a flow run Crashed (the lab's
automations/crash-zombie-flow-runs.yaml waits three heartbeats; the tests wait one and a margin)."""


@dataclass
class Cluster:
    """The running scale-out set-up."""

    postgres: Postgres
    server: PrefectServer
    api: Api
    workers: list[Worker]
    env: dict[str, str]
    mongo: MongoSettings
    log_dir: Path

    def add_worker(self) -> Worker:
        """Start one more worker (after one was killed)."""
        worker = Worker(f"w{len(self.workers) + 1}", self.env, self.log_dir)
        self.workers.append(worker)
        return worker


@pytest.fixture(scope="module")
def cluster(
    embedded_mongo: EmbeddedServer,
    qops_data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """PostgreSQL, a Prefect server on it, the pool, deployments, automations, 3 workers."""
    log_dir = tmp_path_factory.mktemp("scale-out")
    name = f"scale_out_{uuid.uuid4().hex[:8]}"
    mongo = MongoSettings(
        mongodb_url=SecretStr(embedded_mongo.url), mongodb_db=name, data_dir=qops_data_dir
    )
    qops_env = {
        "QOPS_MONGODB_URL": embedded_mongo.url,
        "QOPS_MONGODB_DB": name,
        "QOPS_DATA_DIR": str(qops_data_dir),
    }
    postgres = Postgres()
    workers: list[Worker] = []
    server: PrefectServer | None = None
    try:
        postgres.start()
        server = PrefectServer(log_dir / "prefect", postgres.url).start()
        set_up_pool(server.api_url, automation_within_s=ZOMBIE_WITHIN_S)
        env = worker_env(server.api_url, qops_env)
        workers.extend(Worker(f"w{i}", env, log_dir) for i in (1, 2, 3))
        yield Cluster(postgres, server, Api(server.api_url), workers, env, mongo, log_dir)
    finally:
        for worker in workers:
            worker.stop()
        if server is not None:
            server.stop()
        postgres.stop()
        connect(mongo).drop_database(name)
