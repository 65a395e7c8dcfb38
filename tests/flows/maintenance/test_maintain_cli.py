"""`qops chip drift` in one process, `qops maintain` in another: the drift persists and
maintain brings the drifted qubit back (a real Prefect API, the embedded MongoDB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qops.config import MongoSettings
from tests.cli import run_qops

pytestmark = pytest.mark.usefixtures("prefect_api")


def test_cli_drift_then_maintain_recalibrates_the_drifted_qubit_only(
    mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    chip, database = "chip-cli-maintain", str(tmp_path / "lab.db")
    calibrated = run_qops("calibrate", "--chip", chip, "--database", database, timeout=300)
    assert calibrated.returncode == 0, calibrated.stdout + calibrated.stderr

    drifted = run_qops("chip", "drift", "--chip", chip, "--qubit", "q1", "--frequency", "2e6")
    assert drifted.returncode == 0, drifted.stderr
    assert f"chip {chip} Q1: qubit_frequency +2e+06" in drifted.stdout
    shown = run_qops("chip", "offsets", "--chip", chip)
    assert "Q1: qubit_frequency +2e+06" in shown.stdout

    maintained = run_qops("maintain", "--chip", chip, "--database", database, timeout=300)
    out = maintained.stdout
    assert maintained.returncode == 0, out + maintained.stderr
    assert "every value in spec" in out
    assert "recalibrated CheckFrequency Q1 -> back in spec" in out
    assert "check out-of-spec: the qubit line is" in out
    assert " Q0 " not in out.replace("Q0-Q1", "")  # Q0 itself was only checked


def test_cli_drift_bad_input_one_line_error_and_nothing_stored(
    mongo_settings: MongoSettings,
) -> None:
    bad = run_qops("chip", "drift", "--chip", "c", "--qubit", "qubit-two", "--t1", "-1e-6")
    assert bad.returncode == 2
    assert "'QUBIT-TWO' is not a qubit id like Q0" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    none = run_qops("chip", "drift", "--chip", "c", "--qubit", "Q0")
    assert none.returncode == 2
    assert "name at least one value to shift" in none.stderr
    assert "no offsets" in run_qops("chip", "offsets", "--chip", "c").stdout
