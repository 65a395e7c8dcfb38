"""MongoDB repositories of the catalog: ``datasets``, ``sync_items``, ``sync_sources``.

Every write is idempotent: ids are deterministic (dataset uuid, ``source:run_id``, source
name) and writes are upserts, so a retried or repeated sync never duplicates a record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from qops.catalog.models import DatasetRecord, DiscoveryCursor, ItemState, SyncItem, SyncSource
from qops.mongo import Document
from qops.timeutil import as_utc, epoch_microseconds, utc_now

ATTRIBUTE_SEPARATOR = "\x1f"
"""Between key and value in ``attribute_pairs`` (the ASCII unit separator: not in lab text)."""


def attribute_pairs(attributes: Mapping[str, str]) -> list[str]:
    """The ``key<US>value`` strings stored as ``attribute_pairs`` for ``attributes``.

    Attribute keys hold dots (``instrument.parameter``), which a MongoDB query path reads as
    nesting; one array of pairs makes every attribute matchable and indexable alike.
    """
    return [f"{key}{ATTRIBUTE_SEPARATOR}{value}" for key, value in attributes.items()]


SET_UP_ATTRIBUTE = "set-up"
"""The attribute naming the set-up a run was measured on."""

COLLECTED_KEY = "collected_us"
"""The field holding :func:`collected_key` of ``collected`` (what the search sorts on)."""


def collected_key(collected: datetime | None) -> int | None:
    """The ``collected_us`` stored beside ``collected``: its exact integer sort key.

    Epoch microseconds (int64) of ``collected`` as MongoDB stores it (truncated to
    milliseconds, the precision of a BSON date), so the key orders and compares exactly
    like the datetime the record shows; ``None`` for an undated dataset. The search
    compares and sorts on this key rather than on ``collected``: the embedded server
    compares datetimes at whole seconds (``docs/mongodb.md``), integers exactly.
    """
    if collected is None:
        return None
    stored = collected.replace(microsecond=collected.microsecond // 1000 * 1000)
    return epoch_microseconds(stored)


def search_fields(attributes: Mapping[str, str], collected: datetime | None) -> Document:
    """The fields stored beside a record's ``attributes`` and ``collected`` for the search.

    ``attribute_pairs`` (see :func:`attribute_pairs`), ``set_up`` (the set-up attribute
    or ``None``, a top-level scalar so it can be indexed on every server) and
    ``collected_us`` (see :func:`collected_key`).
    """
    return {
        "attribute_pairs": attribute_pairs(attributes),
        "set_up": attributes.get(SET_UP_ATTRIBUTE),
        COLLECTED_KEY: collected_key(collected),
    }


def dataset_document(record: DatasetRecord) -> Document:
    """The ``datasets`` document of ``record``: ``_id`` = uuid, its fields, the search fields."""
    return {
        "_id": record.uuid,
        **record.model_dump(mode="python"),
        **search_fields(record.attributes, record.collected),
    }


def _item_id(source: str, run_id: int) -> str:
    return f"{source}:{run_id}"


def _search_inputs(document: Document) -> tuple[Mapping[str, str], datetime | None]:
    """A stored dataset's ``attributes`` and ``collected`` (aware UTC), as saved."""
    collected = document.get("collected")
    when = as_utc(collected) if isinstance(collected, datetime) else None
    return document.get("attributes") or {}, when


def _strip(document: Document) -> Document:
    document = dict(document)
    document.pop("_id", None)
    return document


class DatasetRepository:
    """The ``datasets`` collection: one document per run and scope."""

    def __init__(self, db: Database[Document]) -> None:
        self.collection: Collection[Document] = db["datasets"]

    def ensure_indexes(self) -> None:
        # Serves "the dataset of run <guid> in <scope>" and makes alt_uid unique per scope.
        self.collection.create_index([("scope", ASCENDING), ("alt_uid", ASCENDING)], unique=True)
        # Serves "the datasets of run <guid>, whatever the scope" (the console links a
        # calibration's raw measurement, known by its GUID alone, to its catalog page).
        self.collection.create_index([("alt_uid", ASCENDING)])
        # The catalog search (qops.catalog.search) sorts newest first on collected_us (the
        # exact integer key of collected, descending; see collected_key) and filters by
        # equality on tags, attribute pairs, set-up or source, then by a collected_us range
        # (equality, sort, range). Tags and attribute_pairs are both arrays, and MongoDB
        # refuses a compound index over two array fields, so each gets its own index
        # ending in collected_us; the planner picks the more selective one.
        # Serves "datasets of source S, newest first [collected in a window]".
        self.collection.create_index([("source", ASCENDING), (COLLECTED_KEY, DESCENDING)])
        # Serves "datasets tagged T, newest first [collected in a window]".
        self.collection.create_index([("tags", ASCENDING), (COLLECTED_KEY, DESCENDING)])
        # Serves "datasets with attribute k=v, newest first [in a window]".
        self.collection.create_index([("attribute_pairs", ASCENDING), (COLLECTED_KEY, DESCENDING)])
        # Serves "datasets of set-up S [in a window], newest first": set_up is the set-up
        # attribute copied to a top-level scalar (the embedded server cannot index the path
        # attributes.set-up: it derives an index name from it and refuses the "-").
        self.collection.create_index([("set_up", ASCENDING), (COLLECTED_KEY, DESCENDING)])
        # Serves "every dataset, newest first" (the unfiltered first page), "collected in a
        # window" and the cursor's "collected at t, id below u" / "collected before t". _id
        # is not in the key: the embedded server cannot index _id in a compound key, so
        # ties on collected_us are ordered by _id after the index.
        self.collection.create_index([(COLLECTED_KEY, DESCENDING)])

    def backfill_search_fields(self) -> int:
        """Write the search fields on records saved before they existed; return how many records.

        Two finds, not an ``$or``: records without ``attribute_pairs`` (saved before the
        search fields), and dated records without ``collected_us`` (saved before the sort
        key). Neither asks ``$exists: false`` of a field that may hold ``null`` (``set_up``,
        ``collected_us``): the embedded server answers it for a stored ``null`` too, and
        would rewrite those records every time.
        """
        fields = {"_id": 1, "attributes": 1, "collected": 1}
        missing: dict[str, Document] = {}
        for selector in (
            {"attribute_pairs": {"$exists": False}},
            {COLLECTED_KEY: {"$eq": None}, "collected": {"$ne": None}},
        ):
            for document in self.collection.find(selector, fields):
                missing[document["_id"]] = document
        operations = [
            UpdateOne({"_id": i}, {"$set": search_fields(*_search_inputs(d))})
            for i, d in missing.items()
        ]
        if operations:
            self.collection.bulk_write(operations, ordered=False)
        return len(operations)

    def get(self, uuid: str) -> DatasetRecord | None:
        """Return the dataset ``uuid``, or ``None``."""
        document = self.collection.find_one({"_id": uuid})
        return None if document is None else DatasetRecord.model_validate(_strip(document))

    def save(self, record: DatasetRecord) -> None:
        """Insert or replace the record (by its deterministic uuid)."""
        self.collection.replace_one({"_id": record.uuid}, dataset_document(record), upsert=True)


class SyncItemRepository:
    """The ``sync_items`` collection: sync state per run, ``_id`` = ``<source>:<run_id>``."""

    def __init__(self, db: Database[Document]) -> None:
        self.collection: Collection[Document] = db["sync_items"]

    def ensure_indexes(self) -> None:
        # Serves "items of a source that need work" (discovery) and status listings.
        self.collection.create_index([("source", ASCENDING), ("state", ASCENDING)])
        # Serves "the item of run <run_id> of <source>"; unique so a run is tracked once.
        self.collection.create_index([("source", ASCENDING), ("run_id", ASCENDING)], unique=True)

    def add_pending(self, source: str, runs: Iterable[tuple[int, str]]) -> int:
        """Track new runs as ``pending`` (runs already tracked are left as they are)."""
        now = utc_now()
        operations = [
            UpdateOne(
                {"_id": _item_id(source, run_id)},
                {
                    "$setOnInsert": SyncItem(
                        source=source,
                        run_id=run_id,
                        guid=guid,
                        state=ItemState.PENDING,
                        created_at=now,
                        updated_at=now,
                    ).model_dump(mode="python")
                },
                upsert=True,
            )
            for run_id, guid in runs
        ]
        if not operations:
            return 0
        return self.collection.bulk_write(operations, ordered=False).upserted_count

    def get(self, source: str, run_id: int) -> SyncItem | None:
        document = self.collection.find_one({"_id": _item_id(source, run_id)})
        return None if document is None else SyncItem.model_validate(_strip(document))

    def save(self, item: SyncItem) -> None:
        """Write the item's full state (upsert)."""
        document = item.model_dump(mode="python")
        self.collection.replace_one(
            {"_id": _item_id(item.source, item.run_id)},
            {"_id": _item_id(item.source, item.run_id), **document},
            upsert=True,
        )

    def fingerprints(self, source: str) -> dict[int, tuple[ItemState, str | None]]:
        """Return ``run_id -> (state, meta_fingerprint)`` of every tracked run of ``source``."""
        cursor = self.collection.find(
            {"source": source}, {"run_id": 1, "state": 1, "meta_fingerprint": 1}
        )
        return {
            int(d["run_id"]): (ItemState(d["state"]), d.get("meta_fingerprint")) for d in cursor
        }

    def abandoned(self, source: str) -> dict[int, int]:
        """Return ``run_id -> data_rows`` of the abandoned runs of ``source``."""
        cursor = self.collection.find(
            {"source": source, "state": ItemState.ABANDONED.value}, {"run_id": 1, "data_rows": 1}
        )
        return {int(d["run_id"]): int(d.get("data_rows") or 0) for d in cursor}

    def mark_pending(self, source: str, run_ids: Iterable[int]) -> None:
        """Send synced runs back to ``pending`` (their metadata changed)."""
        ids = [_item_id(source, r) for r in run_ids]
        if ids:
            self.collection.update_many(
                {"_id": {"$in": ids}},
                {"$set": {"state": ItemState.PENDING.value, "updated_at": utc_now()}},
            )

    def list(self, source: str | None = None) -> list[SyncItem]:
        """Return the items of ``source`` (or all), by source and run id."""
        query: dict[str, Any] = {} if source is None else {"source": source}
        cursor = self.collection.find(query).sort([("source", ASCENDING), ("run_id", ASCENDING)])
        return [SyncItem.model_validate(_strip(d)) for d in cursor]

    def delete_source(self, source: str) -> None:
        self.collection.delete_many({"source": source})


class SyncSourceRepository:
    """The ``sync_sources`` collection: registered sources and each one's discovery cursor."""

    def __init__(self, db: Database[Document]) -> None:
        self.collection: Collection[Document] = db["sync_sources"]

    def get(self, name: str) -> SyncSource | None:
        found = self.get_with_cursor(name)
        return None if found is None else found[0]

    def get_with_cursor(self, name: str) -> tuple[SyncSource, DiscoveryCursor, list[int]] | None:
        """Return the source, where its discovery stopped and its due runs, in one round trip.

        Due runs are those marked open (see :meth:`mark_open`) whose retry time has come.
        """
        found = self.get_for_discovery(name)
        return None if found is None else found[:3]

    def get_for_discovery(
        self, name: str
    ) -> tuple[SyncSource, DiscoveryCursor, list[int], dict[int, int] | None] | None:
        """Return :meth:`get_with_cursor`'s values and the abandoned runs' data markers.

        The abandoned runs (``run_id -> data marker synced``, see :meth:`mark_settled`) are
        the settled runs that may still grow: discovery compares their markers. ``None``
        when the source has never recorded them (written by an older version: see
        :meth:`seed_abandoned`).
        """
        document = self.collection.find_one({"_id": name})
        if document is None:
            return None
        fields = {k: document[k] for k in SyncSource.model_fields if k in document}
        cursor = document.get("cursor")
        now = utc_now().timestamp()
        open_runs: dict[str, float | None] = document.get("open_runs") or {}
        due = sorted(
            int(r) for r, retry_at in open_runs.items() if retry_at is None or retry_at <= now
        )
        abandoned: dict[str, int] | None = document.get("abandoned_runs")
        return (
            SyncSource.model_validate(fields),
            DiscoveryCursor.model_validate(cursor) if cursor else DiscoveryCursor(),
            due,
            None if abandoned is None else {int(r): int(rows) for r, rows in abandoned.items()},
        )

    def seed_abandoned(self, name: str, markers: dict[int, int]) -> None:
        """Record the abandoned runs' markers once, for a source that never recorded them."""
        self.collection.update_one(
            {"_id": name, "abandoned_runs": {"$exists": False}},
            {"$set": {"abandoned_runs": {str(r): rows for r, rows in markers.items()}}},
        )

    # The open-run markers let discovery find the runs that need work without querying
    # sync_items. A marker is set before its item becomes open (pending, live, failed) and
    # removed after it is closed (synced, abandoned), so a crash can leave a stale marker
    # (the run is checked once more) but never an open item without one. Retry times are
    # epoch seconds: see docs/mongodb.md for why not datetimes.

    def mark_open(
        self, name: str, run_ids: Iterable[int], retry_at: datetime | None = None
    ) -> None:
        """Mark runs as needing work, from ``retry_at`` on (``None``: now)."""
        value = None if retry_at is None else retry_at.timestamp()
        ids = list(run_ids)
        fields = {f"open_runs.{run_id}": value for run_id in ids}
        if fields:
            self.collection.update_one(
                {"_id": name},
                {"$set": fields, "$unset": {f"abandoned_runs.{run_id}": "" for run_id in ids}},
            )

    def mark_closed(self, name: str, run_id: int) -> None:
        """Remove the run's open marker."""
        self.mark_settled(name, run_id, abandoned_rows=None)

    def mark_settled(self, name: str, run_id: int, abandoned_rows: int | None) -> None:
        """Remove the run's open marker; remember an abandoned run's data marker.

        Args:
            name: The source.
            run_id: The run, now synced (``abandoned_rows=None``) or abandoned.
            abandoned_rows: The data marker an abandoned run was synced up to: discovery
                sends it back to work when its marker grows (the writer resumed).
        """
        update: dict[str, Any] = {"$unset": {f"open_runs.{run_id}": ""}}
        if abandoned_rows is None:
            update["$unset"][f"abandoned_runs.{run_id}"] = ""
        else:
            update["$set"] = {f"abandoned_runs.{run_id}": abandoned_rows}
        self.collection.update_one({"_id": name}, update)

    def save(self, source: SyncSource) -> None:
        """Insert or replace the source's definition, keeping its discovery cursor."""
        self.collection.update_one(
            {"_id": source.name}, {"$set": source.model_dump(mode="python")}, upsert=True
        )

    def list(self) -> list[SyncSource]:
        names = [d["_id"] for d in self.collection.find({}, {"_id": 1}).sort("_id", ASCENDING)]
        return [s for s in (self.get(n) for n in names) if s is not None]

    def delete(self, name: str) -> bool:
        return self.collection.delete_one({"_id": name}).deleted_count > 0

    def set_cursor(self, name: str, cursor: DiscoveryCursor) -> None:
        self.collection.update_one({"_id": name}, {"$set": {"cursor": cursor.model_dump()}})
