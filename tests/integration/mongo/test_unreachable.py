"""MongoDB going away under running clients: 503 from the HTTP app, the embedded server
back on the same port (running clients reconnect), a stopped port free again at once."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from pymongo import MongoClient

from qops.config import MongoSettings
from qops.mongo import EmbeddedMongo, connect, database
from qops.process import free_port
from qops.provenance.api import create_app
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.cli import run_qops
from tests.integration.console.serving import console_env, serving


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    yield data
    EmbeddedMongo(data).stop()


def _env(data_dir: Path) -> dict[str, str]:
    return {"QOPS_DATA_DIR": str(data_dir), "QOPS_MONGODB_URL": "", "QOPS_MONGODB_TIMEOUT_S": "1"}


def _start(data_dir: Path, *options: str) -> str:
    started = run_qops("mongo", "start", *options, env=_env(data_dir))
    assert started.returncode == 0, started.stderr
    return started.stdout.split()[1]


def _stop(data_dir: Path) -> None:
    stopped = run_qops("mongo", "stop", env=_env(data_dir))
    assert stopped.returncode == 0, stopped.stderr


JSON_PATHS = [
    "/provenance/executions",
    "/provenance/changes",
    "/provenance/entities/qubit_frequency:Q00:e1:t1",
    "/provenance/lineage/qubit_frequency:Q00:e1:t1",
    "/datasets",
    "/datasets/by-alt-uid?scope=lab&alt_uid=x",
    "/datasets/0b7c3f7e-0000-4000-8000-000000000000",
]
PAGES = [
    "/console/executions",
    "/console/executions/e1",
    "/console/datasets",
    "/console/chips",
    "/console/chips/Q00",
]


def test_api_answers_503_while_the_embedded_server_is_down_and_recovers_after_restart(
    data_dir: Path, tmp_path: Path
) -> None:
    url = _start(data_dir)
    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=5000)
    client.qops.things.insert_one({"_id": "kept"})
    try:
        with serving("127.0.0.1", console_env(**_env(data_dir)), tmp_path) as base:
            for path in [*JSON_PATHS, *PAGES]:
                assert httpx.get(base + path, timeout=30).status_code in (200, 404), path

            _stop(data_dir)
            for path in JSON_PATHS:
                answer = httpx.get(base + path, timeout=30)
                assert answer.status_code == 503, (path, answer.text)
                body = answer.json()
                assert body["error"] == "MongoUnavailableError"
                assert f"MongoDB at {url}" in body["detail"]
                assert "did not answer within 1 s" in body["detail"]
            for path in PAGES:
                page = httpx.get(base + path, headers={"Accept": "text/html"}, timeout=30)
                assert page.status_code == 503, (path, page.text)
                assert "Database unavailable" in page.text

            # Restarted, the server is back on its port: the running API and client
            # reconnect by themselves.
            assert _start(data_dir) == url
            for path in [*JSON_PATHS, *PAGES]:
                assert httpx.get(base + path, timeout=30).status_code in (200, 404), path
            assert client.qops.things.find_one({"_id": "kept"}) == {"_id": "kept"}
    finally:
        client.close()


def test_the_process_client_works_across_stop_and_start(data_dir: Path) -> None:
    settings = MongoSettings(mongodb_url=None, data_dir=data_dir)
    before = connect(settings)
    before.qops.things.insert_one({"_id": "kept"})
    port = EmbeddedMongo(data_dir).ensure_running().port
    EmbeddedMongo(data_dir).stop()
    assert EmbeddedMongo(data_dir).ensure_running().port == port
    assert connect(settings) is before
    assert before.qops.things.find_one({"_id": "kept"}) == {"_id": "kept"}


def test_a_taken_port_moves_the_server_and_the_process_gets_a_new_client(data_dir: Path) -> None:
    settings = MongoSettings(mongodb_url=None, data_dir=data_dir)
    before = connect(settings)
    embedded = EmbeddedMongo(data_dir)
    port = embedded.ensure_running().port
    embedded.stop()
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        moved = embedded.ensure_running()
        assert moved.port != port
    after = connect(settings)
    assert after is not before
    assert after.admin.command("ping")["ok"] == 1
    embedded.stop()
    assert embedded.ensure_running().port == moved.port  # the new port is kept from now on


def _lingering(port: int) -> list[str]:
    """States (hex, /proc/net/tcp) of non-listening sockets whose local port is ``port``."""
    states = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] != "0A":
                states.append(fields[3])
    return states


def test_start_on_the_port_of_a_server_stopped_a_moment_ago(data_dir: Path) -> None:
    port = free_port()
    url = _start(data_dir, "--port", str(port))
    client: MongoClient[dict[str, object]] = MongoClient(url, maxPoolSize=4)
    for n in range(4):
        client.qops.things.insert_one({"n": n})
    _stop(data_dir)
    client.close()
    # The stopped server's connections wait out TIME_WAIT (or FIN_WAIT2) on the port.
    assert _lingering(port), "no connection of the stopped server lingers: nothing tested"
    assert _start(data_dir, "--port", str(port)) == url


def test_provenance_app_answers_503_for_a_configured_server_that_went_down(
    data_dir: Path,
) -> None:
    embedded = EmbeddedMongo(data_dir)
    server = embedded.ensure_running()
    settings = MongoSettings(mongodb_url=SecretStr(server.url), mongodb_timeout_s=1)
    repository = MongoProvenanceRepository(database(settings))
    client = TestClient(create_app(ProvenanceService(repository, "default")))
    assert client.get("/provenance/executions").status_code == 200
    embedded.stop()
    answer = client.get("/provenance/executions")
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "MongoUnavailableError"
    assert answer.json()["detail"].startswith(f"MongoDB at {server.url} did not answer within 1 s")
