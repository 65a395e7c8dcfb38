"""Read-only access to a lab's QCoDeS SQLite database.

The reader never modifies the file: it opens it with a ``file:...?mode=ro`` URI, issues
no PRAGMA that writes (only ``user_version``, ``table_info``, ``schema_version`` and
``data_version`` are read), never runs
QCoDeS's schema upgrades and never touches QCoDeS's global configuration. QCoDeS's own
loaders upgrade older databases in place, so the tables are read here, by column name,
for each supported schema version (2 to 9); what an older version lacks is derived the
way QCoDeS's upgrade would derive it (see :data:`RUN_COLUMNS`), so an old file reads as
its upgraded copy would.

It also leaves no trace beside the file, whichever OS account runs it: a plain read-only
open of a WAL database creates ``-wal`` and ``-shm`` files owned by the reader's account
(which then break the lab's next write) and fails when the folder is not writable. So the
reader first takes SQLite's SHARED lock on the ``.db`` (the lock every WAL connection
holds; it stops only a writer's close-time checkpoint and WAL deletion, never a write)
and picks one of (see ``docs/sync.md``, "How the lab's file is read"):

- no ``-wal``: ``immutable=1`` (no locks, no side files). While the SHARED lock is held,
  the ``.db`` can only change through a checkpoint, which needs a ``-wal`` that cannot be
  deleted before the lock is released; so after each statement the reader checks that no
  ``-wal`` appeared, and otherwise reconnects in WAL mode and runs the call again.
- ``-wal`` and ``-shm``: ``mode=ro&readonly_shm=1``, SQLite's protocol for WAL readers
  that may not write the ``-shm`` (it never writes a byte of either file).
- ``-wal`` without ``-shm`` (a crashed writer whose ``-shm`` was removed): a private copy
  of both into a temporary directory, kept only if no ``-shm`` appeared meanwhile.

Reads are short: every statement is its own read transaction (autocommit), and a run's
data is fetched in windows of row ids, so a measurement writing to the same file is never
blocked for long. Numeric data is read into preallocated numpy arrays, through the ADBC
SQLite driver where the connection mode allows it (``qops.qcodes.arrow_windows``) and plain
``sqlite3`` elsewhere, all numeric dependents of a run in one pass; other types use
converters equivalent to QCoDeS's.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import io
import json
import logging
import os
import pwd
import shutil
import sqlite3
import struct
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, Self, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from qops.qcodes.arrow_windows import ArrowWindows
from qops.qcodes.errors import (
    DatabaseIsDirectoryError,
    DatabaseLockedError,
    DatabaseNotFoundError,
    DatabaseUnreadableError,
    NotQcodesDatabaseError,
    NotSqliteError,
    QcodesDatabaseError,
    RunNotFoundError,
    RunReadError,
    UnsupportedSchemaVersionError,
)

if TYPE_CHECKING:
    # QCoDeS (0.5 s to import) is loaded only where a run description or data is read, so
    # opening a file to check it (``qops sources add``) does not pay for it.
    from qcodes.dataset.descriptions.rundescriber import RunDescriber
    from qcodes.parameters import ParamSpecBase

logger = logging.getLogger(__name__)

ParameterData = dict[str, dict[str, npt.NDArray[Any]]]
"""Data of a run as QCoDeS's ``get_parameter_data`` returns it: dependent -> name -> array."""

_RUN_COLUMNS_V2 = (
    "run_id",
    "exp_id",
    "name",
    "result_table_name",
    "result_counter",
    "run_timestamp",
    "completed_timestamp",
    "is_completed",
    "parameters",
    "guid",
)
_RUN_COLUMNS_V3 = (*_RUN_COLUMNS_V2, "run_description")
_RUN_COLUMNS_V5 = (*_RUN_COLUMNS_V3, "snapshot")
_RUN_COLUMNS_V7 = (*_RUN_COLUMNS_V5, "captured_run_id", "captured_counter")
_RUN_COLUMNS_V8 = (*_RUN_COLUMNS_V7, "parent_datasets")
RUN_COLUMNS: dict[int, tuple[str, ...]] = {
    # What each QCoDeS upgrade (qcodes.dataset.sqlite.db_upgrades) changed, read the other
    # way round so that an old file is read as its upgraded copy would be:
    # 2 -> 3 added run_description, built from the layouts and dependencies tables;
    # 3 -> 4 rebuilt it from those tables (3 stored wrong inferred_from lists);
    2: _RUN_COLUMNS_V2,
    3: _RUN_COLUMNS_V3,
    # 4 -> 5 added snapshot, which version 4 created only once a run stored one;
    4: _RUN_COLUMNS_V3,
    # 5 -> 6 added the "version" key to run_description (no column change);
    5: _RUN_COLUMNS_V5,
    6: _RUN_COLUMNS_V5,
    # 6 -> 7 added captured_run_id and captured_counter (= run_id and result_counter);
    7: _RUN_COLUMNS_V7,
    # 7 -> 8 added parent_datasets; 8 -> 9 only added an index on captured_run_id.
    8: _RUN_COLUMNS_V8,
    9: _RUN_COLUMNS_V8,
}
"""The columns of the ``runs`` table that each supported schema version must have."""

STANDARD_RUN_COLUMNS = frozenset(RUN_COLUMNS[9])
"""Columns of ``runs`` that QCoDeS owns at any version; any other column holds run
metadata (``add_metadata``), e.g. ``inspectr_tag``."""

SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = tuple(sorted(RUN_COLUMNS))
_LAYOUT_DESCRIPTION_VERSIONS = frozenset({2, 3})
"""Versions whose run description is rebuilt from the layouts and dependencies tables."""
_UNVERSIONED_DESCRIPTION_VERSIONS = frozenset({4, 5})
"""Versions whose stored run description lacks the top-level ``version`` key."""
_REQUIRED_TABLES = ("experiments", "runs", "layouts", "dependencies")
_EXPERIMENT_COLUMNS = ("exp_id", "name", "sample_name")
_WINDOW_ROWS = 65_536


class RunSummary(BaseModel):
    """One row of the ``runs`` table as discovery sees it."""

    model_config = ConfigDict(frozen=True)

    run_id: int
    guid: str
    is_completed: bool


class RunInfo(BaseModel):
    """Everything stored about one run except its data."""

    model_config = ConfigDict(frozen=True)

    run_id: int
    exp_id: int
    name: str
    guid: str
    result_table_name: str
    run_timestamp_raw: float | None
    completed_timestamp_raw: float | None
    is_completed: bool
    run_description: str
    snapshot_raw: str | None
    captured_run_id: int
    captured_counter: int
    parent_datasets: str | None
    metadata: dict[str, str | int | float]
    exp_name: str
    sample_name: str

    def describer(self, path: str) -> RunDescriber:
        """Return the run's QCoDeS description (interdependencies and shapes).

        Raises:
            RunReadError: The stored description is not valid JSON of a known version.
        """
        try:
            decoded = json.loads(self.run_description)
        except ValueError as e:
            raise RunReadError(path, self.run_id, "run_description", f"not JSON ({e})") from e
        if not isinstance(decoded, dict):
            found = type(decoded).__name__
            raise RunReadError(
                path, self.run_id, "run_description", f"expected a JSON object, found {found}"
            )
        from qcodes.dataset.descriptions.versioning import serialization as serial

        try:
            return serial.from_json_to_current(self.run_description)
        except KeyError as e:
            raise RunReadError(
                path, self.run_id, "run_description", f"unknown shape: no key {e}"
            ) from e
        except (ValueError, TypeError, AttributeError) as e:
            raise RunReadError(
                path, self.run_id, "run_description", f"unknown shape: {type(e).__name__}: {e}"
            ) from e


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _in_wal_mode(fd: int) -> bool:
    """Whether the database open on ``fd`` is in WAL mode (header bytes 18-19 are 2, 2)."""
    return os.pread(fd, 2, 18) == b"\x02\x02"


def _read_only_uri(path: Path, *options: str) -> str:
    return "file:" + urllib.parse.quote(str(path)) + "?" + "&".join(("mode=ro", *options))


def _account() -> str:
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


_SQLITE_MAGIC = b"SQLite format 3\x00"
# SQLite's lock bytes (os_unix.c): a SHARED lock is a read lock on the 510 bytes after
# PENDING and RESERVED, taken while holding a read lock on PENDING (so a writer waiting
# for EXCLUSIVE is not starved).
_PENDING_BYTE = 0x40000000
_SHARED_FIRST = _PENDING_BYTE + 2
_SHARED_SIZE = 510
_FLOCK = struct.Struct("@hhqqi4x")  # Linux struct flock: type, whence, start, len, pid
_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)


class _SharedLock:
    """SQLite's SHARED lock on a database file, held by this reader.

    It is an open-file-description lock (Linux ``F_OFD_SETLK``): unlike a POSIX lock it
    belongs to this descriptor alone, so SQLite closing its descriptors does not release
    it, and closing this one does not release SQLite's locks. It conflicts only with a
    writer's EXCLUSIVE lock, which in WAL mode is needed solely to checkpoint and delete the
    ``-wal`` at close (the writer then just leaves its files) or to leave WAL mode.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def _set(self, kind: int, start: int, length: int) -> bool:
        if _OFD_SETLK is None:
            return True
        try:
            fcntl.fcntl(self.fd, _OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, start, length, 0))
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def acquire(self, timeout_s: float) -> bool:
        """Take the lock, retrying while a writer holds PENDING or EXCLUSIVE; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._set(fcntl.F_RDLCK, _PENDING_BYTE, 1):
                got = self._set(fcntl.F_RDLCK, _SHARED_FIRST, _SHARED_SIZE)
                self._set(fcntl.F_UNLCK, _PENDING_BYTE, 1)
                if got:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)

    def release(self) -> None:
        self._set(fcntl.F_UNLCK, _SHARED_FIRST, _SHARED_SIZE)


class _SnapshotMovedError(Exception):
    """Internal: a ``-wal`` appeared under an ``immutable`` connection; the call is rerun."""


_ReadMode = Literal["immutable", "wal", "snapshot", "rollback"]
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _consistent(
    method: Callable[Concatenate[QcodesReader, _P], _R],
) -> Callable[Concatenate[QcodesReader, _P], _R]:
    """Rerun ``method`` once if its reads moved from an ``immutable`` to a WAL connection."""

    @functools.wraps(method)
    def wrapper(self: QcodesReader, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except _SnapshotMovedError:
            return method(self, *args, **kwargs)

    return wrapper


def _is_locked(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


def file_stamp(path: Path) -> list[int]:
    """Return inode, size, mtime and ctime (ns) of the database and its WAL file.

    Any write by SQLite changes at least one of them, so an unchanged stamp means an
    unchanged database and discovery can skip opening it.
    """
    stamp: list[int] = []
    for candidate in (path, path.with_name(path.name + "-wal")):
        try:
            st = candidate.stat()
        except FileNotFoundError:
            stamp += [0, 0, 0, 0]
            continue
        stamp += [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return stamp


_KEEP_IDLE_S = 300.0


@dataclass
class _Kept:
    """A connection a closed reader kept for the next reader of the same file."""

    conn: sqlite3.Connection
    lock: _SharedLock
    mode: _ReadMode
    uri: str | None
    arrow: ArrowWindows | None
    identity: tuple[int, int]
    kept_at: float
    memo: dict[str, tuple[sqlite3.Connection, int, str]]
    state: dict[str, Any]

    def close(self) -> None:
        if self.arrow is not None:
            self.arrow.close()
        self.conn.close()
        self.lock.release()
        os.close(self.lock.fd)


_NOT_KEPT = frozenset(
    (
        "path",
        "busy_timeout_s",
        "reuse",
        "arrow",
        "arrow_windows",
        "_conn",
        "_lock",
        "_mode",
        "_uri",
        "_arrow",
        "_statement_lock",
        "_snapshot_dir",
        "_memo",
    )
)
_ARROW_MODES: frozenset[_ReadMode] = frozenset(("immutable", "rollback", "snapshot"))
"""Connection modes whose numeric data is read through ADBC (see :mod:`.arrow_windows`).

Not ``wal``: there SQLite holds POSIX locks on the ``-shm`` for the whole connection (its
read marks and the lock that says the ``-shm`` is in use), and a second SQLite library in
the process closing its ``-shm`` descriptor would drop them for the ``sqlite3`` connections
of every reader of that file in the process."""
_kept_guard = threading.Lock()
_kept: dict[Path, _Kept] = {}


def _take_kept(path: Path) -> _Kept | None:
    with _kept_guard:
        _expire_kept(_KEEP_IDLE_S)
        return _kept.pop(path, None)


def _expire_kept(max_idle_s: float) -> None:
    now = time.monotonic()
    for path, kept in list(_kept.items()):
        if now - kept.kept_at >= max_idle_s:
            del _kept[path]
            kept.close()


def close_kept_connections() -> None:
    """Close every connection kept by readers opened with ``reuse=True`` (releasing locks)."""
    with _kept_guard:
        _expire_kept(0.0)


class QcodesReader:
    """A read-only view of one QCoDeS database file.

    Args:
        path: The ``.db`` file.
        busy_timeout_s: How long a statement waits for a writer's lock before failing.
        reuse: On close, keep the connection (up to 5 min idle) for the next reader of the
            same file in this process, which then skips parsing the schema of every results
            table. A kept WAL or ``immutable`` connection keeps its SHARED lock: a writer
            closing meanwhile leaves its ``-wal`` and ``-shm`` (as with any open reader).
        arrow: Read numeric data through the ADBC SQLite driver where that is safe
            (``immutable``, rollback-journal and private-copy connections); False reads
            everything through ``sqlite3``. The data is the same either way.

    Use as a context manager, or call :meth:`open` and :meth:`close`.
    """

    def __init__(
        self,
        path: Path | str,
        busy_timeout_s: float = 5.0,
        reuse: bool = False,
        arrow: bool = True,
    ) -> None:
        self.path = Path(path).expanduser()
        self.busy_timeout_s = busy_timeout_s
        self.reuse = reuse
        self.arrow = arrow
        self._conn: sqlite3.Connection | None = None
        self._uri: str | None = None
        self._arrow: ArrowWindows | None = None
        self._statement_lock = False  # rollback mode: the SHARED lock is held by _guard
        self.arrow_windows = 0
        """Windows of numeric rows this reader read through ADBC (tests, benchmarks)."""
        self.schema_version = 0
        self._run_columns: tuple[str, ...] = ()
        self._lock: _SharedLock | None = None
        self._mode: _ReadMode | None = None
        self._snapshot_dir: Path | None = None
        self._memo: dict[str, tuple[sqlite3.Connection, int, str]] = {}

    # -- connection ------------------------------------------------------------------

    def open(self) -> Self:
        """Open the file read-only and check that it is a supported QCoDeS database.

        Nothing is created, written or left beside the file (see the module docstring).

        Raises:
            DatabaseNotFoundError: The file does not exist.
            DatabaseIsDirectoryError: The path is a directory.
            DatabaseUnreadableError: This OS account may not read the file.
            NotSqliteError: The file is not SQLite.
            NotQcodesDatabaseError: SQLite without QCoDeS's tables.
            UnsupportedSchemaVersionError: A schema version the reader does not support.
            DatabaseLockedError: A writer held the lock past the busy timeout.
        """
        where = str(self.path)
        if self.reuse and self._adopt_kept():
            try:
                _consistent(QcodesReader._recheck_schema)(self)
            except BaseException:
                self.reuse = False  # do not keep a connection that failed its checks
                self.close()
                raise
            return self
        if self.path.is_dir():
            raise DatabaseIsDirectoryError(where)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as e:
            raise DatabaseNotFoundError(where) from e
        except PermissionError as e:
            raise DatabaseUnreadableError(
                where, _account(), e.strerror or "permission denied"
            ) from e
        self._lock = _SharedLock(fd)
        try:
            header = os.pread(fd, 100, 0)
            if not header.startswith(_SQLITE_MAGIC):
                what = "the file is empty" if not header else "no SQLite header"
                raise NotSqliteError(where, what)
            if not self._lock.acquire(self.busy_timeout_s):
                raise DatabaseLockedError(where, self.busy_timeout_s)
            self._conn = self._connect()
            if self._mode == "rollback":
                # Readers of a rollback-journal database lock per statement (SQLite does);
                # holding SHARED here would block the writer.
                self._lock.release()
            _consistent(QcodesReader._recheck_schema)(self)
        except BaseException:
            self.close()
            raise
        return self

    def _recheck_schema(self) -> None:
        """Run the schema checks, unless this connection passed them on the same schema.

        A kept connection carries what the checks found; they are skipped while SQLite's
        schema cookie and ``user_version`` (read-only PRAGMAs) are those they ran on, so a
        touched file is not scanned again (``sqlite_master`` lists every results table).
        """
        with self._guard("reading the schema"):
            cookie = int(self.conn.execute("PRAGMA schema_version").fetchone()[0])
            user = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        seen = f"{cookie}/{user}"
        memo = self._memo.get("schema")
        if memo is not None and memo[0] is self._conn and memo[2] == seen:
            return
        _consistent(QcodesReader._check_schema)(self)
        if self._conn is not None:
            self._memo["schema"] = (self._conn, 0, seen)

    def _adopt_kept(self) -> bool:
        """Take over a kept connection to this same file (same device and inode)."""
        kept = _take_kept(self.path)
        if kept is None:
            return False
        try:
            st = self.path.stat()
        except OSError:
            kept.close()
            return False
        if (st.st_dev, st.st_ino) != kept.identity:
            kept.close()
            return False
        self._conn, self._lock, self._mode = kept.conn, kept.lock, kept.mode
        self._uri, self._arrow = kept.uri, kept.arrow
        self._memo = kept.memo  # entries name their connection: stale ones never match
        vars(self).update(kept.state)  # what the schema checks found (see _recheck_schema)
        if kept.mode == "rollback":
            # No lock was kept: recheck the journal mode under the lock, as a fresh open does.
            if not self._lock.acquire(self.busy_timeout_s):
                self.close()
                raise DatabaseLockedError(str(self.path), self.busy_timeout_s)
            if _in_wal_mode(self._lock.fd):
                self._conn.close()
                self._conn = self._connect()
            if self._mode == "rollback":
                self._lock.release()
        else:
            with suppress(_SnapshotMovedError):  # a -wal appeared: now connected in WAL mode
                self._check_moved()
        return True

    def _connect(self) -> sqlite3.Connection:
        """Connect in the mode the side files allow (the SHARED lock is held).

        An ADBC connection of the previous mode is closed: the next numeric read opens
        one for the new mode if that mode allows it.
        """
        assert self._lock is not None
        self._close_arrow()
        wal = self.path.with_name(self.path.name + "-wal")
        shm = self.path.with_name(self.path.name + "-shm")
        while True:
            in_wal_mode = _in_wal_mode(self._lock.fd)
            if not in_wal_mode:
                mode: _ReadMode = "rollback"
                uri = _read_only_uri(self.path, "readonly_shm=1")
            elif not wal.exists():
                mode, uri = "immutable", _read_only_uri(self.path, "immutable=1")
            elif shm.exists():
                mode, uri = "wal", _read_only_uri(self.path, "readonly_shm=1")
            else:
                snapshot = self._copy_snapshot(wal, shm)
                if snapshot is None:
                    continue  # a writer created the -shm meanwhile: read it live
                mode, uri = "snapshot", _read_only_uri(snapshot)
            try:
                conn = sqlite3.connect(
                    uri,
                    uri=True,
                    timeout=self.busy_timeout_s,
                    isolation_level=None,
                    check_same_thread=False,
                )
            except sqlite3.Error as e:
                raise NotSqliteError(str(self.path), str(e)) from e
            self._mode = mode
            self._uri = uri
            logger.debug("opened %s (%s)", self.path, mode)
            return conn

    def _close_arrow(self) -> None:
        if self._arrow is not None:
            self._arrow.close()
            self._arrow = None

    def _copy_snapshot(self, wal: Path, shm: Path) -> Path | None:
        """Copy the ``.db`` and its ``-wal`` into a private directory; None if a writer came.

        With the SHARED lock held, a writer must create the ``-shm`` before it can change
        either file, so a copy taken while no ``-shm`` exists is a consistent state.
        """
        if self._snapshot_dir is None:
            self._snapshot_dir = Path(tempfile.mkdtemp(prefix="qops-snapshot-"))
        copy = self._snapshot_dir / self.path.name
        for leftover in self._snapshot_dir.iterdir():
            leftover.unlink()
        shutil.copyfile(self.path, copy)
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        if shm.exists():
            shutil.rmtree(self._snapshot_dir, ignore_errors=True)
            self._snapshot_dir = None
            return None
        return copy

    def close(self) -> None:
        """Close the connection and release the lock (idempotent); see ``reuse``."""
        mode = self._mode
        keep = self.reuse and mode not in (None, "snapshot")  # a private copy goes stale
        if keep and self._conn is not None and self._lock is not None and mode is not None:
            st = os.fstat(self._lock.fd)
            identity = (st.st_dev, st.st_ino)
            state = {k: v for k, v in vars(self).items() if k not in _NOT_KEPT}
            kept = _Kept(
                self._conn,
                self._lock,
                mode,
                self._uri,
                self._arrow,
                identity,
                time.monotonic(),
                self._memo,
                state,
            )
            with _kept_guard:
                previous = _kept.pop(self.path, None)
                _kept[self.path] = kept
            if previous is not None:
                previous.close()
            self._conn, self._lock, self._mode = None, None, None
            self._uri, self._arrow = None, None
            return
        self._close_arrow()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock is not None:
            self._lock.release()
            os.close(self._lock.fd)
            self._lock = None
        if self._snapshot_dir is not None:
            shutil.rmtree(self._snapshot_dir, ignore_errors=True)
            self._snapshot_dir = None
        self._mode = None
        self._uri = None

    def _check_moved(self) -> None:
        """Under ``immutable``, prove the last statement read an unchanged file.

        While the SHARED lock is held the ``.db`` changes only by a checkpoint, which needs
        a ``-wal`` that cannot be deleted meanwhile: no ``-wal`` now means no change since
        the connection was opened. Otherwise reconnect (WAL mode) and have the call rerun.
        """
        if self._mode != "immutable":
            return
        if not self.path.with_name(self.path.name + "-wal").exists():
            return
        if self._conn is not None:
            self._conn.close()
        self._conn = self._connect()
        raise _SnapshotMovedError

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise QcodesDatabaseError(str(self.path), "reader is not open")
        return self._conn

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Run statements: errors become qops errors naming the file; see also below.

        On a rollback-journal database the reader's SHARED lock is held for the
        statements (SQLite takes its own per statement, but a POSIX lock: any descriptor
        of the file closed in this process, such as another reader's ADBC connection,
        drops it; the reader's open-file-description lock stays until released here).
        Under ``immutable``, afterwards proves that the file did not change.
        """
        held = False
        if self._mode == "rollback" and self._lock is not None and not self._statement_lock:
            if not self._lock.acquire(self.busy_timeout_s):
                raise DatabaseLockedError(str(self.path), self.busy_timeout_s)
            held = self._statement_lock = True
        try:
            yield
        except sqlite3.OperationalError as e:
            if "unable to open" in str(e) and not os.access(self.path, os.R_OK):
                raise DatabaseUnreadableError(str(self.path), _account(), str(e)) from e
            if _is_locked(e):
                raise DatabaseLockedError(str(self.path), self.busy_timeout_s) from e
            raise QcodesDatabaseError(str(self.path), f"{what}: {e}") from e
        except sqlite3.DatabaseError as e:
            if "not a database" in str(e) or "file is encrypted" in str(e):
                raise NotSqliteError(str(self.path), str(e)) from e
            raise QcodesDatabaseError(str(self.path), f"{what}: {e}") from e
        finally:
            if held:
                self._statement_lock = False
                if self._lock is not None:
                    self._lock.release()
        self._check_moved()

    def _check_schema(self) -> None:
        where = str(self.path)
        with self._guard("reading the schema"):
            marks = ",".join("?" for _ in _REQUIRED_TABLES)
            tables = {
                str(r[0])
                for r in self.conn.execute(
                    f"SELECT name FROM sqlite_master WHERE type='table' AND name IN ({marks})",
                    _REQUIRED_TABLES,
                )
            }
            missing = [f"table {t}" for t in _REQUIRED_TABLES if t not in tables]
            if missing:
                raise NotQcodesDatabaseError(where, missing)
            version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
            if version not in RUN_COLUMNS:
                raise UnsupportedSchemaVersionError(where, version, SUPPORTED_SCHEMA_VERSIONS)
            self.schema_version = version
            columns = set(self._columns("runs"))
            missing = [f"runs.{c}" for c in RUN_COLUMNS[version] if c not in columns]
            self._run_columns = tuple(c for c in RUN_COLUMNS[9] if c in columns)
            exp_columns = set(self._columns("experiments"))
            missing += [f"experiments.{c}" for c in _EXPERIMENT_COLUMNS if c not in exp_columns]
            if missing:
                raise NotQcodesDatabaseError(where, missing)

    def _columns(self, table: str) -> list[str]:
        return [str(r[1]) for r in self.conn.execute(f"PRAGMA table_info({_quote_ident(table)})")]

    @_consistent
    def metadata_columns(self) -> list[str]:
        """Return the metadata columns of ``runs`` (QCoDeS adds them as metadata is set)."""
        with self._guard("reading the runs columns"):
            return [c for c in self._columns("runs") if c not in STANDARD_RUN_COLUMNS]

    # -- discovery -------------------------------------------------------------------

    @_consistent
    def runs_after(self, run_id: int) -> list[RunSummary]:
        """Return the runs with a ``run_id`` above ``run_id``, in id order (one query)."""
        with self._guard("listing runs"):
            rows = self.conn.execute(
                "SELECT run_id, guid, is_completed FROM runs WHERE run_id > ? ORDER BY run_id",
                (run_id,),
            ).fetchall()
        return [RunSummary(run_id=r[0], guid=str(r[1]), is_completed=bool(r[2])) for r in rows]

    @_consistent
    def runs(self, run_ids: Sequence[int]) -> list[RunSummary]:
        """Return the summaries of the given runs that exist."""
        if not run_ids:
            return []
        marks = ",".join("?" for _ in run_ids)
        with self._guard("listing runs"):
            rows = self.conn.execute(
                f"SELECT run_id, guid, is_completed FROM runs WHERE run_id IN ({marks})",
                tuple(run_ids),
            ).fetchall()
        return [RunSummary(run_id=r[0], guid=str(r[1]), is_completed=bool(r[2])) for r in rows]

    def _fingerprint_expression(self) -> str:
        parts = ["ifnull(is_completed, '')"]
        if "snapshot" in self._run_columns:
            parts.append("length(ifnull(snapshot, ''))")
        parts += [f"quote({_quote_ident(c)})" for c in self.metadata_columns()]
        return " || '|' || ".join(parts)

    @_consistent
    def metadata_fingerprint(self) -> str:
        """Return a digest of every run's completion flag and metadata, in one query.

        It changes when any run completes or gets metadata added or edited later (a star
        set in a viewer), so discovery can skip per-run checks when it is unchanged.
        """
        sql = (
            f"SELECT count(*), group_concat(run_id || ':' || {self._fingerprint_expression()}, ';')"
            " FROM runs"
        )
        # On a kept connection (``reuse``), SQLite's data_version (a read-only PRAGMA) tells
        # whether anyone committed since the last fingerprint: then it is reused.
        with self._guard("fingerprinting runs"):
            version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        memo = self._memo.get("fingerprint")
        if memo is not None and memo[0] is self._conn and memo[1] == version:
            return memo[2]
        with self._guard("fingerprinting runs"):
            count, text = self.conn.execute(sql).fetchone()
        fingerprint = hashlib.sha1(f"{count}/{text}".encode()).hexdigest()
        if self._conn is not None:
            self._memo["fingerprint"] = (self._conn, version, fingerprint)
        return fingerprint

    @_consistent
    def run_fingerprints(self) -> dict[int, str]:
        """Return a per-run digest (see :meth:`metadata_fingerprint`)."""
        sql = f"SELECT run_id, {self._fingerprint_expression()} FROM runs"
        with self._guard("fingerprinting runs"):
            rows = self.conn.execute(sql).fetchall()
        return {int(r[0]): hashlib.sha1(str(r[1]).encode()).hexdigest() for r in rows}

    @_consistent
    def run_fingerprint(self, run_id: int) -> str:
        """Return the digest of one run (see :meth:`run_fingerprints`)."""
        sql = f"SELECT {self._fingerprint_expression()} FROM runs WHERE run_id = ?"
        with self._guard("fingerprinting a run"):
            row = self.conn.execute(sql, (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(str(self.path), run_id)
        return hashlib.sha1(str(row[0]).encode()).hexdigest()

    # -- one run ---------------------------------------------------------------------

    @_consistent
    def run_info(self, run_id: int) -> RunInfo:
        """Return everything stored about run ``run_id`` except its data.

        Fields an older schema version lacks are derived as QCoDeS's upgrade would
        derive them (see :data:`RUN_COLUMNS`).

        Raises:
            RunNotFoundError: No such run.
            RunReadError: Versions 2 and 3: its layouts cannot make a run description.
        """
        meta_columns = self.metadata_columns()
        wanted = [*self._run_columns, *meta_columns]
        sql = (
            "SELECT "
            + ", ".join(f"r.{_quote_ident(c)}" for c in wanted)
            + ", e.name, e.sample_name FROM runs AS r JOIN experiments AS e"
            " ON r.exp_id = e.exp_id WHERE r.run_id = ?"
        )
        with self._guard(f"reading run {run_id}"):
            row = self.conn.execute(sql, (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(str(self.path), run_id)
        values = dict(zip(wanted, row, strict=False))
        metadata = {c: values[c] for c in meta_columns if values[c] is not None}
        # Columns an older schema version lacks get what QCoDeS's upgrade would store.
        captured_run_id = values.get("captured_run_id", values["run_id"])
        captured_counter = values.get("captured_counter", values["result_counter"])
        return RunInfo(
            run_id=int(values["run_id"]),
            exp_id=int(values["exp_id"]),
            name=str(values["name"] or ""),
            guid=str(values["guid"]),
            result_table_name=str(values["result_table_name"]),
            run_timestamp_raw=values["run_timestamp"],
            completed_timestamp_raw=values["completed_timestamp"],
            is_completed=bool(values["is_completed"]),
            run_description=self._run_description(values),
            snapshot_raw=values.get("snapshot"),
            captured_run_id=int(captured_run_id or values["run_id"]),
            captured_counter=int(captured_counter or values["result_counter"] or 0),
            parent_datasets=values.get("parent_datasets"),
            metadata={
                k: v if isinstance(v, (str, int, float)) else repr(v) for k, v in metadata.items()
            },
            exp_name=str(row[-2] or ""),
            sample_name=str(row[-1] or ""),
        )

    def _run_description(self, values: dict[str, Any]) -> str:
        """Return the run description as QCoDeS stores it at version 9 (JSON text)."""
        run_id = int(values["run_id"])
        if self.schema_version in _LAYOUT_DESCRIPTION_VERSIONS:
            return self._description_from_layouts(run_id, str(values["result_table_name"]))
        raw = values.get("run_description")
        if self.schema_version in _UNVERSIONED_DESCRIPTION_VERSIONS:
            return _versioned_description(raw)
        return str(raw or "")

    def _description_from_layouts(self, run_id: int, result_table: str) -> str:
        """Build a run description from the ``layouts`` and ``dependencies`` tables.

        The same description QCoDeS's 2 -> 3 -> 4 upgrade stores: one parameter spec per
        layout of the run, typed by its results-table column, ``depends_on`` in axis order,
        ``inferred_from`` split on ", "; independents first, then dependents, then the rest.

        Raises:
            RunReadError: A layout names a column its results table lacks, or a dependency
                points to a layout of another run.
        """
        path = str(self.path)
        with self._guard(f"reading the layouts of run {run_id}"):
            layouts = self.conn.execute(
                "SELECT layout_id, parameter, label, unit, inferred_from FROM layouts"
                " WHERE run_id = ? ORDER BY layout_id",
                (run_id,),
            ).fetchall()
            links = self.conn.execute(
                "SELECT d.dependent, d.independent FROM dependencies AS d"
                " JOIN layouts AS l ON l.layout_id = d.dependent WHERE l.run_id = ?"
                " ORDER BY d.rowid",
                (run_id,),
            ).fetchall()
            types = (
                {
                    str(r[1]): str(r[2])
                    for r in self.conn.execute(f"PRAGMA table_info({_quote_ident(result_table)})")
                }
                if layouts
                else {}
            )
        names = {int(r[0]): str(r[1]) for r in layouts}
        depends_on: dict[int, list[str]] = {}
        independents: list[int] = []
        for dependent, independent in links:
            if int(independent) not in names:
                raise RunReadError(
                    path,
                    run_id,
                    "dependencies",
                    f"layout {dependent} depends on layout {independent}, not one of this run's",
                )
            depends_on.setdefault(int(dependent), []).append(names[int(independent)])
            if int(independent) not in independents:
                independents.append(int(independent))
        order = [*independents, *(d for d in depends_on if d not in independents)]
        order += [i for i in names if i not in order]
        by_id = {int(r[0]): r for r in layouts}
        specs = []
        for layout_id in order:
            _, name, label, unit, inferred = by_id[layout_id]
            if str(name) not in types:
                raise RunReadError(
                    path,
                    run_id,
                    "layouts",
                    f"parameter {name!r} has no column in results table {result_table!r}",
                )
            specs.append(
                {
                    "name": str(name),
                    "paramtype": types[str(name)],
                    "label": str(label or ""),
                    "unit": str(unit or ""),
                    "inferred_from": str(inferred).split(", ") if inferred else [],
                    "depends_on": depends_on.get(layout_id, []),
                }
            )
        return json.dumps({"version": 0, "interdependencies": {"paramspecs": specs}})

    @_consistent
    def data_marker(self, info: RunInfo) -> int:
        """Return the highest row id of the run's results table (0 when it has no rows).

        QCoDeS only appends rows, so an unchanged marker means unchanged data.
        """
        sql = f"SELECT max(id) FROM {_quote_ident(info.result_table_name)}"
        with self._guard(f"reading run {info.run_id}"):
            row = self.conn.execute(sql).fetchone()
        return int(row[0] or 0)

    @_consistent
    def data_markers(self, run_ids: Sequence[int]) -> dict[int, int]:
        """Return ``run_id -> highest row id`` of the given runs that exist.

        One query on ``runs``, then one ``max(id)`` per results table (a rowid lookup).
        """
        if not run_ids:
            return {}
        marks = ",".join("?" for _ in run_ids)
        with self._guard("reading data markers"):
            tables = self.conn.execute(
                f"SELECT run_id, result_table_name FROM runs WHERE run_id IN ({marks})",
                tuple(run_ids),
            ).fetchall()
            markers = {}
            for run_id, table in tables:
                row = self.conn.execute(
                    f"SELECT max(id) FROM {_quote_ident(str(table))}"
                ).fetchone()
                markers[int(run_id)] = int(row[0] or 0)
        return markers

    @_consistent
    def parameter_data(self, info: RunInfo, up_to_row: int | None = None) -> ParameterData:
        """Return the run's data exactly as QCoDeS's ``get_parameter_data()`` would.

        Args:
            info: The run (from :meth:`run_info`).
            up_to_row: Read rows with ``id`` up to this one only (default: the current
                :meth:`data_marker`), so a run that is being written is read consistently.

        Raises:
            RunReadError: A stored value cannot be decoded.
        """
        describer = info.describer(str(self.path))
        interdeps = describer.interdeps
        last = self.data_marker(info) if up_to_row is None else up_to_row
        trees: dict[str, tuple[ParamSpecBase, ...]] = {}
        for top in interdeps.top_level_parameters:
            _, deps, inferred = interdeps.all_parameters_in_tree_by_group(top)
            trees[top.name] = (top, *deps, *inferred)
        numeric = [
            specs for specs in trees.values() if all(spec.type == "numeric" for spec in specs)
        ]
        # Numeric trees share one pass over the results table (dependents measured together,
        # like I and Q, sit in the same rows): each row is stepped once, not once per tree.
        shared = self._numeric_trees(info, numeric, last) if numeric else {}
        output: ParameterData = {}
        for name, specs in trees.items():
            arrays = shared[name] if name in shared else self._generic_tree(info, specs, last)
            output[name] = _reshape(arrays, describer, name)
        return output

    def _tree_sql(self, info: RunInfo, specs: Sequence[ParamSpecBase]) -> str:
        columns = ", ".join(_quote_ident(s.name) for s in specs)
        return (
            f"SELECT {columns} FROM {_quote_ident(info.result_table_name)} "
            f"WHERE id > ? AND id <= ? AND {_quote_ident(specs[0].name)} IS NOT NULL"
        )

    @staticmethod
    def _windows(last: int) -> Iterator[tuple[int, int]]:
        """Yield ``(first id, last id)`` windows; each query on one is a short read transaction."""
        start = 0
        while start < last:
            stop = min(start + _WINDOW_ROWS, last)
            yield start, stop
            start = stop

    def _numeric_window(
        self, info: RunInfo, sql: str, window: tuple[int, int], dtype: np.dtype[Any]
    ) -> npt.NDArray[Any]:
        """Return one window's rows as a structured float64 array (NULL as NaN).

        Plain floats and ints go straight from the cursor into numpy; a window holding
        text (QCoDeS stores NaN as the text ``nan``) is converted through Python.
        """
        with self._guard(f"reading data of run {info.run_id}"):
            try:
                return np.fromiter(self.conn.execute(sql, window), dtype=dtype)
            except (TypeError, ValueError):
                rows = self.conn.execute(sql, window).fetchall()
        try:
            plain = np.array(rows, dtype=np.float64).reshape(len(rows), len(dtype.names or ()))
        except (ValueError, TypeError) as e:
            raise RunReadError(str(self.path), info.run_id, "numeric data", str(e)) from e
        return np.rec.fromarrays(plain.T, dtype=dtype) if len(rows) else np.empty(0, dtype)

    def _arrow_window(
        self, info: RunInfo, sql: str, window: tuple[int, int], width: int, tops: Sequence[int]
    ) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.bool_]]] | None:
        """Read one window through ADBC where the connection mode allows it, else None.

        On a rollback-journal database the window is read under the reader's SHARED
        lock, after checking that the file is still in rollback-journal mode (a switch
        to WAL needs an exclusive lock, so it cannot happen during the read): ADBC's
        SQLite then opens no ``-shm``.
        """
        if not self.arrow or self._mode not in _ARROW_MODES or self._uri is None:
            return None
        with self._guard(f"reading data of run {info.run_id}"):
            if self._mode == "rollback":
                assert self._lock is not None
                if _in_wal_mode(self._lock.fd):
                    return None  # now a WAL database: sqlite3 reads it (readonly_shm)
            if self._arrow is None:
                # Rollback reads hold the SHARED lock that every writer waits for, and a
                # private copy has no writer: only there can the file be mapped.
                fixed = self._mode in ("rollback", "snapshot")
                self._arrow = ArrowWindows.open(self._uri, _WINDOW_ROWS, map_file=fixed)
                if self._arrow is None:
                    self.arrow = False  # the driver is missing or refused the file
                    return None
            return self._arrow.read(sql, window, width, tops)

    def _numeric_trees(
        self, info: RunInfo, trees: Sequence[Sequence[ParamSpecBase]], last: int
    ) -> dict[str, dict[str, npt.NDArray[Any]]]:
        """Read numeric trees in one pass: ``top name -> parameter name -> values``.

        Each tree holds the rows where its top-level parameter is not NULL, in row order,
        exactly as a query of that tree alone would. With more than one tree, one query
        reads the union of their columns over the rows where any top-level parameter is
        set, and each tree keeps the rows where its own is not NULL (NULL as the driver
        reports it, never inferred from NaN, which QCoDeS stores as a value).
        """
        if len(trees) == 1:
            specs = trees[0]
            sql = self._tree_sql(info, specs)
            columns, _ = self._numeric_columns(info, (sql, sql), len(specs), last, ())
            return {specs[0].name: self._named(specs, columns)}
        names = list(dict.fromkeys(spec.name for specs in trees for spec in specs))
        tops = [names.index(specs[0].name) for specs in trees]
        set_tops = [f"{_quote_ident(names[i])} IS NOT NULL" for i in tops]
        rows = (
            f"FROM {_quote_ident(info.result_table_name)} "
            f"WHERE id > ? AND id <= ? AND ({' OR '.join(set_tops)})"
        )
        select = ", ".join(map(_quote_ident, names))
        sql = f"SELECT {select} {rows}"
        # sqlite3 gives NULL and the text "nan" alike as NaN: there the query also says,
        # per tree, whether its top-level parameter is set (the Arrow driver reports NULLs).
        flagged = f"SELECT {select}, {', '.join(set_tops)} {rows}"
        columns, valid = self._numeric_columns(info, (sql, flagged), len(names), last, tops)
        by_name = dict(zip(names, columns, strict=True))
        output = {}
        for specs, mask in zip(trees, valid, strict=True):
            output[specs[0].name] = {spec.name: by_name[spec.name][mask] for spec in specs}
        return output

    @staticmethod
    def _named(
        specs: Sequence[ParamSpecBase], columns: list[npt.NDArray[np.float64]]
    ) -> dict[str, npt.NDArray[Any]]:
        return {spec.name: column for spec, column in zip(specs, columns, strict=True)}

    def _numeric_columns(
        self, info: RunInfo, sql: tuple[str, str], width: int, last: int, tops: Sequence[int]
    ) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.bool_]]]:
        """Run a query over every window of rows up to ``last``; its columns as float64.

        Args:
            info: The run.
            sql: The query for the Arrow driver, and the same query for ``sqlite3`` with
                one more column per index in ``tops``: whether that column is not NULL.
            width: The columns of the first query.
            last: The last row id to read.
            tops: Columns whose non-NULL masks are returned too.
        """
        arrow_sql, flagged_sql = sql
        dtype = np.dtype([(f"c{i}", np.float64) for i in range(width + len(tops))])
        # At most `last` rows: untouched pages of the over-allocation cost no memory, and
        # the arrays are shrunk in place at the end.
        columns = [np.empty(last, dtype=np.float64) for _ in range(width)]
        valid = [np.empty(last, dtype=np.bool_) for _ in tops]
        filled = 0
        windows = through_arrow = 0
        for window in self._windows(last):
            windows += 1
            read = self._arrow_window(info, arrow_sql, window, width, tops)
            if read is None:
                rows = self._numeric_window(info, flagged_sql, window, dtype)
                block = [rows[f"c{i}"] for i in range(width)]
                masks = [rows[f"c{width + k}"] != 0 for k in range(len(tops))]
            else:
                block, masks = read
                through_arrow += 1
                self.arrow_windows += 1
            end = filled + len(block[0])
            for column, values in zip([*columns, *valid], [*block, *masks], strict=True):
                column[filled:end] = values
            filled = end
        for column in [*columns, *valid]:
            column.resize(filled, refcheck=False)
        logger.debug(
            "run %d: %d of %d windows read through ADBC (%s connection)",
            info.run_id,
            through_arrow,
            windows,
            self._mode,
        )
        return columns, valid

    def _generic_tree(
        self, info: RunInfo, specs: Sequence[ParamSpecBase], last: int
    ) -> dict[str, npt.NDArray[Any]]:
        from qcodes.dataset.sqlite.queries import _expand_data_to_arrays
        from qcodes.utils.numpy_utils import list_of_data_to_maybe_ragged_nd_array

        converters = [_CONVERTERS[spec.type] for spec in specs]
        sql = self._tree_sql(info, specs)
        rows: list[tuple[Any, ...]] = []
        try:
            for bounds in self._windows(last):
                with self._guard(f"reading data of run {info.run_id}"):
                    window = self.conn.execute(sql, bounds).fetchall()
                rows.extend(
                    tuple(
                        None if value is None else convert(value)
                        for convert, value in zip(converters, row, strict=True)
                    )
                    for row in window
                )
            # QCoDeS's own expansion of scalars next to array values (a pure function).
            _expand_data_to_arrays(rows, specs)
        except (ValueError, TypeError, OSError) as e:
            raise RunReadError(str(self.path), info.run_id, "data", str(e)) from e
        columns = list(map(list, zip(*rows, strict=True))) if rows else [[] for _ in specs]
        return {
            spec.name: list_of_data_to_maybe_ragged_nd_array(
                column, np.float64 if spec.type == "numeric" else None
            )
            for spec, column in zip(specs, columns, strict=True)
        }


def _versioned_description(raw: object) -> str:
    """Add the ``version`` key that QCoDeS's 5 -> 6 upgrade adds to a stored description.

    A missing description becomes an empty one, as in that upgrade. A description whose
    interdependencies already use the newer ``parameters`` layout (written by some QCoDeS
    releases at schema version 4) is marked as description version 1, which is its format;
    QCoDeS's own upgrade fails on it.
    """
    if raw is None:
        return json.dumps({"version": 0, "interdependencies": {"paramspecs": []}})
    try:
        parsed = json.loads(str(raw))
    except json.JSONDecodeError:
        return str(raw)  # reported by RunInfo.describer with the decoder's message
    if not isinstance(parsed, dict) or "version" in parsed:
        return str(raw)
    interdeps = parsed.get("interdependencies")
    version = 1 if isinstance(interdeps, dict) and "parameters" in interdeps else 0
    return json.dumps({"version": version, **parsed})


def _reshape(
    arrays: dict[str, npt.NDArray[Any]], describer: RunDescriber, name: str
) -> dict[str, npt.NDArray[Any]]:
    """Give the arrays the run's declared shape when the number of points matches it."""
    shapes = describer.shapes
    if shapes is None or shapes.get(name) is None:
        return arrays
    shape = tuple(int(s) for s in shapes[name])
    size = int(np.prod(shape))
    return {
        key: value.reshape(shape) if int(np.prod(value.shape)) == size else value
        for key, value in arrays.items()
    }


def _convert_numeric(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, bytes):
        return float(value)
    return value


def _convert_array(value: Any) -> npt.NDArray[Any]:
    return np.lib.format.read_array(io.BytesIO(value), allow_pickle=False)


def _convert_complex(value: Any) -> Any:
    return np.lib.format.read_array(io.BytesIO(value), allow_pickle=False)[0]


def _convert_text(value: Any) -> Any:
    return value


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "numeric": _convert_numeric,
    "array": _convert_array,
    "complex": _convert_complex,
    "text": _convert_text,
}
