"""A scale-out Prefect set-up on this machine, for the scale-out tests and the bench.

- :class:`Postgres`: Debian's PostgreSQL (``initdb`` into a temporary directory, a free
  loopback port, no Unix socket), run as the ``postgres`` user when we are root (it refuses
  root), stopped and deleted by :meth:`Postgres.stop`.
- :class:`PrefectServer`: ``prefect server start`` on that database
  (``PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://...``); restartable on the
  same port.
- :class:`Worker`: one ``prefect worker start --pool qops`` process, killable with SIGKILL
  together with the flow-run processes it started (a machine that dies).
- :func:`set_up_pool`: the ``qops`` work pool, ``prefect deploy --all`` from
  ``prefect.yaml`` and ``qops prefect automations apply``.

The same commands are the lab's (docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import psutil

from qops.process import LOOPBACK, free_port, start_detached, wait_until_ready

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
PREFECT = str(BIN / "prefect")
QOPS = str(BIN / "qops")

HEARTBEAT_S = 30
"""Flow-run heartbeat period on the workers (Prefect's minimum)."""


LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
"""Where the server keeps concurrency leases (``PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE``)."""


class ClusterError(RuntimeError):
    """A part of the set-up did not start, with its log's tail."""


def wait_for(
    what: str, predicate: Callable[[], Any], timeout_s: float, every_s: float = 0.5
) -> Any:
    """Poll ``predicate`` until it returns something true; return that, or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:g} s")
        time.sleep(every_s)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def postgres_bindir() -> Path:
    """Where Debian's PostgreSQL server binaries are (``/usr/lib/postgresql/<v>/bin``).

    Raises:
        ClusterError: PostgreSQL is not installed (``scripts/system-deps.sh`` installs it).
    """
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if not versions:
        raise ClusterError("PostgreSQL is not installed: run scripts/system-deps.sh")
    return versions[-1].parent


class Postgres:
    """A throw-away PostgreSQL server with a ``prefect`` database."""

    user = "qops"
    database = "prefect"

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        # Not under pytest's tmp_path: its parents are 0700 root, the server's user must
        # reach its data directory.
        self.root = Path(tempfile.mkdtemp(prefix="qops-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = 0
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            owner = "postgres"
            try:
                pwd.getpwnam(owner)
            except KeyError:
                owner = "nobody"
            shutil.chown(self.root, user=owner)
            self._run_as = ["runuser", "-u", owner, "--"]

    def _pg(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self._run_as, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(f"{tool} failed: {done.stderr.strip()}\n{_tail(self.log)}")
        return done

    def start(self) -> Postgres:
        """initdb, start on a free port, create the database."""
        self._pg("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8")
        self.port = free_port()
        options = " ".join(
            [
                f"-c listen_addresses={LOOPBACK}",
                f"-p {self.port}",
                "-c unix_socket_directories=''",
                "-c max_connections=200",
            ]
        )
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        self._pg("createdb", "-h", LOOPBACK, "-p", str(self.port), "-U", self.user, self.database)
        return self

    @property
    def url(self) -> str:
        """The value for ``PREFECT_API_DATABASE_CONNECTION_URL``."""
        return f"postgresql+asyncpg://{self.user}@{LOOPBACK}:{self.port}/{self.database}"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its files."""
        if self.port and (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class PrefectServer:
    """``prefect server start`` on PostgreSQL, on one port for its whole life."""

    def __init__(self, home: Path, database_url: str, scheduler: bool = False) -> None:
        self.home = home
        self.home.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.port = free_port()
        self.log = home / "server.log"
        self.scheduler = scheduler
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        """The value for ``PREFECT_API_URL``."""
        return f"http://{LOOPBACK}:{self.port}/api"

    def healthy(self) -> bool:
        """Whether the API answers its health check."""
        try:
            return httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout_s: float = 180) -> PrefectServer:
        """Start the server and wait for its API (migrations run on the first start)."""
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": "",
            "PREFECT_API_DATABASE_CONNECTION_URL": self.database_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_API_URL": self.api_url,
            # Held concurrency slots in files under PREFECT_HOME, not in the server's memory:
            # a restarted server otherwise forgets every lease while the slots stay taken
            # in the database, and every later sync waits for them for ever.
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": LEASE_STORAGE,
            # Tests start every flow run themselves: no scheduled fan-out every minute.
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": str(self.scheduler).lower(),
        }
        self.process = start_detached(
            [PREFECT, "server", "start", "--host", LOOPBACK, "--port", str(self.port)],
            self.log,
            env,
        )
        failure = wait_until_ready(self.process, self.healthy, timeout_s, 0.5)
        if failure is not None:
            raise ClusterError(f"Prefect server: {failure}\n{_tail(self.log)}")
        return self

    def stop(self, timeout_s: float = 30) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Stop the server and start it again on the same port and database."""
        self.stop()
        self.start()


class Worker:
    """One ``prefect worker start`` of the ``qops`` pool, taking one flow run at a time."""

    def __init__(self, name: str, env: Mapping[str, str], log_dir: Path, limit: int = 1) -> None:
        self.name = name
        self.log = log_dir / f"worker-{name}.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    PREFECT,
                    "worker",
                    "start",
                    "--pool",
                    "qops",
                    "--name",
                    name,
                    "--limit",
                    str(limit),
                ],
                cwd=REPO,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> list[int]:
        """SIGKILL the worker and every process it started; return their pids."""
        try:
            root = psutil.Process(self.process.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(family, timeout=10)
        self.process.wait(timeout=10)
        return [p.pid for p in family]

    def stop(self, timeout_s: float = 20) -> None:
        """Stop the worker's process group (SIGTERM, then SIGKILL)."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()


def worker_env(api_url: str, qops_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of the workers (and of the flow runs they start)."""
    return {
        **os.environ,
        **qops_env,
        "PREFECT_API_URL": api_url,
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S),
        # Look for work every 2 s (default 10 s): flow runs start sooner.
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "qops",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }


def run_cli(argv: list[str], env: Mapping[str, str], timeout_s: float = 300) -> str:
    """Run a command from the repository; return its stdout, or fail with its output."""
    done = subprocess.run(
        argv,
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def set_up_pool(api_url: str, automation_within_s: float | None = None) -> None:
    """The work pool, the deployments of prefect.yaml and the automations of the repository."""
    env = {**os.environ, "PREFECT_API_URL": api_url, "DO_NOT_TRACK": "1"}
    run_cli([PREFECT, "work-pool", "create", "qops", "--type", "process"], env)
    run_cli([PREFECT, "--no-prompt", "deploy", "--all"], env)
    within = [] if automation_within_s is None else ["--within", str(automation_within_s)]
    run_cli([QOPS, "prefect", "automations", "apply", *within], env)


class Api:
    """The few Prefect API calls the tests and the bench make (plain HTTP)."""

    def __init__(self, api_url: str) -> None:
        self.http = httpx.Client(base_url=api_url.rstrip("/") + "/", timeout=30)

    def deployment_id(self, name: str) -> str:
        """Id of deployment ``flow/deployment``."""
        response = self.http.get(f"deployments/name/{name}")
        response.raise_for_status()
        return str(response.json()["id"])

    def run(self, deployment: str, parameters: Mapping[str, Any]) -> str:
        """Create a flow run of the deployment; return its id."""
        response = self.http.post(
            f"deployments/{self.deployment_id(deployment)}/create_flow_run",
            json={"parameters": dict(parameters)},
        )
        response.raise_for_status()
        return str(response.json()["id"])

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        """The flow run."""
        response = self.http.get(f"flow_runs/{flow_run_id}")
        response.raise_for_status()
        run: dict[str, Any] = response.json()
        return run

    def state(self, flow_run_id: str) -> str:
        """The flow run's state type (``RUNNING``, ``COMPLETED``, ``CRASHED``, ...)."""
        return str(self.flow_run(flow_run_id)["state_type"])

    def children(self, flow_run_id: str) -> list[dict[str, Any]]:
        """The flow runs the flow run started as subflows."""
        response = self.http.post(
            "flow_runs/filter",
            json={"flow_runs": {"parent_flow_run_id": {"any_": [flow_run_id]}}},
        )
        response.raise_for_status()
        runs: list[dict[str, Any]] = response.json()
        return runs

    def wait_final(self, flow_run_id: str, timeout_s: float) -> str:
        """Wait for a final state; return its type."""
        final = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

        def done() -> str | None:
            try:
                state = self.state(flow_run_id)
            except httpx.HTTPError:
                return None  # a restarting server
            return state if state in final else None

        return str(wait_for(f"flow run {flow_run_id} final", done, timeout_s, 1.0))

    def worker_of(self, flow_run_id: str) -> str | None:
        """Name of the worker that submitted the flow run (from the worker's event)."""
        response = self.http.post(
            "events/filter",
            json={
                "filter": {
                    "event": {"name": ["prefect.worker.submitted-flow-run"]},
                    "related": {
                        "resources_in_roles": [[f"prefect.flow-run.{flow_run_id}", "flow-run"]]
                    },
                },
                "limit": 10,
            },
        )
        response.raise_for_status()
        for event in response.json()["events"]:
            return str(event["resource"]["prefect.resource.name"])
        return None

    def concurrency_limits(self) -> dict[str, dict[str, Any]]:
        """Every global concurrency limit, by name."""
        response = self.http.post("v2/concurrency_limits/filter", json={"limit": 200})
        response.raise_for_status()
        return {limit["name"]: limit for limit in response.json()}

    def set_concurrency_limit(self, name: str, limit: int) -> None:
        """Set a global concurrency limit's slots (``prefect gcl update``, or create it)."""
        response = self.http.patch(f"v2/concurrency_limits/{name}", json={"limit": limit})
        if response.status_code == 404:
            response = self.http.post("v2/concurrency_limits/", json={"name": name, "limit": limit})
        response.raise_for_status()
