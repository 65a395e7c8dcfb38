"""The smoke flow runs under a real Prefect API and writes to the embedded MongoDB."""

from __future__ import annotations

import asyncio

from prefect.client.orchestration import get_client
from pymongo.database import Database

from flows.smoke import smoke
from qops.mongo import Document


def test_smoke_flow_records_run_in_mongodb_and_prefect(
    prefect_api: str, mongo_db: Database[Document]
) -> None:
    state = smoke(return_state=True)
    assert state.is_completed()
    assert state.result() == 1
    recorded = list(mongo_db.smoke_runs.find())
    assert len(recorded) == 1
    flow_run_id = recorded[0]["_id"]

    async def read_run() -> str:
        async with get_client() as client:
            run = await client.read_flow_run(flow_run_id)
            return run.state_type.value if run.state_type else ""

    assert asyncio.run(read_run()) == "COMPLETED"

    assert smoke() == 2  # a second run adds one record
