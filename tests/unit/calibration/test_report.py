import pytest

from qops.calibration.graph import StepName
from qops.calibration.plan import StepOutcome, StepResult
from qops.calibration.report import (
    CalibrationReport,
    artifact_key,
    change_rows,
    changes_between,
    lineage_markdown,
)


def test_changes_between_only_changed_and_new_entries_with_deltas() -> None:
    before = [("t1", "Q0", 50e-6, "s"), ("t1", "Q1", 40e-6, "s")]
    after = [("t1", "Q0", 60e-6, "s"), ("t1", "Q1", 40e-6, "s"), ("cz_fidelity", "Q0-Q1", 0.9, "")]
    changes = changes_between(before, after)
    assert [(c.qid, c.parameter_name) for c in changes] == [("Q0", "t1"), ("Q0-Q1", "cz_fidelity")]
    t1 = changes[0]
    assert (t1.before, t1.after, t1.unit) == (50e-6, 60e-6, "s")
    assert t1.delta == pytest.approx(10e-6)
    assert t1.delta_percent == pytest.approx(20.0)
    new = changes[1]
    assert (new.before, new.delta, new.delta_percent) == (None, None, None)


def _report() -> CalibrationReport:
    return CalibrationReport(
        execution_id="run-1",
        project_id="lab",
        chip_id="Chip_A",
        epoch=3,
        database_path="lab.db",
        qubits=["Q0"],
        pairs=[],
        steps=[
            StepResult(
                step=StepName.CHECK_RABI,
                target="Q0",
                outcome=StepOutcome.COMPLETED,
                versions={"pi_amplitude": 2},
                used={"qubit_frequency": 4},
            ),
            StepResult(
                step=StepName.CHECK_T1,
                target="Q0",
                outcome=StepOutcome.FAILED,
                reason="FitError: no decay",
            ),
        ],
        changes=changes_between([("t1", "Q0", 5e-5, "s")], [("t1", "Q0", 6.123456789e-5, "s")]),
    )


def test_report_failed_and_skipped_by_outcome() -> None:
    report = _report()
    assert [s.step for s in report.failed] == [StepName.CHECK_T1]
    assert report.skipped == []


def test_artifact_key_kebab_case_of_chip() -> None:
    assert artifact_key(_report()) == "calibration-chip-a"


def test_change_rows_format_numbers_to_six_significant_digits() -> None:
    assert change_rows(_report().changes) == [
        {
            "parameter": "t1",
            "qid": "Q0",
            "before": "5e-05",
            "after": "6.12346e-05",
            "unit": "s",
            "delta": "1.12346e-05",
            "delta %": "22.4691",
        }
    ]


def test_lineage_markdown_one_row_per_step_versions_or_reason() -> None:
    markdown = lineage_markdown(_report())
    assert markdown.startswith("# Calibration of Chip_A\n")
    assert "Execution `run-1`, project `lab`, epoch 3." in markdown
    assert "| CheckRabi | Q0 | completed | pi_amplitude v2 | qubit_frequency v4 |" in markdown
    assert "| CheckT1 | Q0 | failed |  | FitError: no decay |" in markdown
    assert "wasDerivedFrom" in markdown


def test_change_rows_with_console_url_link_each_parameter_to_its_page() -> None:
    (row,) = change_rows(_report().changes, "http://qops.lab:8000")
    assert row["parameter"] == "[t1](http://qops.lab:8000/console/parameters/t1/Q0)"
    assert row["qid"] == "Q0"


def test_lineage_markdown_with_console_url_links_execution_and_new_versions() -> None:
    markdown = lineage_markdown(_report(), "https://qops.lab/")
    assert "Execution [`run-1`](https://qops.lab/console/executions/run-1), project" in markdown
    assert "| [pi_amplitude v2](https://qops.lab/console/parameters/pi_amplitude/Q0) |" in markdown
    # Without a URL the summary is exactly what it was.
    assert lineage_markdown(_report(), None) == lineage_markdown(_report())
    assert "](" not in lineage_markdown(_report())
