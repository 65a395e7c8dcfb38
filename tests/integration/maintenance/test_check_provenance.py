"""A check's provenance on the embedded MongoDB: an activity of type check that used the
versions it checked, visible in their impact, and no new version."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from pymongo.database import Database

from qops.calibration.graph import StepName
from qops.catalog.search import CatalogQueryService
from qops.console.app import ConsoleServices, create_app
from qops.maintenance.checks import CHECK_TASK_TYPE, CheckResult, CheckVerdict, check_record
from qops.mongo import Document
from qops.provenance.models import Agent, AgentType, NodeType
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from qops.timeutil import utc_now
from tests.integration.provenance.records import CHIP, PROJECT, make_record


def test_check_record_uses_checked_versions_and_writes_no_version(
    repository: MongoProvenanceRepository,
) -> None:
    calibrated = repository.record(
        make_record("exec-cal", "t1", {"t1": 42e-6, "pi_amplitude": 0.3}, task_name="check-t1")
    )
    current = {(v.parameter_name, v.qid): v for v in repository.current_versions(PROJECT, CHIP)}
    used = {"t1": current[("t1", "Q0")], "pi_amplitude": current[("pi_amplitude", "Q0")]}
    now = utc_now()
    result = CheckResult(
        step=StepName.CHECK_T1,
        target="Q0",
        verdict=CheckVerdict.OUT_OF_SPEC,
        reasons=["t1 is about 2e-05 s, below 70% of the recorded 4.2e-05 s"],
        points=3,
        run_id=1,
        guid="g",
        measured_at=now,
    )
    record = check_record(
        result,
        used,
        project_id=PROJECT,
        chip_id=CHIP,
        execution_id="exec-maintain",
        task_id="c1",
        agent=Agent(agent_type=AgentType.SYSTEM, name="prefect:maintain"),
        started_at=now - timedelta(seconds=1),
    )
    written = repository.record(record)
    assert written.versions == {}
    after = repository.current_versions(PROJECT, CHIP)
    assert {(v.parameter_name, v.version) for v in after} == {("t1", 1), ("pi_amplitude", 1)}

    impact = ProvenanceService(repository, PROJECT).impact(calibrated.entity_ids["t1"], 1)
    activities = [n.node_id for n in impact.nodes if n.node_type is NodeType.ACTIVITY]
    assert written.activity_id in activities
    (activity,) = repository.activities(PROJECT, [written.activity_id])
    assert activity.task_name == "check-t1-check"
    assert activity.task_type == CHECK_TASK_TYPE
    assert activity.error_message is not None
    assert activity.error_message.startswith("out-of-spec: t1 is about")


def test_console_execution_page_of_a_maintenance_run_lists_its_checks(
    repository: MongoProvenanceRepository, mongo_db: Database[Document]
) -> None:
    repository.record(make_record("exec-cal", "t1", {"t1": 42e-6}, task_name="check-t1"))
    (version,) = repository.current_versions(PROJECT, CHIP)
    now = utc_now()
    result = CheckResult(
        step=StepName.CHECK_T1,
        target="Q0",
        verdict=CheckVerdict.BAD_DATA,
        reasons=["no decay between delay 0 and 0.00021 s"],
        points=3,
        run_id=1,
        guid="g",
        measured_at=now,
    )
    repository.record(
        check_record(
            result,
            {"t1": version},
            project_id=PROJECT,
            chip_id=CHIP,
            execution_id="exec-maintain",
            task_id="c1",
            agent=Agent(agent_type=AgentType.SYSTEM, name="prefect:maintain"),
            started_at=now,
        )
    )
    services = ConsoleServices(
        provenance=ProvenanceService(repository, PROJECT), catalog=CatalogQueryService(mongo_db)
    )
    page = TestClient(create_app(services)).get("/console/executions/exec-maintain")
    assert page.status_code == 200
    assert "check-t1-check" in page.text
    assert "bad-data: no decay between delay 0" in page.text
