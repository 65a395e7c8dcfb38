"""`qops demo` from a fresh data directory: the whole system on one machine."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from qops.mongo import EmbeddedMongo
from tests.cli import run_qops


def test_demo_runs_everything_reports_and_stops_cleanly(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("QOPS_", "PREFECT_API_URL"))
    }
    env["QOPS_DATA_DIR"] = str(tmp_path)
    result = run_qops("demo", env=env, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"Prefect UI\s+http://127\.0\.0\.1:\d+", out)
    # Two calibrations of the three-qubit demo chip, nothing failed.
    assert len(re.findall(r"20 steps completed, 0 failed", out)) == 2
    # The monitor exposes the calibrated values the backend reports.
    assert re.search(r'qi_t1\{qubit="q0"\} \d', out)
    assert re.search(r'qi_cz_fidelity\{qubit1="q0",qubit2="q1"\} 0\.\d', out)
    assert 'qi_backend_state{state="IDLE"} 1.0' in out
    # One circuit ran on the calibrated chip: GHZ counts, mostly 000 and 111, some noise.
    counts = dict(re.findall(r"^  ([01]{3})\s+(\d+)$", out, re.MULTILINE))
    assert sum(int(n) for n in counts.values()) == 1000, out
    assert int(counts["000"]) + int(counts["111"]) > 700, counts
    assert re.search(r"counts of job 1: \d+\.\d% in 000 or 111", out)
    # The lineage query answered, and every calibration run reached the catalog.
    assert re.search(r"lineage of t1 of Q0 v2: \d+ nodes", out)
    assert "40 datasets, 40 sync items" in out
    # One qubit drifted: maintain's checks found it and recalibrated only what failed.
    assert "drifting Q2 of demo-chip by +2 MHz" in out
    assert "recalibrated CheckFrequency Q2 -> back in spec" in out
    assert re.search(
        r"maintained demo-chip .* 1 recalibrated, 0 failed, 0 skipped; every value in spec", out
    )
    assert "all services stopped" in out
    assert EmbeddedMongo(tmp_path).status() is None
    # The console was served, and the flows' artifacts link to its pages.
    console = re.search(r"^Console\s+(http://127\.0\.0\.1:\d+)/$", out, re.MULTILINE)
    assert console, out
    assert re.search(r"^console\s+running", out, re.MULTILINE), out
    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as db:
        artifacts = dict(db.execute("SELECT key, data FROM artifact ORDER BY created"))
    base = console.group(1)
    assert f"{base}/console/entities/t1%3AQ0%3A" in out
    assert f"{base}/console/parameters/t1/Q0" in out
    assert f"({base}/console/executions/" in artifacts["calibration-demo-chip-lineage"]
    assert f"({base}/console/parameters/" in artifacts["calibration-demo-chip-changes"]
    assert f"({base}/console/datasets/" in artifacts["sync-qcodes-demo-calibration"]
    assert (
        "| CheckFrequency | Q2 | out-of-spec | recalibrated | in-spec |"
        in artifacts["maintain-demo-chip"]
    )
