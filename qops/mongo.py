"""MongoDB access: client creation and the embedded MongoDB-wire-compatible server.

All qops persistence goes through pymongo, on one shared client per process and server
(:func:`connect`), closed at exit. When no URL is configured, qops starts (or reuses) an
embedded server, the ``nx-27017`` package (MongoDB wire protocol on SQLite),
as a detached child process on a loopback port: a free one the first time, then the same
one on every restart, so running clients reconnect by themselves. Its files live in
``<data_dir>/mongo``:

- ``db/``: one SQLite file per logical database;
- ``server.json``: pid, port and URL of the running server, so other processes reuse it;
- ``port``: the port the last server listened on, which the next start takes again;
- ``server.lock``: held (``flock``) by the server process for its whole life, so two
  servers can never serve the same files;
- ``start.lock``: serialises concurrent starters;
- ``server.log``: the server's own log.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConfigurationError as PyMongoConfigurationError
from pymongo.errors import ConnectionFailure, InvalidURI, PyMongoError
from pymongo.uri_parser import parse_uri

from qops.config import MongoSettings
from qops.errors import ConfigurationError, DataDirError, EmbeddedMongoError, MongoUnavailableError
from qops.process import (
    LOOPBACK,
    free_port,
    port_is_free,
    process_alive,
    reap,
    start_detached,
    wait_until_ready,
)

logger = logging.getLogger(__name__)

Document = dict[str, Any]
"""A MongoDB document as pymongo returns it."""

_MARKER = b"nx_27017"
_CREDENTIALS = re.compile(r"(?P<scheme>mongodb(?:\+srv)?://)(?P<user>[^:@/]+):[^@/]*@")


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    return _CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", url)


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    # pymongo appends a long topology description after ", Timeout:"; the first part
    # already names the cause (connection refused, DNS failure, ...).
    return text.split(", Timeout:")[0].splitlines()[0]


UNREACHABLE_ERRORS: tuple[type[PyMongoError], ...] = (ConnectionFailure,)
"""pymongo's errors meaning "the server cannot be reached now" (server selection timed out,
connection refused or reset, network timeout): :func:`unavailable` turns them into
:class:`~qops.errors.MongoUnavailableError`."""

_TIMEOUT = re.compile(r"Timeout: (?P<seconds>[0-9.]+)s")


def unavailable(error: PyMongoError) -> MongoUnavailableError:
    """The qops error for pymongo's ``error`` on a server that cannot be reached.

    The one place where a pymongo connection failure becomes
    :class:`~qops.errors.MongoUnavailableError` after a client was connected (the HTTP
    app answers it with 503). The server and the timeout are those of the process's shared
    client whose address the error names (the only one, if it names none).
    """
    text = str(error)
    with _clients_lock:
        clients = list(_clients.values())
    chosen: MongoClient[Document] | None = None
    for client in clients:
        addresses = client.topology_description.server_descriptions()
        if any(f"{host}:{port}" in text for host, port in addresses):
            chosen = client
            break
    if chosen is None and len(clients) == 1:
        chosen = clients[0]
    if chosen is not None:
        hosts = ",".join(
            f"{host}:{port}" for host, port in chosen.topology_description.server_descriptions()
        )
        url = f"mongodb://{hosts}/"
        timeout_s = float(chosen.options.server_selection_timeout)
    else:
        url = "the configured server"
        found = _TIMEOUT.search(text)
        timeout_s = float(found["seconds"]) if found else 0.0
    return MongoUnavailableError(url, _first_line(error), timeout_s)


_ClientKey = tuple[int, str, float]
"""(process id, server, timeout): what one shared client stands for."""

_clients: dict[_ClientKey, MongoClient[Document]] = {}
# Reentrant: connect() may start the embedded server, which may close clients.
_clients_lock = threading.RLock()
_closing_registered = False


def _client_key(settings: MongoSettings) -> _ClientKey:
    """The key of the shared client for ``settings``, without touching the network.

    The process id is part of it: a client must not cross ``fork`` (pymongo's rule), so a
    forked child builds its own.

    Raises:
        ConfigurationError: The URL is malformed.
    """
    if settings.embedded:
        server = EmbeddedMongo(settings.data_dir).client_key
    else:
        assert settings.mongodb_url is not None
        server = settings.mongodb_url.get_secret_value().strip()
        try:
            parse_uri(server)
        except (InvalidURI, PyMongoConfigurationError, ValueError) as e:
            raise ConfigurationError("QOPS_MONGODB_URL", redact_url(server), str(e)) from e
    return (os.getpid(), server, settings.mongodb_timeout_s)


def connect(settings: MongoSettings) -> MongoClient[Document]:
    """Return the process's client for the configured server; do not close it.

    pymongo advises one client per process: it pools connections and monitors the
    servers. The first call for a server (and timeout) creates the client and checks it
    with ``ping``; later calls return the same client without a round trip, so the
    embedded server is started (or found) once per process, not probed on every call.
    Every shared client is closed when the process exits (:func:`close_clients`).

    With no ``mongodb_url`` configured the embedded server is started or reused.

    Raises:
        ConfigurationError: The URL is malformed.
        MongoUnavailableError: The server did not answer within ``mongodb_timeout_s``.
        EmbeddedMongoError: The embedded server could not be started.
    """
    key = _client_key(settings)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _new_client(settings)
            _clients[key] = client
            _close_at_exit()
        return client


def _new_client(settings: MongoSettings) -> MongoClient[Document]:
    if settings.embedded:
        url = EmbeddedMongo(settings.data_dir).ensure_running().url
    else:
        assert settings.mongodb_url is not None
        url = settings.mongodb_url.get_secret_value().strip()
    timeout_ms = int(settings.mongodb_timeout_s * 1000)
    client: MongoClient[Document] = MongoClient(
        url,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
        uuidRepresentation="standard",
    )
    try:
        client.admin.command("ping")
    except PyMongoError as e:
        client.close()
        raise MongoUnavailableError(
            redact_url(url), _first_line(e), settings.mongodb_timeout_s
        ) from e
    return client


def _close_at_exit() -> None:
    global _closing_registered
    if not _closing_registered:
        atexit.register(close_clients)
        _closing_registered = True


def close_clients(server: str | None = None) -> None:
    """Close the process's shared clients (of one ``server`` key only, if given).

    Called at exit, and when the embedded server of a data directory restarts on another
    port than before (the old client could never reach it; see :meth:`EmbeddedMongo.stop`).
    """
    with _clients_lock:
        keys = [key for key in _clients if server is None or key[1] == server]
        closing = [_clients.pop(key) for key in keys]
    for client in closing:
        client.close()


def close_clients_for_exit() -> bool:
    """Close the shared clients and spare interpreter exit the wait for their monitor threads.

    At exit pymongo joins every monitor thread, and a closed client's threads notice only
    between 0.5 s sleeps: a one-off command waits up to 0.5 s for nothing. Once every
    pymongo client of the process is closed, its threads (daemon threads) have nothing left
    to do, so the join is dropped. If another client still runs, or this pymongo lacks what
    this relies on, the join is kept. Meant for a process's exit only (the CLI registers it
    with :mod:`atexit` once its command returned, so it runs after other threads ended).

    Returns:
        Whether the join was dropped.
    """
    close_clients()
    from pymongo import periodic_executor
    from pymongo.synchronous import monitor

    registry = getattr(periodic_executor, "_EXECUTORS", None)
    # The exit hook that joins (pymongo 4.9+: _shutdown_resources, which also closes any
    # monitor still open; older releases register _shutdown_executors itself).
    hooks = [
        hook
        for hook in (
            getattr(monitor, "_shutdown_resources", None),
            getattr(periodic_executor, "_shutdown_executors", None),
        )
        if hook is not None
    ]
    if registry is None or not hooks:
        return False
    executors = [ref() for ref in list(registry)]
    if any(e is not None and not getattr(e, "_stopped", False) for e in executors):
        return False
    for hook in hooks:
        atexit.unregister(hook)
    return True


def database(settings: MongoSettings) -> Database[Document]:
    """Return the configured database on the process's client (see :func:`connect`)."""
    return connect(settings)[settings.mongodb_db]


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server as recorded in ``server.json``."""

    pid: int
    port: int
    data_path: str

    @property
    def url(self) -> str:
        """The ``mongodb://`` URL clients connect to."""
        return f"mongodb://{LOOPBACK}:{self.port}/"


def _ping(port: int, timeout_s: float = 1.0) -> bool:
    client: MongoClient[Document] = MongoClient(
        LOOPBACK, port, serverSelectionTimeoutMS=int(timeout_s * 1000), directConnection=True
    )
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


class EmbeddedMongo:
    """Starts, finds and stops the embedded server whose files live in ``<data_dir>/mongo``.

    Args:
        data_dir: The qops data directory.
    """

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).expanduser().resolve() / "mongo"
        self.db_dir = self.root / "db"
        self.state_file = self.root / "server.json"
        self.server_lock = self.root / "server.lock"
        self.start_lock = self.root / "start.lock"
        self.log_file = self.root / "server.log"
        self.port_file = self.root / "port"

    @property
    def client_key(self) -> str:
        """The server part of the shared client's key for this server (see :func:`connect`)."""
        return f"embedded:{self.root}"

    def _prepare_dirs(self) -> None:
        try:
            self.db_dir.mkdir(parents=True, exist_ok=True)
            # A unique name: several threads of one process may check at once.
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-probe-"):
                pass
        except OSError as e:
            raise DataDirError(str(self.root.parent), e.strerror or str(e)) from e

    def _read_state(self) -> EmbeddedServer | None:
        try:
            raw = json.loads(self.state_file.read_text())
            return EmbeddedServer(
                pid=int(raw["pid"]), port=int(raw["port"]), data_path=str(raw["data_path"])
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            logger.warning("ignoring unreadable state file %s: %s", self.state_file, e)
            return None

    def _write_state(self, server: EmbeddedServer) -> None:
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(
            json.dumps(
                {
                    "pid": server.pid,
                    "port": server.port,
                    "url": server.url,
                    "data_path": server.data_path,
                    "started_at": time.time(),
                }
            )
        )
        os.replace(tmp, self.state_file)

    def _server_lock_held(self) -> bool:
        """Whether some process holds ``server.lock`` (a server serves these files)."""
        if not self.server_lock.exists():
            return False
        with open(self.server_lock, "a+") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False

    @contextlib.contextmanager
    def _starting(self) -> Iterator[None]:
        with open(self.start_lock, "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def status(self) -> EmbeddedServer | None:
        """Return the running server, or ``None`` if none answers.

        A state file whose process is gone is stale and removed.
        """
        server = self._read_state()
        if server is None:
            return None
        if not process_alive(server.pid, _MARKER):
            logger.info("removing stale %s (pid %d is gone)", self.state_file, server.pid)
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
            return None
        if not _ping(server.port):
            return None
        return server

    def ensure_running(self, port: int | None = None, timeout_s: float = 30.0) -> EmbeddedServer:
        """Return the running server, starting one if none runs.

        Args:
            port: Port to listen on; default a free loopback port. Ignored when a server
                already runs.
            timeout_s: How long to wait for a new server to answer ``ping``.

        Raises:
            DataDirError: The data directory is not writable.
            EmbeddedMongoError: The port is taken, another server holds the files without
                answering, or the server did not come up.
        """
        self._prepare_dirs()
        with self._starting():
            running = self.status()
            if running is not None:
                return running
            if self._server_lock_held():
                recorded = self._read_state()
                where = f" (pid {recorded.pid})" if recorded else ""
                raise EmbeddedMongoError(
                    str(self.root),
                    f"another server process{where} holds {self.server_lock} but does not "
                    "answer; stop it (qops mongo stop) before starting a new one",
                )
            return self._spawn(port, timeout_s)

    def _remembered_port(self) -> int | None:
        """The port the last server listened on, if recorded."""
        try:
            return int(self.port_file.read_text().strip())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            logger.warning("ignoring unreadable %s: %s", self.port_file, e)
            return None

    def _spawn(self, port: int | None, timeout_s: float) -> EmbeddedServer:
        remembered = self._remembered_port()
        if port is None:
            if remembered is not None and port_is_free(remembered):
                port = remembered
            else:
                port = free_port()
                if remembered is not None:
                    logger.warning(
                        "port %d of the last embedded server is taken by another process; "
                        "starting on %d (clients of the old port must reconnect)",
                        remembered,
                        port,
                    )
        elif not port_is_free(port):
            raise EmbeddedMongoError(
                str(self.root), f"port {port} on {LOOPBACK} is already in use by another process"
            )
        process = start_detached(
            [sys.executable, "-m", "qops._embedded_server", str(self.root), LOOPBACK, str(port)],
            self.log_file,
        )
        failure = wait_until_ready(process, lambda: _ping(port, timeout_s=0.2), timeout_s)
        if failure is not None:
            raise EmbeddedMongoError(
                str(self.root), f"server {failure} before answering ping: {self._log_tail()}"
            )
        server = EmbeddedServer(pid=process.pid, port=port, data_path=str(self.db_dir))
        self._write_state(server)
        if port != remembered:
            self.port_file.write_text(f"{port}\n")
            # This process's client of the old port can never reach the new server.
            close_clients(self.client_key)
        logger.info("embedded MongoDB started at %s (pid %d)", server.url, server.pid)
        return server

    def _log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def stop(self, timeout_s: float = 10.0) -> EmbeddedServer | None:
        """Stop the running server; return what was stopped, or ``None`` if none ran.

        The clients of the server stay open: until a server runs again they fail with
        pymongo's connection errors (see :func:`unavailable`), and the next server of this
        data directory listens on the same port, where they reconnect by themselves.

        Raises:
            EmbeddedMongoError: The server did not exit within ``timeout_s``.
        """
        if not self.root.exists():
            return None
        with self._starting():
            server = self._read_state()
            if server is None or not process_alive(server.pid, _MARKER):
                with contextlib.suppress(FileNotFoundError):
                    self.state_file.unlink()
                return None
            os.kill(server.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            # An exiting process loses its command line (and so the marker) before it
            # closes its files: it is gone only once it also let go of the server lock,
            # else a restart right after would find the lock held.
            while process_alive(server.pid, _MARKER) or self._server_lock_held():
                if time.monotonic() > deadline:
                    raise EmbeddedMongoError(
                        str(self.root),
                        f"server pid {server.pid} did not exit within {timeout_s:g} s of SIGTERM",
                    )
                reap(server.pid)
                time.sleep(0.05)
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
            logger.info("embedded MongoDB pid %d stopped", server.pid)
            return server
