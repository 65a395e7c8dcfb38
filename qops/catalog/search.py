"""The catalog's read side: search datasets, get one, read its HDF5 file.

:class:`CatalogQueryService` answers a :class:`DatasetQuery` with a :class:`DatasetPage`:
the datasets newest first (``collected`` descending, then ``_id`` descending; datasets
without a ``collected`` time come last), the ``total`` of the whole query and facet counts
(tags, set-ups, chosen attributes' values) of the same query.

Paging is by key, not by offset: the cursor holds the last ``(collected, _id)`` returned,
and the next page asks for what sorts after it. A dataset synced while someone pages
either sorts before the cursor (it is not shown on later pages) or after it (it is), so
no result shifts or repeats.

The order, the cursor's comparisons and the ``collected_after`` / ``collected_before``
window are on ``collected_us``, the exact integer key the repository stores beside
``collected`` (epoch microseconds of the stored datetime, ``None`` when undated; see
:func:`~qops.catalog.repository.collected_key`), never on the datetime itself: the
embedded server compares datetimes at whole seconds, so ``collected $eq t`` would match
every dataset of that second and ``collected $lt t`` none of them, and a cursor inside a
second would repeat or skip its neighbours. Integers compare exactly on both servers.

Every filter is plain MongoDB, served the same way by a MongoDB server and by the
embedded server (``docs/mongodb.md`` lists where the embedded one deviates and how the
queries here avoid it):

- The set-up is matched on ``set_up``, a copy of the ``set-up`` attribute the repository
  stores as a top-level scalar (indexable together with ``collected``).
- Other attributes are matched on ``attribute_pairs``, the ``key<US>value`` strings
  :class:`~qops.catalog.repository.DatasetRepository` stores beside ``attributes``
  (``<US>`` = the ASCII unit separator): attribute keys contain dots
  (``instrument.parameter``), which a query path cannot address.
- The page after a cursor is read with up to three finds (same time and smaller id, then
  earlier times, then no time), never an ``$or`` over the sort keys, so each is one index
  range on both servers.
- A query matching up to :data:`FACET_SCAN_LIMIT` datasets is answered from one find of
  their sort keys (and tags and attributes): the total, the facets and the page's ids, whose
  documents are then fetched by ``_id``. Past it, the page is read with its own finds, the
  total is the ``count`` command (the embedded server's ``$count`` stage miscounts date
  filters) and facets are grouped on the server.
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from qops.catalog.repository import (
    ATTRIBUTE_SEPARATOR,
    COLLECTED_KEY,
    DatasetRepository,
    attribute_pairs,
)
from qops.export.hdf5 import read_hdf5, read_hdf5_groups
from qops.mongo import Document
from qops.timeutil import as_utc, epoch_microseconds

logger = logging.getLogger(__name__)

DEFAULT_FACET_ATTRIBUTES: tuple[str, ...] = ("sample", "qubit")
"""Attributes whose values are counted by default (besides tags and ``set-up``)."""

FACET_SIZE = 50
"""At most this many values per facet, the most frequent first."""

FACET_SCAN_LIMIT = 5_000
"""Up to this many matches, one find of every match's sort keys (and tags and attributes)
gives the total, the facets and the page's ids; past it, the page is its own find and the
server counts (``count`` command, aggregates)."""

CHUNK_BYTES = 1 << 20
"""Bytes per read when a file is streamed."""

_SET_UP = "set-up"
_SORT = [(COLLECTED_KEY, DESCENDING), ("_id", DESCENDING)]


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
    # One plain equality per tag and per pair ("the array holds it"), joined by $and, rather
    # than $all: the same match on MongoDB, and the embedded server evaluates $all in Python
    # but an array equality in SQL (about 25x faster, bench/catalog_search.py).
    for tag in dict.fromkeys(query.tags):
        conditions.append({"tags": tag})
    attributes = {k: v for k, v in query.attributes.items() if k != _SET_UP}
    set_ups = {query.attributes.get(_SET_UP), query.set_up} - {None}
    for set_up in sorted(s for s in set_ups if s is not None):
        # set_up is the set-up attribute stored as a top-level scalar: an indexed equality on
        # both servers (two different set-ups asked for: both must hold, nothing matches).
        conditions.append({"set_up": {"$eq": set_up}})
    for pair in attribute_pairs(attributes):
        conditions.append({"attribute_pairs": pair})
    if query.min_ranking is not None:
        conditions.append({"ranking": {"$gte": query.min_ranking}})
    if query.collected_after is not None or query.collected_before is not None:
        # On the exact integer key, not on the datetime: the embedded server compares
        # datetimes at whole seconds. Bounds keep their microseconds.
        window: dict[str, int] = {}
        if query.collected_after is not None:
            window["$gte"] = epoch_microseconds(query.collected_after)
        if query.collected_before is not None:
            window["$lt"] = epoch_microseconds(query.collected_before)
        conditions.append({COLLECTED_KEY: window})
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


def _facet_keys(keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([_SET_UP, *keys]))


def _facets_of(tags: Counter[str], values: dict[str, Counter[str]]) -> DatasetFacets:
    return DatasetFacets(
        tags=_facet_counts(tags),
        set_ups=_facet_counts(values[_SET_UP]),
        attributes={key: _facet_counts(counts) for key, counts in values.items() if key != _SET_UP},
    )


def _count_facets(
    datasets: Iterable[tuple[Sequence[str], Mapping[str, str]]], keys: Sequence[str]
) -> DatasetFacets:
    """Facets counted here from each dataset's tags and attributes."""
    tags: Counter[str] = Counter()
    values: dict[str, Counter[str]] = {key: Counter() for key in _facet_keys(keys)}
    for dataset_tags, attributes in datasets:
        tags.update(set(dataset_tags))
        for key, counts in values.items():
            if key in attributes:
                counts[str(attributes[key])] += 1
    return _facets_of(tags, values)


def _facet_counts(counter: Counter[str]) -> list[FacetCount]:
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [FacetCount(value=value, count=count) for value, count in ranked[:FACET_SIZE]]


def _sorts_after(document: Document, after: tuple[int | None, str]) -> bool:
    """Whether ``document`` comes after the cursor position (key, id) in the search order."""
    key, uuid = after
    value = document.get(COLLECTED_KEY)
    mine = None if value is None else int(value)
    if key is None:
        return mine is None and str(document["_id"]) < uuid
    if mine is None:
        return True
    return mine < key or (mine == key and str(document["_id"]) < uuid)


def _position(cursor: str) -> tuple[int | None, str]:
    """The cursor's ``(collected_us, uuid)``: its time as the exact integer key."""
    collected, uuid = decode_cursor(cursor)
    return (None if collected is None else epoch_microseconds(collected)), uuid


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
        facet_scan_limit: Up to this many matches, a query is answered from one scan (see
            :data:`FACET_SCAN_LIMIT`; 0: never).
    """

    def __init__(
        self,
        db: Database[Document],
        storage_options: dict[str, object] | None = None,
        facet_scan_limit: int = FACET_SCAN_LIMIT,
    ) -> None:
        self.facet_scan_limit = facet_scan_limit
        self.repository = DatasetRepository(db)
        self.collection: Collection[Document] = self.repository.collection
        self.db = db
        self.storage_options = dict(storage_options or {})

    def ensure_indexes(self) -> None:
        """Create the indexes the searches use (see the repository) and fill in old records."""
        self.repository.ensure_indexes()
        self.repository.backfill_search_fields()

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
        after = None if query.cursor is None else _position(query.cursor)
        scan = self._scan(base, facets)
        counted: DatasetFacets | None = None
        if scan is not None:
            # Every match is in the scan: the total, the facets and the page's ids come
            # from it, and only the page's documents are fetched, by id.
            total = len(scan)
            if facets:
                counted = _count_facets(
                    ((d.get("tags") or [], d.get("attributes") or {}) for d in scan),
                    facet_attributes,
                )
            following = scan if after is None else [d for d in scan if _sorts_after(d, after)]
            documents = self._by_ids([d["_id"] for d in following[: query.limit + 1]])
        else:
            documents = self._page(base, after, query.limit + 1)
            if facets:
                total, counted = self._server_facets(base, facet_attributes)
            else:
                total = self._count(base)
        more = len(documents) > query.limit
        records = [_record(d) for d in documents[: query.limit]]
        next_cursor = None
        if more and records:
            last = records[-1]
            next_cursor = encode_cursor(last.collected, last.uuid)
        return DatasetPage(datasets=records, total=total, next_cursor=next_cursor, facets=counted)

    def _scan(self, base: dict[str, Any], facets: bool) -> list[Document] | None:
        """Every match's sort keys (and facet fields) in order, or ``None`` past the limit.

        A query without filters is not scanned: it matches the whole collection.
        """
        if not base or self.facet_scan_limit <= 0:
            return None
        fields = {"_id": 1, COLLECTED_KEY: 1, **({"tags": 1, "attributes": 1} if facets else {})}
        limit = self.facet_scan_limit + 1
        scan = list(self.collection.find(base, fields).sort(_SORT).limit(limit).batch_size(limit))
        return scan if len(scan) <= self.facet_scan_limit else None

    def _by_ids(self, ids: list[str]) -> list[Document]:
        if not ids:
            return []
        # _id alone with $in: served from the primary key on both servers.
        found = {d["_id"]: d for d in self.collection.find({"_id": {"$in": ids}})}
        return [found[i] for i in ids if i in found]

    def _count(self, base: dict[str, Any]) -> int:
        return int(self.db.command("count", self.collection.name, query=base)["n"])

    def _find(self, selector: dict[str, Any], limit: int) -> list[Document]:
        if limit <= 0:
            return []
        # One batch: no getMore round trip.
        return list(self.collection.find(selector).sort(_SORT).limit(limit).batch_size(limit))

    def _page(
        self, base: dict[str, Any], after: tuple[int | None, str] | None, limit: int
    ) -> list[Document]:
        if after is None:
            return self._find(base, limit)
        key, uuid = after
        if key is None:
            # Past every dated dataset: the undated ones with a smaller id.
            return self._find(
                _and(base, {COLLECTED_KEY: {"$eq": None}, "_id": {"$lt": uuid}}), limit
            )
        found = self._find(_and(base, {COLLECTED_KEY: {"$eq": key}, "_id": {"$lt": uuid}}), limit)
        found += self._find(_and(base, {COLLECTED_KEY: {"$lt": key}}), limit - len(found))
        found += self._find(_and(base, {COLLECTED_KEY: {"$eq": None}}), limit - len(found))
        return found

    def _server_facets(
        self, base: dict[str, Any], keys: Sequence[str]
    ) -> tuple[int, DatasetFacets]:
        """The total (``count`` command) and the facets (two aggregates) of ``base``."""
        match = [{"$match": base}] if base else []
        tags: Counter[str] = Counter()
        for row in self.collection.aggregate(
            [*match, {"$unwind": "$tags"}, {"$group": {"_id": "$tags", "n": {"$sum": 1}}}]
        ):
            if isinstance(row["_id"], str):
                tags[row["_id"]] += int(row["n"])
        wanted = _facet_keys(keys)
        values: dict[str, Counter[str]] = {key: Counter() for key in wanted}
        # Grouped on the pairs, not on attributes.<key>: keys hold dots, which a path cannot
        # address, and $objectToArray is evaluated row by row on the embedded server.
        prefixes = "|".join(re.escape(key + ATTRIBUTE_SEPARATOR) for key in wanted)
        pipeline: list[dict[str, Any]] = [
            *match,
            {"$unwind": "$attribute_pairs"},
            {"$match": {"attribute_pairs": {"$regex": f"^(?:{prefixes})"}}},
            {"$group": {"_id": "$attribute_pairs", "n": {"$sum": 1}}},
        ]
        for row in self.collection.aggregate(pipeline):
            pair = row["_id"]
            if isinstance(pair, str) and ATTRIBUTE_SEPARATOR in pair:
                key, value = pair.split(ATTRIBUTE_SEPARATOR, 1)
                if key in values:
                    values[key][value] += int(row["n"])
        return self._count(base), _facets_of(tags, values)

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

    def datasets_of_run(self, alt_uid: str) -> list[DatasetRecord]:
        """Return the datasets of ``alt_uid`` (a QCoDeS guid) in every scope, by scope.

        A run synced by one source has one; the same run synced into several scopes has
        one per scope. Empty if the run is not in the catalog (one query).
        """
        found = self.collection.find({"alt_uid": {"$eq": alt_uid}})
        return sorted(map(_record, found), key=lambda record: record.scope)

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
