"""The monitor-hardware flow under a real Prefect API, against a real 2300 server."""

from __future__ import annotations

import httpx
from pymongo.database import Database

from flows.monitor_hardware import monitor_hardware
from qops.mongo import Document
from qops.process import free_port
from tests.meta_support import HEARTBEAT_S, ServerFactory


def read_artifact_markdown(api_url: str, key: str) -> str:
    response = httpx.post(
        f"{api_url}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [key]}}, "limit": 5, "sort": "CREATED_DESC"},
        timeout=10,
    )
    response.raise_for_status()
    artifacts = response.json()
    assert artifacts, f"no artifact {key}"
    return str(artifacts[0]["data"])


def test_monitor_hardware_flow_records_static_artifact_and_snapshot(
    prefect_api: str, mongo_db: Database[Document], start_server: ServerFactory
) -> None:
    server = start_server()
    summary = monitor_hardware(
        req_address=server.req,
        sub_address=server.pub,
        metrics_port=free_port(),
        heartbeat_s=HEARTBEAT_S,
        duration_s=1.0,
    )
    assert summary.backend == "spin-2"
    assert summary.dynamic_fetches == 1
    assert summary.heartbeats >= 2
    assert summary.last_state == "IDLE"
    markdown = read_artifact_markdown(prefect_api, "backend-static-spin-2")
    assert "opensquirrel.passes.decomposer.mckay_decomposer.McKayDecomposer" in markdown
    assert "| nqubits | 2 |" in markdown
    stored = mongo_db.backend_static.find_one({"backend": "spin-2"})
    assert stored is not None
    assert stored["starttime"] == server.server.starttime
    assert mongo_db.dynamic_snapshots.count_documents({"backend": "spin-2"}) == 1


def test_monitor_hardware_flow_backend_down_completes_unreachable(
    prefect_api: str, mongo_db: Database[Document]
) -> None:
    summary = monitor_hardware(
        req_address=f"tcp://127.0.0.1:{free_port()}",
        sub_address=f"tcp://127.0.0.1:{free_port()}",
        metrics_port=free_port(),
        request_timeout_s=0.2,
        heartbeat_s=HEARTBEAT_S,
        duration_s=1.5,
    )
    assert summary.last_state == "UNREACHABLE"
    assert summary.static_fetches == 0
    assert mongo_db.dynamic_snapshots.count_documents({}) == 0
