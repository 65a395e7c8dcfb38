"""Shared fixtures: a real embedded MongoDB server and a real Prefect API.

- ``embedded_mongo`` (session): one nx-27017 server in a temporary data directory.
- ``mongo_settings`` / ``mongo_db``: each test gets its own database on it, dropped after.
- ``prefect_api`` (session): a real Prefect API server on a temporary SQLite database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from pymongo.database import Database

from qops.config import MongoSettings
from qops.mongo import Document, EmbeddedMongo, EmbeddedServer, connect, database


@pytest.fixture(scope="session")
def qops_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory shared by the session's servers."""
    return tmp_path_factory.mktemp("qops-data")


@pytest.fixture(scope="session")
def embedded_mongo(qops_data_dir: Path) -> Iterator[EmbeddedServer]:
    """The embedded MongoDB-compatible server, running for the whole session."""
    embedded = EmbeddedMongo(qops_data_dir)
    server = embedded.ensure_running()
    yield server
    embedded.stop()


@pytest.fixture
def mongo_settings(
    embedded_mongo: EmbeddedServer, qops_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MongoSettings]:
    """Settings pointing at a database of this test's own on the embedded server.

    The same values are exported as ``QOPS_*`` variables, so code that reads the
    environment (flows, subprocesses) sees the same database.
    """
    name = f"test_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("QOPS_MONGODB_URL", embedded_mongo.url)
    monkeypatch.setenv("QOPS_MONGODB_DB", name)
    monkeypatch.setenv("QOPS_DATA_DIR", str(qops_data_dir))
    settings = MongoSettings(
        mongodb_url=SecretStr(embedded_mongo.url), mongodb_db=name, data_dir=qops_data_dir
    )
    yield settings
    connect(settings).drop_database(name)


@pytest.fixture
def mongo_db(mongo_settings: MongoSettings) -> Database[Document]:
    """This test's own database on the embedded server (on the process's shared client)."""
    return database(mongo_settings)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real Prefect API (temporary SQLite) for the session; yields its URL.

    ``PREFECT_API_URL`` is exported too, so subprocesses started by a test use it.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = str(PREFECT_API_URL.value())
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous
