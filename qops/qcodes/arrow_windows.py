"""Numeric windows of a results table read in C, through the ADBC SQLite driver.

Python's ``sqlite3`` builds one Python object per value, which is most of the time of a
large sync (2 M rows of 3 REAL columns: about 1.1 s). The ADBC SQLite driver steps the
same statement in C and hands the rows over as Arrow columns, which numpy takes without
a copy per value (about 4x faster here, see ``docs/benchmarks.md``).

The driver bundles its own SQLite library. Two SQLite libraries in one process do not
see each other's POSIX locks: one closing a file drops the locks the other holds on it.
So :class:`~qops.qcodes.reader.QcodesReader` uses this module only where that cannot
matter (``immutable`` and private-copy connections take no SQLite locks; rollback-journal
reads run under the reader's own open-file-description lock) and never for a WAL
database with a live ``-shm`` (see ``docs/sync.md``, "How the lab's file is read").

The driver infers a column's Arrow type over a whole batch: INTEGER and REAL values give
``int64`` or ``double``, any TEXT or BLOB value turns the column into ``string`` or
``binary`` (its numbers then as text, rounded). Only windows whose columns are all
``int64``, ``double`` or all-NULL are taken; for any other window :meth:`ArrowWindows.read`
returns None and the caller reads it through ``sqlite3``, which converts every value
exactly as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

_BATCH_ROWS_OPTION = "adbc.sqlite.query.batch_rows"
# Address space for the read-only map (SQLite maps at most this much of the file).
_MMAP_BYTES = 1 << 40


class ArrowWindows:
    """An ADBC SQLite connection that reads windows of numeric rows into float64 arrays.

    Built by :meth:`open`.

    Args:
        conn: The driver's DB-API connection.
        errors: The driver's error classes (a failed read falls back to ``sqlite3``).
        uri: The SQLite URI filename it opened (the reader's, with its ``mode=ro`` and
            ``immutable``/``readonly_shm`` parameters); the driver opens it with
            ``SQLITE_OPEN_URI``, so the parameters apply as they do for ``sqlite3``.
        batch_rows: At least the rows of one window, so that a window is one Arrow batch
            and the driver infers each column's type over the whole window.

    The connection is in autocommit mode: every window is its own read transaction, as
    with the reader's ``sqlite3`` connection.
    """

    def __init__(self, conn: Any, errors: tuple[type[Exception], ...], uri: str, batch_rows: int):
        self._conn = conn
        self._errors = errors
        self.uri = uri
        self.batch_rows = batch_rows

    @classmethod
    def open(cls, uri: str, batch_rows: int, map_file: bool = False) -> ArrowWindows | None:
        """Connect to ``uri``; None when the driver is not installed or cannot open it.

        Opening reads nothing: SQLite reads the file at the first statement.

        Args:
            uri: The SQLite URI filename.
            batch_rows: See the class.
            map_file: Read the file through a read-only memory map instead of one read
                call per page (about 30 % less time for a large run). Only for a file that
                cannot change or shrink while it is read: a writer truncating a mapped file
                would crash the process, where a read call only fails.
        """
        try:
            import adbc_driver_sqlite.dbapi as adbc_sqlite
        except ImportError as e:
            logger.info("ADBC SQLite driver not available, reading through sqlite3: %s", e)
            return None
        try:
            conn = adbc_sqlite.connect(uri, autocommit=True)
            if map_file:
                # A setting of this connection only: nothing is written to the file.
                cursor = conn.cursor()
                try:
                    cursor.execute(f"PRAGMA mmap_size = {_MMAP_BYTES:d}")
                    cursor.fetchall()
                finally:
                    cursor.close()
        except adbc_sqlite.Error as e:
            logger.debug("ADBC cannot open %s, reading through sqlite3: %s", uri, e)
            return None
        return cls(conn, (adbc_sqlite.Error,), uri, batch_rows)

    def read(
        self, sql: str, bounds: tuple[int, int], width: int, valid: Sequence[int] = ()
    ) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.bool_]]] | None:
        """Run ``sql`` with ``bounds`` and return its ``width`` columns as float64 arrays.

        NULL becomes NaN, INTEGER values are converted to float64 as ``float()`` would.

        Args:
            sql: The query, with two ``?`` for the bounds.
            bounds: The window's ``(first id, last id)``.
            width: The number of columns the query selects.
            valid: Indices of the columns whose non-NULL masks are wanted too.

        Returns:
            The columns and, for each index in ``valid``, where that column is not NULL;
            or None when a column holds TEXT or BLOB values or the driver failed: the
            caller then reads the window through ``sqlite3``.
        """
        cursor = self._conn.cursor()
        try:
            cursor.adbc_statement.set_options(**{_BATCH_ROWS_OPTION: str(self.batch_rows)})
            cursor.execute(sql, bounds)
            table = cursor.fetch_arrow_table()
        except self._errors as e:
            logger.debug("ADBC read of %s failed, reading through sqlite3: %s", self.uri, e)
            return None
        finally:
            cursor.close()
        if table.num_columns != width:
            return None
        columns = []
        for column in table.columns:
            array = _as_float64(column)
            if array is None:
                return None
            columns.append(array)
        masks = [
            np.asarray(table.column(i).is_valid().to_numpy(zero_copy_only=False), np.bool_)
            for i in valid
        ]
        return columns, masks

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _as_float64(column: pa.ChunkedArray) -> npt.NDArray[np.float64] | None:
    """Return an Arrow column of int64, double or nulls as float64 (NaN for NULL)."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_null(kind):
        return np.full(len(column), np.nan)
    if not (pa.types.is_float64(kind) or pa.types.is_int64(kind)):
        return None
    # pyarrow gives NaN for the NULLs of a float column and turns an int64 column with
    # NULLs into float64 with NaN; a plain int64 column is converted here.
    return np.asarray(column.to_numpy(), dtype=np.float64)
