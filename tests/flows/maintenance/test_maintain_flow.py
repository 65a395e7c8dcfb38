"""The maintain flow under a real Prefect API, on the embedded MongoDB, measuring the
simulated chip through QCoDeS into a real database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo.database import Database

from flows.calibrate import calibrate
from flows.maintain import maintain
from qops.calibration.graph import StepName
from qops.calibration.instruments import close_instruments
from qops.chip.offsets import OffsetStore
from qops.config import MongoSettings
from qops.maintenance.checks import CHECK_TASK_TYPE, CheckVerdict
from qops.maintenance.report import Action
from qops.mongo import Document
from qops.provenance.repository import ACTIVITIES, RELATIONS

pytestmark = pytest.mark.usefixtures("prefect_api", "calibration_instruments")

CHIP = "chip-maintain"


@pytest.fixture(scope="module")
def calibration_instruments() -> Iterator[None]:
    """Free the QCoDeS instrument names the tasks open (they are global in a process)."""
    yield
    close_instruments()


def test_maintain_calibrated_chip_checks_everything_recalibrates_nothing(
    mongo_db: Database[Document], tmp_path: Path
) -> None:
    database = tmp_path / "lab.db"
    calibrate(chip_id=CHIP, database_path=str(database))
    report = maintain(chip_id=CHIP, database_path=str(database))
    assert [n.action for n in report.nodes] == [Action.KEPT] * 13, [
        (n.step, n.target, n.why) for n in report.nodes
    ]
    assert not report.changes
    assert report.in_spec
    # Every check is an activity of type "check" that used the versions it checked.
    query = {"execution_id": report.execution_id, "task_type": CHECK_TASK_TYPE}
    assert mongo_db[ACTIVITIES].count_documents(query) == 13
    used = mongo_db[RELATIONS].count_documents(
        {"execution_id": report.execution_id, "relation_type": "used"}
    )
    assert used >= 13 * 2


def test_maintain_drifted_qubit_recalibrates_it_and_brings_it_back_in_spec(
    mongo_db: Database[Document], mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    database = tmp_path / "lab.db"
    chip = f"{CHIP}-drift"
    calibrate(chip_id=chip, database_path=str(database))
    OffsetStore(mongo_settings.data_dir).add(chip, "Q1", {"qubit_frequency": 2e6})

    report = maintain(chip_id=chip, database_path=str(database))
    recalibrated = report.with_action(Action.RECALIBRATED)
    assert (StepName.CHECK_FREQUENCY, "Q1") in {(n.step, n.target) for n in recalibrated}
    assert all(n.target in ("Q1", "Q0-Q1") for n in recalibrated), recalibrated
    frequency = next(n for n in recalibrated if n.step is StepName.CHECK_FREQUENCY)
    assert frequency.check is not None
    assert frequency.check.verdict is not CheckVerdict.IN_SPEC
    assert frequency.back_in_spec
    assert report.in_spec, [(n.step, n.target, n.action, n.why) for n in report.nodes]
    changed = {(c.parameter_name, c.qid) for c in report.changes}
    assert ("qubit_frequency", "Q1") in changed
    assert all(qid in ("Q1", "Q0-Q1") for _, qid in changed)

    # The next run finds the chip in spec and recalibrates nothing.
    again = maintain(chip_id=chip, database_path=str(database))
    assert not again.with_action(Action.RECALIBRATED), [
        (n.step, n.target, n.why) for n in again.nodes if n.action is not Action.KEPT
    ]


def test_maintain_never_calibrated_chip_calibrates_every_step_as_missing(
    mongo_db: Database[Document], tmp_path: Path
) -> None:
    report = maintain(chip_id=f"{CHIP}-new", database_path=str(tmp_path / "lab.db"))
    assert [n.action for n in report.nodes] == [Action.RECALIBRATED] * 13
    assert all(n.check is None for n in report.nodes)  # health decided: nothing to check
    assert all(any("never been calibrated" in why for why in n.why) for n in report.nodes)
    assert report.in_spec, [(n.step, n.target, n.verification) for n in report.nodes]
