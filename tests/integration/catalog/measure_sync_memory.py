"""Run in a fresh process: sync one run of a source and print the peak memory it took.

Usage: python -m tests.integration.catalog.measure_sync_memory SOURCE RUN_ID FILES_DIR
Prints JSON: ``{"action": ..., "peak_bytes": ...}`` where ``peak_bytes`` is the rise of
the process's peak resident set size over its resident size just before the sync.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.config import MongoSettings
from qops.export.store import LocalDirStore
from qops.mongo import database


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """This process's peak resident size (``VmHWM``).

    Not ``getrusage().ru_maxrss``: Linux carries that over ``execve`` from the process that
    spawned us, so it reports the parent's size (pytest's, hundreds of MB in a full run)
    whenever that is larger.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    source, run_id, files = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    db = database(MongoSettings())
    service = SyncService(db, LocalDirStore(files), SyncSettings())
    # Import what a sync imports lazily (xarray backends, pandas) before measuring.
    import cf_xarray  # noqa: F401
    import h5netcdf  # noqa: F401
    import pandas  # noqa: F401

    before = _rss_bytes()
    outcome = service.sync_run(source, run_id)
    peak = _peak_rss_bytes()
    print(
        json.dumps({"action": outcome.action, "error": outcome.error, "peak_bytes": peak - before})
    )


if __name__ == "__main__":
    main()
