"""Checking a QCoDeS source does not load QCoDeS or xarray (they cost most of a CLI call)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.unit.qcodes.qcodes_dbs import create_db, run_1d


def test_validating_a_source_config_loads_neither_qcodes_nor_xarray(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    run_1d(exp)
    conn.close()
    probe = (
        "import sys\n"
        "from qops.qcodes.backend import QCoDeSBackend\n"
        f"QCoDeSBackend.validate_config('lab', {{'database_path': {str(db)!r}, 'set_up': 'f'}})\n"
        "print(sorted(m for m in ('qcodes', 'xarray') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
