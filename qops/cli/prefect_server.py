"""A local Prefect server (SQLite) for the demo and for running on one machine.

Started as a detached ``prefect server start`` with ``PREFECT_HOME`` under the qops data
directory; its pid and port are recorded in ``<data_dir>/prefect/server.json`` so later
commands reuse it until ``stop()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from qops.errors import QopsError
from qops.process import (
    LOOPBACK,
    free_port,
    http_ok,
    process_alive,
    reap,
    start_detached,
    wait_until_ready,
)


class PrefectServerError(QopsError):
    """The local Prefect server could not be started or stopped."""

    def __init__(self, home: Path, reason: str) -> None:
        self.home = home
        self.reason = reason
        super().__init__(f"local Prefect server in {home}: {reason}")


@dataclass(frozen=True)
class RunningPrefectServer:
    """A running local Prefect server."""

    pid: int
    port: int

    @property
    def url(self) -> str:
        """The UI address."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def api_url(self) -> str:
        """The value for ``PREFECT_API_URL``."""
        return f"{self.url}/api"


def _healthy(api_url: str) -> bool:
    return http_ok(f"{api_url}/health")


class LocalPrefectServer:
    """Starts, finds and stops a Prefect server whose files live in ``<data_dir>/prefect``."""

    _MARKER = b"prefect"

    def __init__(self, data_dir: Path) -> None:
        self.home = Path(data_dir).expanduser().resolve() / "prefect"
        self.state_file = self.home / "server.json"
        self.log_file = self.home / "server.log"

    def environment(self) -> dict[str, str]:
        """Environment for processes that run against this server."""
        return {"PREFECT_HOME": str(self.home)}

    def status(self) -> RunningPrefectServer | None:
        """Return the running server, or ``None``."""
        try:
            raw = json.loads(self.state_file.read_text())
            server = RunningPrefectServer(pid=int(raw["pid"]), port=int(raw["port"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not process_alive(server.pid, self._MARKER):
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
            return None
        return server if _healthy(server.api_url) else None

    def ensure_running(self, timeout_s: float = 90.0) -> RunningPrefectServer:
        """Return the running server, starting one if none runs.

        Raises:
            PrefectServerError: The server did not become healthy within ``timeout_s``.
        """
        running = self.status()
        if running is not None:
            return running
        self.home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        server_address = RunningPrefectServer(pid=0, port=port)
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_URL": "",
            # What the UI's /ui-settings tells the browser to call. Unset, Prefect derives it
            # from PREFECT_SERVER_API_HOST and _PORT (default 4200), not from --port, and the
            # UI of a server on any other port cannot reach its own API.
            "PREFECT_SERVER_UI_API_URL": server_address.api_url,
            # Concurrency leases in files under PREFECT_HOME: held in memory (Prefect's
            # default) they are lost when the server restarts while their slots stay
            # taken, and the sync's global concurrency limits would never free again.
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": os.environ.get(
                "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE",
                "prefect.server.concurrency.lease_storage.filesystem",
            ),
        }
        prefect_bin = Path(sys.executable).with_name("prefect")
        process = start_detached(
            [str(prefect_bin), "server", "start", "--host", LOOPBACK, "--port", str(port)],
            self.log_file,
            env,
        )
        server = RunningPrefectServer(pid=process.pid, port=port)
        failure = wait_until_ready(process, lambda: _healthy(server.api_url), timeout_s, 0.2)
        if failure is not None:
            raise PrefectServerError(self.home, f"{failure}; see {self.log_file}")
        self.state_file.write_text(json.dumps({"pid": server.pid, "port": server.port}))
        return server

    def stop(self, timeout_s: float = 15.0) -> RunningPrefectServer | None:
        """Stop the server (its whole process group); return what was stopped."""
        server = self.status()
        if server is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while process_alive(server.pid):
            reap(server.pid)
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        return server
