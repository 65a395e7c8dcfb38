"""QCoDeS's own fixture databases of old schema versions, and QCoDeS's reading of them.

The files were written by old QCoDeS releases; they are QCoDeS's own fixture databases
(QCoDeS/qcodes_db_fixtures), kept outside the repository in the shared test data beside the
checkout (``../shared/fixtures/qcodes-db-versions``, see its README; ``QOPS_SHARED_DIR``
names another place). A test copies one into its ``tmp_path`` (never opening the original)
and compares what qops reads from the untouched copy with what QCoDeS 0.58 reads from a
second copy after upgrading it in place with its own ``connect``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from qcodes.dataset.data_set import DataSet, load_by_id
from qcodes.dataset.sqlite.database import connect

SHARED = Path(os.environ.get("QOPS_SHARED_DIR") or Path(__file__).parents[3] / ".." / "shared")
FIXTURES = (SHARED / "fixtures" / "qcodes-db-versions").resolve()

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(),
    reason=f"QCoDeS fixture databases not found at {FIXTURES} (set QOPS_SHARED_DIR)",
)
"""Mark for tests that read the fixture databases."""


WITH_RUNS: list[tuple[int, str]] = [
    (2, "version2/empty_runs.db"),
    (2, "version2/some_runs.db"),
    (3, "version3/some_runs.db"),
    (3, "version3/some_runs_upgraded_2.db"),
    (3, "version3/some_runs_without_run_description.db"),
    (4, "version4/with_runs_and_snapshots.db"),
    (4, "version4/with_runs_but_no_snapshots.db"),
    (5, "version5/some_runs.db"),
    (6, "version6/some_runs.db"),
    (7, "version7/some_runs.db"),
    (8, "version8/some_runs.db"),
]
"""``(schema version, file)`` of every fixture of versions 2 to 8 that holds runs. The
folder ``version4a`` (version 4 written by a QCoDeS release whose run descriptions have a
newer layout, which QCoDeS's own upgrade cannot read) has its own tests."""

EMPTY: list[tuple[int, str]] = [(v, f"version{v}/empty.db") for v in range(9)]
"""The fixture without runs of each schema version 0 to 8."""


def copy_fixture(name: str, folder: Path) -> Path:
    """Copy fixture ``name`` into ``folder`` (created) and make the copy writable."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(name).name
    shutil.copyfile(FIXTURES / name, target)
    target.chmod(0o644)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> list[tuple[str, int]]:
    """Return the names and sizes of the files in ``folder``."""
    return sorted((p.name, p.stat().st_size) for p in folder.iterdir())


def qcodes_runs(path: Path) -> dict[int, DataSet]:
    """Upgrade ``path`` in place with QCoDeS's ``connect`` and load every run (the reference)."""
    conn = connect(str(path))
    run_ids = [int(r[0]) for r in conn.execute("SELECT run_id FROM runs ORDER BY run_id")]
    return {run_id: load_by_id(run_id, conn=conn) for run_id in run_ids}
