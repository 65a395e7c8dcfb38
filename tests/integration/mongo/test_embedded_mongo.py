"""The embedded MongoDB-compatible server: start, reuse, stale state, conflicts, errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from pymongo import MongoClient

from qops.config import MongoSettings
from qops.errors import DataDirError, EmbeddedMongoError
from qops.mongo import EmbeddedMongo, close_clients, connect
from qops.process import process_alive
from tests.cli import run_qops


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    EmbeddedMongo(tmp_path).stop()


def _env(data_dir: Path) -> dict[str, str]:
    return {"QOPS_DATA_DIR": str(data_dir), "QOPS_MONGODB_URL": ""}


def test_cli_start_then_status_from_another_process_shows_same_url(data_dir: Path) -> None:
    started = run_qops("mongo", "start", env=_env(data_dir))
    assert started.returncode == 0, started.stderr
    url = started.stdout.split()[1]
    assert url.startswith("mongodb://127.0.0.1:")

    status = run_qops("mongo", "status", env=_env(data_dir))
    assert status.returncode == 0, status.stderr
    assert status.stdout.split()[1] == url

    again = run_qops("mongo", "start", env=_env(data_dir))
    assert again.stdout.split()[1] == url  # reused, not a second server

    stopped = run_qops("mongo", "stop", env=_env(data_dir))
    assert stopped.returncode == 0
    assert url in stopped.stdout
    after = run_qops("mongo", "status", env=_env(data_dir))
    assert after.returncode == 1
    assert after.stdout.startswith("stopped")


def test_embedded_server_serves_data_that_survives_restart(data_dir: Path) -> None:
    embedded = EmbeddedMongo(data_dir)
    server = embedded.ensure_running()
    client: MongoClient[dict[str, object]] = MongoClient(server.url)
    client.qops.things.insert_one({"_id": "a", "value": 1})
    client.close()
    embedded.stop()
    assert embedded.status() is None

    restarted = embedded.ensure_running()
    client = MongoClient(restarted.url)
    assert client.qops.things.find_one({"_id": "a"}) == {"_id": "a", "value": 1}
    client.close()


def test_connect_without_url_starts_embedded_server(data_dir: Path) -> None:
    client = connect(MongoSettings(mongodb_url=None, data_dir=data_dir))
    assert client.admin.command("ping")["ok"] == 1
    assert EmbeddedMongo(data_dir).status() is not None


def test_connect_returns_one_client_per_process_and_server(data_dir: Path) -> None:
    settings = MongoSettings(mongodb_url=None, data_dir=data_dir)
    first = connect(settings)
    server = EmbeddedMongo(data_dir).status()
    assert server is not None
    # Another database on the same server shares the client; the server is not restarted.
    again = connect(settings.model_copy(update={"mongodb_db": "other"}))
    assert again is first
    assert EmbeddedMongo(data_dir).status() == server
    by_url = connect(MongoSettings(mongodb_url=SecretStr(server.url), data_dir=data_dir))
    assert by_url is not first  # another server key: the URL, not the data directory
    assert by_url is connect(MongoSettings(mongodb_url=SecretStr(server.url)))
    close_clients(server.url)
    assert connect(MongoSettings(mongodb_url=SecretStr(server.url))) is not by_url


def test_client_is_not_shared_across_fork(data_dir: Path) -> None:
    settings = MongoSettings(mongodb_url=None, data_dir=data_dir)
    parent = connect(settings)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a client of its own, which works
        try:
            child = connect(settings)
            ok = child is not parent and child.admin.command("ping")["ok"] == 1
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"


def test_stale_state_file_is_recovered(data_dir: Path) -> None:
    embedded = EmbeddedMongo(data_dir)
    embedded.root.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    embedded.state_file.write_text(
        json.dumps({"pid": dead.pid, "port": 1, "data_path": str(embedded.db_dir)})
    )
    assert embedded.status() is None
    assert not embedded.state_file.exists()
    server = embedded.ensure_running()
    assert server.pid != dead.pid
    assert process_alive(server.pid)


def test_explicit_port_taken_gives_clear_error(data_dir: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(EmbeddedMongoError, match=f"port {port} .* already in use"):
            EmbeddedMongo(data_dir).ensure_running(port=port)
        result = run_qops("mongo", "start", "--port", str(port), env=_env(data_dir))
    assert result.returncode == 2
    assert f"port {port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_second_server_on_same_files_is_refused(data_dir: Path) -> None:
    embedded = EmbeddedMongo(data_dir)
    embedded.ensure_running()
    second = subprocess.run(
        [sys.executable, "-m", "qops._embedded_server", str(embedded.root), "127.0.0.1", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert second.returncode == 3
    assert "already serves" in second.stderr


def test_server_holding_lock_without_state_is_not_duplicated(data_dir: Path) -> None:
    embedded = EmbeddedMongo(data_dir)
    first = embedded.ensure_running()
    embedded.state_file.unlink()  # state lost, server still running and holding its lock
    # It does not answer on a known port any more, so a new start must refuse, not
    # silently start a second server on the same files.
    with pytest.raises(EmbeddedMongoError, match="holds"):
        embedded.ensure_running()
    assert process_alive(first.pid)
    subprocess.run(["kill", str(first.pid)], check=True)
    deadline = time.monotonic() + 10
    while process_alive(first.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_data_dir_not_writable_gives_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(DataDirError, match="not writable"):
        EmbeddedMongo(blocker / "data").ensure_running()
    result = run_qops("mongo", "start", env=_env(blocker / "data"))
    assert result.returncode == 2
    assert "QOPS_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr
