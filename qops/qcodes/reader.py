"""Read-only access to a lab's QCoDeS SQLite database.

The reader never modifies the file: it opens it with a ``file:...?mode=ro`` URI, issues
no PRAGMA that writes (only ``user_version`` and ``table_info`` are read), never runs
QCoDeS's schema upgrades and never touches QCoDeS's global configuration. QCoDeS's own
loaders upgrade older databases in place, so the tables are read here, by column name,
for each supported schema version (2 to 9); what an older version lacks is derived the
way QCoDeS's upgrade would derive it (see :data:`RUN_COLUMNS`), so an old file reads as
its upgraded copy would.

Reads are short: every statement is its own read transaction (autocommit), and a run's
data is fetched in windows of row ids, so a measurement writing to the same file is never
blocked for long. Numeric data is read with plain ``sqlite3`` into preallocated numpy
arrays (no per-value Python converters); other types use converters equivalent to
QCoDeS's.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from qcodes.dataset.descriptions.rundescriber import RunDescriber
from qcodes.dataset.descriptions.versioning import serialization as serial
from qcodes.dataset.sqlite.queries import _expand_data_to_arrays
from qcodes.parameters import ParamSpecBase
from qcodes.utils.numpy_utils import list_of_data_to_maybe_ragged_nd_array

from qops.qcodes.errors import (
    DatabaseLockedError,
    DatabaseNotFoundError,
    NotQcodesDatabaseError,
    NotSqliteError,
    QcodesDatabaseError,
    RunNotFoundError,
    RunReadError,
    UnsupportedSchemaVersionError,
)

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
            return serial.from_json_to_current(self.run_description)
        except (ValueError, KeyError, TypeError) as e:
            raise RunReadError(path, self.run_id, "run_description", str(e)) from e


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_only_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path)) + "?mode=ro"


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


class QcodesReader:
    """A read-only view of one QCoDeS database file.

    Args:
        path: The ``.db`` file.
        busy_timeout_s: How long a statement waits for a writer's lock before failing.

    Use as a context manager, or call :meth:`open` and :meth:`close`.
    """

    def __init__(self, path: Path | str, busy_timeout_s: float = 5.0) -> None:
        self.path = Path(path).expanduser()
        self.busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self.schema_version = 0
        self._run_columns: tuple[str, ...] = ()

    # -- connection ------------------------------------------------------------------

    def open(self) -> Self:
        """Open the file read-only and check that it is a supported QCoDeS database.

        Raises:
            DatabaseNotFoundError: The file does not exist.
            NotSqliteError: The file is not SQLite.
            NotQcodesDatabaseError: SQLite without QCoDeS's tables.
            UnsupportedSchemaVersionError: A schema version the reader does not support.
            DatabaseLockedError: A writer held the lock past the busy timeout.
        """
        where = str(self.path)
        if not self.path.is_file():
            raise DatabaseNotFoundError(where)
        try:
            conn = sqlite3.connect(
                _read_only_uri(self.path),
                uri=True,
                timeout=self.busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as e:
            raise NotSqliteError(where, str(e)) from e
        self._conn = conn
        try:
            self._check_schema()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

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
        """Turn sqlite3 errors into qops errors naming the file."""
        try:
            yield
        except sqlite3.OperationalError as e:
            if _is_locked(e):
                raise DatabaseLockedError(str(self.path), self.busy_timeout_s) from e
            raise QcodesDatabaseError(str(self.path), f"{what}: {e}") from e
        except sqlite3.DatabaseError as e:
            if "not a database" in str(e) or "file is encrypted" in str(e):
                raise NotSqliteError(str(self.path), str(e)) from e
            raise QcodesDatabaseError(str(self.path), f"{what}: {e}") from e

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

    def metadata_columns(self) -> list[str]:
        """Return the metadata columns of ``runs`` (QCoDeS adds them as metadata is set)."""
        with self._guard("reading the runs columns"):
            return [c for c in self._columns("runs") if c not in STANDARD_RUN_COLUMNS]

    # -- discovery -------------------------------------------------------------------

    def runs_after(self, run_id: int) -> list[RunSummary]:
        """Return the runs with a ``run_id`` above ``run_id``, in id order (one query)."""
        with self._guard("listing runs"):
            rows = self.conn.execute(
                "SELECT run_id, guid, is_completed FROM runs WHERE run_id > ? ORDER BY run_id",
                (run_id,),
            ).fetchall()
        return [RunSummary(run_id=r[0], guid=str(r[1]), is_completed=bool(r[2])) for r in rows]

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

    def metadata_fingerprint(self) -> str:
        """Return a digest of every run's completion flag and metadata, in one query.

        It changes when any run completes or gets metadata added or edited later (a star
        set in a viewer), so discovery can skip per-run checks when it is unchanged.
        """
        sql = (
            f"SELECT count(*), group_concat(run_id || ':' || {self._fingerprint_expression()}, ';')"
            " FROM runs"
        )
        with self._guard("fingerprinting runs"):
            count, text = self.conn.execute(sql).fetchone()
        return hashlib.sha1(f"{count}/{text}".encode()).hexdigest()

    def run_fingerprints(self) -> dict[int, str]:
        """Return a per-run digest (see :meth:`metadata_fingerprint`)."""
        sql = f"SELECT run_id, {self._fingerprint_expression()} FROM runs"
        with self._guard("fingerprinting runs"):
            rows = self.conn.execute(sql).fetchall()
        return {int(r[0]): hashlib.sha1(str(r[1]).encode()).hexdigest() for r in rows}

    def run_fingerprint(self, run_id: int) -> str:
        """Return the digest of one run (see :meth:`run_fingerprints`)."""
        sql = f"SELECT {self._fingerprint_expression()} FROM runs WHERE run_id = ?"
        with self._guard("fingerprinting a run"):
            row = self.conn.execute(sql, (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(str(self.path), run_id)
        return hashlib.sha1(str(row[0]).encode()).hexdigest()

    # -- one run ---------------------------------------------------------------------

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

    def data_marker(self, info: RunInfo) -> int:
        """Return the highest row id of the run's results table (0 when it has no rows).

        QCoDeS only appends rows, so an unchanged marker means unchanged data.
        """
        sql = f"SELECT max(id) FROM {_quote_ident(info.result_table_name)}"
        with self._guard(f"reading run {info.run_id}"):
            row = self.conn.execute(sql).fetchone()
        return int(row[0] or 0)

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
        output: ParameterData = {}
        for top in interdeps.top_level_parameters:
            _, deps, inferred = interdeps.all_parameters_in_tree_by_group(top)
            specs: tuple[ParamSpecBase, ...] = (top, *deps, *inferred)
            if all(spec.type == "numeric" for spec in specs):
                arrays = self._numeric_tree(info, specs, last)
            else:
                arrays = self._generic_tree(info, specs, last)
            output[top.name] = _reshape(arrays, describer, top.name)
        return output

    def _tree_sql(self, info: RunInfo, specs: Sequence[ParamSpecBase]) -> str:
        columns = ", ".join(_quote_ident(s.name) for s in specs)
        return (
            f"SELECT {columns} FROM {_quote_ident(info.result_table_name)} "
            f"WHERE id > ? AND id <= ? AND {_quote_ident(specs[0].name)} IS NOT NULL"
        )

    def _windows(
        self, info: RunInfo, specs: Sequence[ParamSpecBase], last: int
    ) -> Iterator[tuple[int, int]]:
        """Yield ``(first id, last id)`` windows; each query on one is a short read transaction."""
        start = 0
        while start < last:
            stop = min(start + _WINDOW_ROWS, last)
            yield start, stop
            start = stop

    def _numeric_window(
        self, info: RunInfo, sql: str, window: tuple[int, int], dtype: np.dtype[Any]
    ) -> npt.NDArray[Any]:
        """Return one window's rows as a structured float64 array.

        Plain floats and ints go straight from the cursor into numpy; a window holding
        NULLs or text (QCoDeS stores NaN as the text ``nan``) is converted through Python.
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

    def _numeric_tree(
        self, info: RunInfo, specs: Sequence[ParamSpecBase], last: int
    ) -> dict[str, npt.NDArray[Any]]:
        sql = self._tree_sql(info, specs)
        dtype = np.dtype([(f"c{i}", np.float64) for i in range(len(specs))])
        # At most `last` rows: untouched pages of the over-allocation cost no memory, and
        # the arrays are shrunk in place at the end.
        columns = [np.empty(last, dtype=np.float64) for _ in specs]
        filled = 0
        for window in self._windows(info, specs, last):
            block = self._numeric_window(info, sql, window, dtype)
            end = filled + len(block)
            for i, column in enumerate(columns):
                column[filled:end] = block[f"c{i}"]
            filled = end
        for column in columns:
            column.resize(filled, refcheck=False)
        return {spec.name: column for spec, column in zip(specs, columns, strict=True)}

    def _generic_tree(
        self, info: RunInfo, specs: Sequence[ParamSpecBase], last: int
    ) -> dict[str, npt.NDArray[Any]]:
        converters = [_CONVERTERS[spec.type] for spec in specs]
        sql = self._tree_sql(info, specs)
        rows: list[tuple[Any, ...]] = []
        try:
            for bounds in self._windows(info, specs, last):
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
