"""What the 2200 monitor keeps in MongoDB: every get_dynamic answer and every get_static.

Collections:

- ``dynamic_snapshots``: ``{_id, backend, received_at, payload}`` per get_dynamic answer;
- ``backend_static``: ``{_id: "<name>@<starttime>", backend, starttime, received_at,
  static}`` per 2300 start.

Any answer the protocol allows is stored, also what BSON cannot hold: a key with a NUL
character, ``.`` or a leading ``$``, an integer beyond int64, a string with a lone surrogate.
Such an answer is stored whole as its JSON text (``payload_json`` instead of ``payload``,
``static_json`` instead of ``static``), so nothing of it is lost, and the reason is logged.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Protocol

from bson.errors import InvalidDocument
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from qops.mongo import Document
from qops.protocol.messages import JsonObject, StaticInfo
from qops.timeutil import utc_now


class SnapshotSink(Protocol):
    """Where the monitor records what 2300 reported."""

    def record_static(self, static: StaticInfo) -> str:
        """Record a get_static answer; return its record id."""
        ...

    def record_dynamic(self, backend: str, payload: JsonObject) -> str:
        """Record a get_dynamic answer of ``backend``; return its record id."""
        ...


logger = logging.getLogger(__name__)

_UNSTORABLE = (InvalidDocument, OverflowError, UnicodeEncodeError)
"""What encoding a document as BSON raises for a value BSON cannot hold."""


def _safe_field_names(payload: JsonObject) -> bool:
    return all("." not in key and not key.startswith("$") for key in payload)


def _text(value: str) -> str:
    """``value`` as BSON can hold it: a lone surrogate becomes its backslash escape."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class MongoSnapshotRepository:
    """The monitor's records in MongoDB.

    Args:
        db: The qops database.
    """

    DYNAMIC = "dynamic_snapshots"
    STATIC = "backend_static"

    def __init__(self, db: Database[Document]) -> None:
        self._db = db
        self._indexed = False

    def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        # Serves latest_dynamic(): the newest answers of one backend.
        self._db[self.DYNAMIC].create_index([("backend", ASCENDING), ("received_at", DESCENDING)])
        # Serves the history of one backend's starts, newest first.
        self._db[self.STATIC].create_index([("backend", ASCENDING), ("starttime", DESCENDING)])
        self._indexed = True

    def record_static(self, static: StaticInfo) -> str:
        """Upsert the answer of one 2300 start (idempotent per name and starttime)."""
        self._ensure_indexes()
        name = _text(static.name)
        record_id = f"{name}@{static.starttime!r}"
        on_insert: Document = {
            "backend": name,
            "starttime": static.starttime,
            "received_at": utc_now(),
        }
        collection = self._db[self.STATIC]
        content = static.model_dump(mode="json")
        try:
            collection.update_one(
                {"_id": record_id},
                {"$set": {"static": content}, "$setOnInsert": on_insert},
                upsert=True,
            )
        except _UNSTORABLE as e:
            logger.warning("get_static of %s stored as JSON text: %s", name, e)
            collection.update_one(
                {"_id": record_id},
                {"$set": {"static_json": json.dumps(content)}, "$setOnInsert": on_insert},
                upsert=True,
            )
        return record_id

    def record_dynamic(self, backend: str, payload: JsonObject) -> str:
        """Insert one get_dynamic answer with the time it was received."""
        self._ensure_indexes()
        received_at = utc_now()
        backend = _text(backend)
        record_id = f"{backend}@{received_at.isoformat()}"
        document: Document = {"backend": backend, "received_at": received_at}
        collection = self._db[self.DYNAMIC]
        if _safe_field_names(payload):
            try:
                collection.update_one(
                    {"_id": record_id}, {"$set": {**document, "payload": payload}}, upsert=True
                )
            except _UNSTORABLE as e:
                logger.warning("get_dynamic of %s stored as JSON text: %s", backend, e)
            else:
                return record_id
        document["payload_json"] = json.dumps(payload)
        collection.update_one({"_id": record_id}, {"$set": document}, upsert=True)
        return record_id

    def latest_dynamic(self, backend: str, limit: int = 1) -> list[tuple[datetime, JsonObject]]:
        """Return the newest ``limit`` answers of ``backend``, newest first."""
        cursor = (
            self._db[self.DYNAMIC]
            .find({"backend": backend})
            .sort("received_at", DESCENDING)
            .limit(limit)
        )
        result: list[tuple[datetime, JsonObject]] = []
        for document in cursor:
            payload = document.get("payload")
            if payload is None:
                payload = json.loads(document["payload_json"])
            result.append((document["received_at"], payload))
        return result
