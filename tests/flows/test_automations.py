"""`qops prefect automations apply` on a real Prefect API: the repository's automation runs
the maintain deployment for the chip of a qops.metric.out-of-spec event."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.events import emit_event
from prefect.events.worker import EventsWorker

from flows.maintain import maintain
from tests.cli import run_qops

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("prefect_api")


def _deploy_maintain() -> UUID:
    deployment_id: UUID = maintain.to_deployment(name="maintain").apply()
    return deployment_id


def test_automations_apply_twice_creates_then_updates_and_runs_maintain_on_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment_id = _deploy_maintain()
    monkeypatch.chdir(REPO)
    first = run_qops("prefect", "automations", "apply")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created  maintain-on-out-of-spec (runs maintain/maintain)" in first.stdout
    second = run_qops("prefect", "automations", "apply")
    assert second.returncode == 0, second.stderr
    assert "updated  maintain-on-out-of-spec" in second.stdout

    async def read() -> list[object]:
        async with get_client() as client:
            return list(await client.read_automations_by_name("maintain-on-out-of-spec"))

    (automation,) = asyncio.run(read())
    assert automation.trigger.expect == {"qops.metric.out-of-spec"}  # type: ignore[attr-defined]
    assert automation.actions[0].deployment_id == deployment_id  # type: ignore[attr-defined]

    emit_event(
        event="qops.metric.out-of-spec",
        resource={"prefect.resource.id": "qops.chip.chip-evt", "qops.chip.id": "chip-evt"},
        payload={"metric": "t1", "value": 1e-6},
    )
    EventsWorker.drain_all()

    async def runs() -> list[dict[str, object]]:
        async with get_client() as client:
            found = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
            return [run.parameters for run in found]

    deadline = time.monotonic() + 60
    parameters = asyncio.run(runs())
    while not parameters and time.monotonic() < deadline:
        time.sleep(1)
        parameters = asyncio.run(runs())
    assert parameters == [{"chip_id": "chip-evt"}]


def test_automations_apply_unknown_deployment_one_line_error(tmp_path: Path) -> None:
    shutil.copy(REPO / "automations" / "maintain-on-out-of-spec.yaml", tmp_path / "a.yaml")
    text = (tmp_path / "a.yaml").read_text().replace("maintain/maintain", "nope/nope")
    (tmp_path / "a.yaml").write_text(text)
    result = run_qops("prefect", "automations", "apply", "--dir", str(tmp_path))
    assert result.returncode == 2
    assert "deployment 'nope/nope' not found on the Prefect API" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
