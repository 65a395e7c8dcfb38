"""The catalog's read side: search datasets, get one, read its HDF5 file.

:class:`CatalogQueryService` answers a :class:`DatasetQuery` with a :class:`DatasetPage`:
the datasets newest first (``collected`` descending, then ``_id`` descending; datasets
without a ``collected`` time come last), the ``total`` of the whole query and facet counts
(tags, set-ups, chosen attributes' values) of the same query.

Paging is by key, not by offset: the cursor holds the last ``(collected, _id)`` returned,
and the next page asks for what sorts after it. A dataset synced while someone pages
either sorts before the cursor (it is not shown on later pages) or after it (it is), so
no result shifts or repeats.

Every filter is plain MongoDB, served the same way by a MongoDB server and by the
embedded server (``docs/mongodb.md`` lists where the embedded one deviates and how the
queries here avoid it):

- Attributes are matched on ``attribute_pairs``, the ``key<US>value`` strings
  :class:`~qops.catalog.repository.DatasetRepository` stores beside ``attributes``
  (``<US>`` = the ASCII unit separator): attribute keys contain dots
  (``instrument.parameter``), which a query path cannot address.
- The page after a cursor is read with up to three finds (same time and smaller id, then
  earlier times, then no time), never an ``$or`` over the sort keys, so each is one index
  range on both servers.
- ``total`` is the ``count`` command (the embedded server's ``$count`` stage miscounts
  date filters).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import fsspec
import xarray as xr
from pydantic import BaseModel, Field, field_validator
from pymongo import DESCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from qops.catalog.errors import (
    DatasetFileMissingError,
    DatasetNotFoundError,
    FileVersionNotFoundError,
    InvalidDatasetQueryError,
)
from qops.catalog.models import DatasetRecord, DatasetStatus, FileVersion
from qops.catalog.repository import ATTRIBUTE_SEPARATOR, DatasetRepository, attribute_pairs
from qops.export.hdf5 import read_hdf5, read_hdf5_groups
from qops.mongo import Document
from qops.timeutil import as_utc

logger = logging.getLogger(__name__)

DEFAULT_FACET_ATTRIBUTES: tuple[str, ...] = ("sample", "qubit")
"""Attributes whose values are counted by default (besides tags and ``set-up``)."""

FACET_SIZE = 50
"""At most this many values per facet, the most frequent first."""

CHUNK_BYTES = 1 << 20
"""Bytes per read when a file is streamed."""

_SET_UP = "set-up"
_SORT = [("collected", DESCENDING), ("_id", DESCENDING)]


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


class DatasetQuery(BaseModel):
    """What to search for; every filter is optional and all given filters must hold.

    Attributes:
        text: Free text, found case-insensitively in the name or the description.
        tags: Tags the dataset must all have.
        attributes: ``key -> value`` pairs the dataset must all have.
        min_ranking: Least ranking (inclusive).
        collected_after: Collected at or after (naive times are UTC).
        collected_before: Collected before (exclusive; naive times are UTC).
        source: The sync source.
        set_up: The ``set-up`` attribute.
        scope: The scope.
        status: ``live``, ``complete`` or ``abandoned``.
        limit: Datasets per page, 1 to 500.
        cursor: Where the previous page stopped (its ``next_cursor``).
    """

    text: str | None = None
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)
    min_ranking: int | None = None
    collected_after: datetime | None = None
    collected_before: datetime | None = None
    source: str | None = None
    set_up: str | None = None
    scope: str | None = None
    status: DatasetStatus | None = None
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = None

    @field_validator("collected_after", "collected_before")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class FacetCount(BaseModel):
    """How many datasets of the query have this value."""

    value: str
    count: int


class DatasetFacets(BaseModel):
    """Value counts over every dataset of a query (not only the page).

    Attributes:
        tags: Tags, the most frequent first.
        set_ups: Values of the ``set-up`` attribute.
        attributes: Per counted attribute key, its values.
    """

    tags: list[FacetCount]
    set_ups: list[FacetCount]
    attributes: dict[str, list[FacetCount]]


class DatasetPage(BaseModel):
    """One page of a search.

    Attributes:
        datasets: The page, newest first.
        total: Datasets matching the whole query (all pages).
        next_cursor: Pass as ``cursor`` for the next page; ``None`` on the last page.
        facets: Value counts of the whole query, or ``None`` when not asked for.
    """

    datasets: list[DatasetRecord]
    total: int
    next_cursor: str | None
    facets: DatasetFacets | None


@dataclass(frozen=True)
class DatasetFile:
    """A dataset's file version and where to read it.

    Attributes:
        record: The dataset.
        file: The file version.
        path: A local :class:`~pathlib.Path`, or an fsspec URL (``s3://...``, ``memory://...``)
            for files written through a remote filesystem.
    """

    record: DatasetRecord
    file: FileVersion
    path: Path | str

    @property
    def is_local(self) -> bool:
        """Whether :attr:`path` is a local file."""
        return isinstance(self.path, Path)


def _location(location: str) -> Path | str:
    """A local path for a plain path or ``file://`` URL, else the fsspec URL itself."""
    if location.startswith("file://"):
        return Path(location.removeprefix("file://"))
    if "://" in location:
        return location
    return Path(location)


def encode_cursor(collected: datetime | None, uuid: str) -> str:
    """The opaque cursor after the dataset ``uuid`` collected at ``collected``."""
    stamp = None if collected is None else as_utc(collected).isoformat()
    raw = json.dumps([stamp, uuid], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    """The ``(collected, uuid)`` of :func:`encode_cursor`.

    Raises:
        InvalidDatasetQueryError: The cursor was not made by :func:`encode_cursor`.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, uuid = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(uuid, str) or not (stamp is None or isinstance(stamp, str)):
            raise ValueError("not a [time, id] pair")
        collected = None if stamp is None else as_utc(datetime.fromisoformat(stamp))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as e:
        raise InvalidDatasetQueryError(
            "cursor", cursor, "the next_cursor of a previous page"
        ) from e
    return collected, uuid


def parse_attributes(values: list[str], parameter: str = "attr") -> dict[str, str]:
    """Turn ``key=value`` strings into a mapping (the first ``=`` separates).

    Raises:
        InvalidDatasetQueryError: A value has no ``=`` or an empty key.
    """
    attributes: dict[str, str] = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise InvalidDatasetQueryError(parameter, value, "key=value")
        if key in attributes and attributes[key] != wanted:
            raise InvalidDatasetQueryError(
                parameter, value, f"one value per key ({key}={attributes[key]} given too)"
            )
        attributes[key] = wanted
    return attributes


def build_filter(query: DatasetQuery) -> dict[str, Any]:
    """The MongoDB filter of ``query``'s conditions (without paging)."""
    conditions: list[dict[str, Any]] = []
    if query.text:
        pattern = {"$regex": re.escape(query.text), "$options": "i"}
        conditions.append({"$or": [{"name": pattern}, {"description": pattern}]})
    if query.tags:
        conditions.append({"tags": {"$all": list(dict.fromkeys(query.tags))}})
    pairs = attribute_pairs(query.attributes)
    if query.set_up is not None:
        # With a different set-up attribute as well, both must hold: nothing matches.
        pairs += attribute_pairs({_SET_UP: query.set_up})
    if pairs:
        conditions.append({"attribute_pairs": {"$all": list(dict.fromkeys(pairs))}})
    if query.min_ranking is not None:
        conditions.append({"ranking": {"$gte": query.min_ranking}})
    if query.collected_after is not None or query.collected_before is not None:
        window: dict[str, datetime] = {}
        if query.collected_after is not None:
            window["$gte"] = query.collected_after
        if query.collected_before is not None:
            window["$lt"] = query.collected_before
        conditions.append({"collected": window})
    # Single values as {"$eq": v}: the embedded server serves those from an index.
    for field, value in (("source", query.source), ("scope", query.scope)):
        if value is not None:
            conditions.append({field: {"$eq": value}})
    if query.status is not None:
        conditions.append({"status": {"$eq": query.status.value}})
    merged: dict[str, Any] = {}
    for condition in conditions:
        for key, value in condition.items():
            if key in merged:
                merged.setdefault("$and", []).append({key: value})
            else:
                merged[key] = value
    return merged


def _and(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    if not base:
        return extra
    overlap = set(base) & set(extra)
    if not overlap:
        return {**base, **extra}
    return {"$and": [base, extra]}


def _facet_counts(counter: Counter[str]) -> list[FacetCount]:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [FacetCount(value=value, count=count) for value, count in ranked[:FACET_SIZE]]


def _record(document: Document) -> DatasetRecord:
    document = dict(document)
    document.pop("_id", None)
    return DatasetRecord.model_validate(document)


class CatalogQueryService:
    """Searches the ``datasets`` collection and reads the datasets' files.

    Args:
        db: The qops database.
        storage_options: Passed to fsspec when a file location is a URL (credentials of an
            object store, for example); local paths do not use them.
    """

    def __init__(
        self, db: Database[Document], storage_options: dict[str, object] | None = None
    ) -> None:
        self.repository = DatasetRepository(db)
        self.collection: Collection[Document] = self.repository.collection
        self.db = db
        self.storage_options = dict(storage_options or {})

    def ensure_indexes(self) -> None:
        """Create the indexes the searches use (see the repository) and fill in old records."""
        self.repository.ensure_indexes()
        self.repository.backfill_attribute_pairs()

    # --- search -------------------------------------------------------------------------

    def search(
        self,
        query: DatasetQuery,
        *,
        facets: bool = True,
        facet_attributes: Sequence[str] = DEFAULT_FACET_ATTRIBUTES,
    ) -> DatasetPage:
        """Return one page of the datasets matching ``query``, newest first.

        Args:
            query: The filters, page size and cursor.
            facets: Whether to count tags, set-ups and ``facet_attributes`` values.
            facet_attributes: Attribute keys whose values are counted.

        Raises:
            InvalidDatasetQueryError: ``query.cursor`` is malformed.
        """
        base = build_filter(query)
        after = None if query.cursor is None else decode_cursor(query.cursor)
        documents = self._page(base, after, query.limit + 1)
        more = len(documents) > query.limit
        documents = documents[: query.limit]
        records = [_record(d) for d in documents]
        next_cursor = None
        if more and records:
            last = records[-1]
            next_cursor = encode_cursor(last.collected, last.uuid)
        total = int(self.db.command("count", self.collection.name, query=base)["n"])
        return DatasetPage(
            datasets=records,
            total=total,
            next_cursor=next_cursor,
            facets=self._facets(base, facet_attributes) if facets else None,
        )

    def _find(self, selector: dict[str, Any], limit: int) -> list[Document]:
        if limit <= 0:
            return []
        return list(self.collection.find(selector).sort(_SORT).limit(limit))

    def _page(
        self, base: dict[str, Any], after: tuple[datetime | None, str] | None, limit: int
    ) -> list[Document]:
        if after is None:
            return self._find(base, limit)
        collected, uuid = after
        if collected is None:
            # Past every dated dataset: the undated ones with a smaller id.
            return self._find(_and(base, {"collected": {"$eq": None}, "_id": {"$lt": uuid}}), limit)
        found = self._find(
            _and(base, {"collected": {"$eq": collected}, "_id": {"$lt": uuid}}), limit
        )
        found += self._find(_and(base, {"collected": {"$lt": collected}}), limit - len(found))
        found += self._find(_and(base, {"collected": {"$eq": None}}), limit - len(found))
        return found

    def _facets(self, base: dict[str, Any], keys: Sequence[str]) -> DatasetFacets:
        match = [{"$match": base}] if base else []
        tags: Counter[str] = Counter()
        for row in self.collection.aggregate(
            [*match, {"$unwind": "$tags"}, {"$group": {"_id": "$tags", "count": {"$sum": 1}}}]
        ):
            if isinstance(row["_id"], str):
                tags[row["_id"]] += int(row["count"])
        wanted = list(dict.fromkeys([_SET_UP, *keys]))
        values: dict[str, Counter[str]] = {key: Counter() for key in wanted}
        # Attribute keys hold dots, so values are reached as {k, v} pairs, never by path.
        pipeline: list[dict[str, Any]] = [
            *match,
            {"$project": {"kv": {"$objectToArray": "$attributes"}}},
            {"$unwind": "$kv"},
            {"$match": {"kv.k": {"$in": wanted}}},
            {
                "$group": {
                    "_id": {"$concat": ["$kv.k", ATTRIBUTE_SEPARATOR, "$kv.v"]},
                    "n": {"$sum": 1},
                }
            },
        ]
        for row in self.collection.aggregate(pipeline):
            pair = row["_id"]
            if not isinstance(pair, str) or ATTRIBUTE_SEPARATOR not in pair:
                continue
            key, value = pair.split(ATTRIBUTE_SEPARATOR, 1)
            if key in values:
                values[key][value] += int(row["n"])
        return DatasetFacets(
            tags=_facet_counts(tags),
            set_ups=_facet_counts(values[_SET_UP]),
            attributes={key: _facet_counts(values[key]) for key in wanted if key != _SET_UP},
        )

    # --- one dataset ----------------------------------------------------------------------

    def get(self, uuid: str) -> DatasetRecord:
        """Return the dataset ``uuid``.

        Raises:
            DatasetNotFoundError: No dataset has this id.
        """
        record = self.repository.get(uuid)
        if record is None:
            raise DatasetNotFoundError(f"uuid {uuid!r}")
        return record

    def get_by_alt_uid(self, scope: str, alt_uid: str) -> DatasetRecord:
        """Return the dataset of ``alt_uid`` (a QCoDeS guid) in ``scope``.

        Raises:
            DatasetNotFoundError: No dataset has this ``alt_uid`` in the scope.
        """
        document = self.collection.find_one({"scope": {"$eq": scope}, "alt_uid": {"$eq": alt_uid}})
        if document is None:
            raise DatasetNotFoundError(f"alt_uid {alt_uid!r} in scope {scope!r}")
        return _record(document)

    def file(self, uuid: str, version: int | None = None) -> DatasetFile:
        """Return the dataset's latest file version (or ``version``) and where it is.

        Raises:
            DatasetNotFoundError: No dataset has this id.
            FileVersionNotFoundError: The record lists no such version (or no file).
        """
        record = self.get(uuid)
        listed = [f.version for f in record.files]
        if not record.files:
            raise FileVersionNotFoundError(uuid, version, listed)
        if version is None:
            chosen = max(record.files, key=lambda f: f.version)
        else:
            matching = [f for f in record.files if f.version == version]
            if not matching:
                raise FileVersionNotFoundError(uuid, version, listed)
            chosen = matching[0]
        return DatasetFile(record=record, file=chosen, path=_location(chosen.location))

    def open_bytes(self, dataset_file: DatasetFile) -> IO[bytes]:
        """Open the file for reading (the caller closes it).

        Raises:
            DatasetFileMissingError: The file is not where the record says.
        """
        try:
            if isinstance(dataset_file.path, Path):
                return open(dataset_file.path, "rb")
            opened: IO[bytes] = fsspec.open(dataset_file.path, "rb", **self.storage_options).open()
            return opened
        except (OSError, ValueError) as e:
            raise DatasetFileMissingError(
                dataset_file.record.uuid,
                dataset_file.file.version,
                dataset_file.file.location,
                str(e) or type(e).__name__,
            ) from e

    def iter_bytes(self, dataset_file: DatasetFile, chunk: int = CHUNK_BYTES) -> Iterator[bytes]:
        """Yield the file's bytes in chunks of ``chunk`` bytes (never all at once).

        Raises:
            DatasetFileMissingError: The file is not where the record says (raised on the
                first ``next``; call :meth:`open_bytes` first to fail before streaming).
        """
        with self.open_bytes(dataset_file) as handle:
            while block := handle.read(chunk):
                yield block

    def open_dataset(self, uuid: str, version: int | None = None) -> xr.Dataset | xr.DataTree:
        """Open the dataset's file (latest or ``version``) as the data that was synced.

        A run whose dependents do not merge was written as one group per dependent: it
        opens as an :class:`xarray.DataTree` of those groups, the others as an
        :class:`xarray.Dataset`. The data are loaded into memory.

        Raises:
            DatasetNotFoundError: No dataset has this id.
            FileVersionNotFoundError: No such file version.
            DatasetFileMissingError: The file is not where the record says.
        """
        dataset_file = self.file(uuid, version)
        if isinstance(dataset_file.path, Path):
            if not dataset_file.path.is_file():
                raise DatasetFileMissingError(
                    uuid, dataset_file.file.version, dataset_file.file.location, "no such file"
                )
            return _read(dataset_file.path)
        with tempfile.TemporaryDirectory(prefix="qops-open-") as tmp:
            local = Path(tmp) / dataset_file.file.name
            with self.open_bytes(dataset_file) as source, open(local, "wb") as target:
                shutil.copyfileobj(source, target, CHUNK_BYTES)
            return _read(local)


def _read(path: Path) -> xr.Dataset | xr.DataTree:
    """Read a file written by :func:`qops.export.hdf5.write_hdf5` (a dataset or groups)."""
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        grouped = bool(tree.children) and not tree.to_dataset().data_vars
    if not grouped:
        return read_hdf5(path)
    attrs, groups = read_hdf5_groups(path)
    return xr.DataTree.from_dict(
        {"/": xr.Dataset(attrs=attrs), **{f"/{name}": group for name, group in groups.items()}}
    )
