"""Process entry point of the embedded server: ``python -m qops._embedded_server ROOT HOST PORT``.

Takes an exclusive ``flock`` on ``ROOT/server.lock`` and then replaces itself with the
nx-27017 server, which inherits the lock and so holds it for its whole life: a second
server on the same files fails here instead of silently sharing them.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Run the embedded server; returns only on failure."""
    if len(argv) != 3:
        sys.stderr.write("usage: python -m qops._embedded_server ROOT HOST PORT\n")
        return 2
    root, host, port = Path(argv[0]), argv[1], argv[2]
    lock_fd = os.open(root / "server.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.stderr.write(f"another embedded server already serves {root}\n")
        return 3
    os.set_inheritable(lock_fd, True)
    os.execv(
        sys.executable,
        [
            sys.executable,
            "-m",
            "nx_27017.nx_27017",
            "--data-dir",
            str(root / "db"),
            "--host",
            host,
            "--port",
            port,
            "--pid-file",
            str(root / "nx.pid"),
            "--log-file",
            str(root / "server.log"),
        ],
    )
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
