"""The monitor flow emits qops.metric.out-of-spec to a real Prefect API when a get_dynamic
value crosses its threshold of the maintenance policy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from pymongo.database import Database

from flows.monitor_hardware import monitor_hardware
from qops.mongo import Document
from qops.process import free_port
from tests.meta_support import CHIP, HEARTBEAT_S, ServerFactory


def _events(api_url: str, name: str, resource_id: str) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{api_url}/events/filter",
        json={
            "filter": {
                "event": {"name": [name]},
                "resource": {"id": [resource_id]},
                "occurred": {"since": "2000-01-01T00:00:00Z"},
            },
            "limit": 10,
        },
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json()["events"])


def test_monitor_value_below_policy_minimum_emits_out_of_spec_event(
    prefect_api: str, mongo_db: Database[Document], start_server: ServerFactory, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    # The test server reports t1 0.995 of Q0 and 0.988 of Q1: only Q1's is below 0.99.
    policy.write_text("parameters:\n  t1:\n    direction: higher\n    minimum: 0.99\n")
    server = start_server()
    monitor_hardware(
        req_address=server.req,
        sub_address=server.pub,
        metrics_port=free_port(),
        heartbeat_s=HEARTBEAT_S,
        duration_s=1.0,
        chip_id=CHIP,
        policy_file=str(policy),
    )
    deadline = time.monotonic() + 30
    events = _events(prefect_api, "qops.metric.out-of-spec", f"qops.chip.{CHIP}")
    while not events and time.monotonic() < deadline:
        time.sleep(0.5)
        events = _events(prefect_api, "qops.metric.out-of-spec", f"qops.chip.{CHIP}")
    assert len(events) == 1, events
    event = events[0]
    assert event["resource"]["qops.chip.id"] == CHIP
    related = event["related"]
    # Prefect adds the flow and task runs that emitted it; the qubit is ours.
    qubits = [r for r in related if r["prefect.resource.role"] == "qubit"]
    assert qubits == [
        {
            "prefect.resource.id": f"qops.qubit.{CHIP}.Q1",
            "prefect.resource.role": "qubit",
            "prefect.resource.name": "Q1",
            "qops.qubit.id": "Q1",
        }
    ]
    payload = event["payload"]
    assert payload["metric"] == "t1"
    assert payload["value"] == 0.988
    assert payload["minimum"] == 0.99
