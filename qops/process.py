"""Small helpers for the background processes qops manages (servers on loopback)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a TCP listener could bind ``host:port`` now.

    Checked as a server binds (``SO_REUSEADDR``): connections of a stopped server that wait
    out ``TIME_WAIT`` on the port do not make it taken; a process listening on it does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def process_alive(pid: int, marker: bytes | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if given, its command line holds ``marker``.

    The marker guards against a recycled pid that now belongs to another program.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs: trust kill(0)
    with contextlib.suppress(OSError, IndexError):
        if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    if marker is not None:
        try:
            return marker in (proc / "cmdline").read_bytes()
        except OSError:
            return False
    return True


def reap(pid: int) -> None:
    """Collect ``pid`` if it is an exited child of this process (no-op otherwise)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def http_ok(url: str, timeout_s: float = 0.5) -> bool:
    """Whether ``url`` answers with a 2xx status within ``timeout_s``."""
    # Imported here: qops.mongo needs this module, and `qops sync status` should not pay
    # for httpx (0.1-0.2 s) when it never makes an HTTP request.
    import httpx

    try:
        return httpx.get(url, timeout=timeout_s).is_success
    except httpx.HTTPError:
        return False


def start_detached(
    argv: Sequence[str], log_file: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own, stdout and stderr appended to ``log_file``.

    Args:
        argv: The command line.
        log_file: Where the child's output goes.
        env: The child's whole environment; ``None`` inherits this process's.
    """
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=None if env is None else dict(env),
            start_new_session=True,
        )


def wait_until_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout_s: float,
    interval_s: float = 0.05,
) -> str | None:
    """Poll ``ready`` until it is true; return ``None`` then, else why it never was.

    A process that exits first is reported with its exit code; one that is not ready by
    ``timeout_s`` has its process group sent SIGTERM.
    """
    deadline = time.monotonic() + timeout_s
    while not ready():
        code = process.poll()
        if code is not None:
            return f"exited with code {code}"
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            return f"not ready within {timeout_s:g} s"
        time.sleep(interval_s)
    return None
