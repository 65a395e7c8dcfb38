"""Background services the demo starts as child processes, each with a readiness probe."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from qops.errors import QopsError
from qops.process import http_ok, start_detached, wait_until_ready


class ServiceStartError(QopsError):
    """A background service did not become ready."""

    def __init__(self, name: str, reason: str, log_file: Path) -> None:
        self.name = name
        self.reason = reason
        self.log_file = log_file
        super().__init__(f"{name} did not start: {reason} (log: {log_file})")


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    """A probe that is true once ``host:port`` accepts TCP connections."""

    def probe() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            return sock.connect_ex((host, port)) == 0

    return probe


def http_ready(url: str) -> Callable[[], bool]:
    """A probe that is true once ``url`` answers with a 2xx status."""
    return lambda: http_ok(url)


class Service:
    """A child process with a log file, started and stopped as a unit.

    Args:
        name: Shown in messages.
        argv: The command line.
        log_file: Where the child's stdout and stderr go.
        ready: Probe polled until true after start.
        env: Extra environment variables.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_file: Path,
        ready: Callable[[], bool],
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_file = log_file
        self.ready = ready
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the process and wait until its probe is true.

        Raises:
            ServiceStartError: The process exited or did not become ready in time.
        """
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.process = start_detached(self.argv, self.log_file, {**os.environ, **self.env})
        failure = wait_until_ready(self.process, self.ready, timeout_s, 0.1)
        if failure is not None:
            self.stop()
            raise ServiceStartError(self.name, failure, self.log_file)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the process group: SIGTERM, then SIGKILL after ``timeout_s``."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout_s)
