"""A child process that acts as one OS account: the lab's QCoDeS writer or the sync's reader.

Run as ``python account_child.py UID GID ROLE DB``, started by root. It imports everything
first and then drops to the account (groups, gid, uid) before touching the database: the
interpreter of this machine lives where unprivileged accounts cannot read it, so it cannot
be started as the account itself.

Roles:
- ``lab``: a QCoDeS measurement driven by lines on stdin (``start``, ``add N``,
  ``stream N``, ``finish``, ``crash``, ``quit``); answers one line starting with ``@`` per
  command on stdout (QCoDeS prints there too).
- ``sync``: reads every run with :class:`QcodesReader`, prints them as one JSON line after ``@``
  (``runs``, and ``arrow_windows``: how many windows of rows it read through ADBC).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np
from qcodes.dataset import (
    Measurement,
    initialise_or_create_database_at,
    load_or_create_experiment,
)
from qcodes.dataset.sqlite.database import connect
from qcodes.parameters import ManualParameter

from qops.qcodes.arrow_windows import ArrowWindows
from qops.qcodes.errors import QcodesDatabaseError
from qops.qcodes.reader import QcodesReader


def drop_to(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    os.umask(0o022)


def lab(db: str) -> None:
    initialise_or_create_database_at(db)  # as a lab does: a WAL-mode file
    conn = connect(db)
    exp = load_or_create_experiment("exp", sample_name="chip", conn=conn)
    x = ManualParameter("x", unit="V")
    z = ManualParameter("z", unit="A")
    total = 0
    saver: Any = None
    context: Any = None
    for line in sys.stdin:
        command, *args = line.split()
        if command == "start":
            meas = Measurement(exp=exp, name="live")
            meas.register_parameter(x)
            meas.register_parameter(z, setpoints=(x,))
            context = meas.run()
            saver = context.__enter__()
            total = 0
            print(f"@run {saver.run_id}", flush=True)
        elif command == "add":
            for _ in range(int(args[0])):
                saver.add_result((x, float(total)), (z, float(total) * 2.0))
                total += 1
            saver.flush_data_to_database(block=True)
            print(f"@ok {total}", flush=True)
        elif command == "stream":  # rows in flushed batches of 10, as fast as QCoDeS goes
            for _ in range(int(args[0]) // 10):
                for _ in range(10):
                    saver.add_result((x, float(total)), (z, float(total) * 2.0))
                    total += 1
                saver.flush_data_to_database(block=True)
            print(f"@ok {total}", flush=True)
        elif command == "finish":
            context.__exit__(None, None, None)
            print("@ok finished", flush=True)
        elif command == "crash":
            os._exit(3)
        elif command == "quit":
            conn.close()
            print("@ok closed", flush=True)
            return


def sync(db: str) -> None:
    out: dict[str, Any] = {}
    try:
        reader = QcodesReader(db, busy_timeout_s=5).open()
    except QcodesDatabaseError as e:
        print(f"@{json.dumps({'error': type(e).__name__, 'message': str(e)})}", flush=True)
        return
    with reader:
        for summary in reader.runs_after(0):
            info = reader.run_info(summary.run_id)
            data = reader.parameter_data(info)
            out[str(summary.run_id)] = {
                "completed": summary.is_completed,
                "data": {
                    top: {name: np.asarray(v).tolist() for name, v in tree.items()}
                    for top, tree in data.items()
                },
            }
    print("@" + json.dumps({"runs": out, "arrow_windows": reader.arrow_windows}), flush=True)


def preload_arrow() -> ArrowWindows | None:
    """Load the ADBC driver's library and pyarrow's conversions while files are readable.

    The account cannot read this interpreter's packages (see the module docstring), and the
    reader loads the driver at its first numeric read. The connection is kept open so the
    library stays loaded.
    """
    windows = ArrowWindows.open(":memory:", 2)
    assert windows is not None
    columns = windows.read("SELECT 1.5, 2 WHERE ? < ?", (0, 1), 2)
    assert columns is not None
    return windows


if __name__ == "__main__":
    uid, gid, role, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    preloaded = preload_arrow() if role == "sync" else None
    drop_to(uid, gid)
    {"lab": lab, "sync": sync}[role](path)
