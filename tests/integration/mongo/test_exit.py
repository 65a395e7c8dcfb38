"""A one-off process does not wait for pymongo's monitor threads at exit once its clients closed.

Each case runs in a fresh interpreter: what is checked is the exit of a whole process.
"""

from __future__ import annotations

import subprocess
import sys

from qops.mongo import EmbeddedServer

# Joining is observed by wrapping the executors' join, which only pymongo's exit hook calls.
_SCRIPT = """
import sys
from pymongo import MongoClient, periodic_executor
from qops.config import MongoSettings
from qops.mongo import close_clients_for_exit, database

join = periodic_executor.PeriodicExecutor.join
def observed_join(self, timeout=None):
    print("joined", flush=True)
    join(self, timeout)
periodic_executor.PeriodicExecutor.join = observed_join

database(MongoSettings()).list_collection_names()
if sys.argv[1] == "other-client":
    other = MongoClient(sys.argv[2], serverSelectionTimeoutMS=3000)
    other.admin.command("ping")
print(close_clients_for_exit(), flush=True)
"""


def _run(case: str, embedded_mongo: EmbeddedServer) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, case, embedded_mongo.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "QOPS_MONGODB_URL": embedded_mongo.url,
            "QOPS_MONGODB_DB": "exit_test",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_close_clients_for_exit_all_closed_drops_pymongo_join(
    embedded_mongo: EmbeddedServer,
) -> None:
    assert _run("only-qops", embedded_mongo).splitlines() == ["True"]


def test_close_clients_for_exit_other_client_open_keeps_pymongo_join(
    embedded_mongo: EmbeddedServer,
) -> None:
    lines = _run("other-client", embedded_mongo).splitlines()
    assert lines[0] == "False"
    assert "joined" in lines[1:]
