"""What the 2200 monitor keeps in MongoDB: every get_dynamic answer and every get_static.

Collections:

- ``dynamic_snapshots``: ``{_id, backend, received_at, payload}`` per get_dynamic answer
  (``payload_json`` instead of ``payload`` when a metric name is not a safe field name);
- ``backend_static``: ``{_id: "<name>@<starttime>", backend, starttime, received_at,
  static}`` per 2300 start.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Protocol

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


def _safe_field_names(payload: JsonObject) -> bool:
    return all("." not in key and not key.startswith("$") for key in payload)


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
        record_id = f"{static.name}@{static.starttime!r}"
        self._db[self.STATIC].update_one(
            {"_id": record_id},
            {
                "$set": {"static": static.model_dump(mode="json")},
                "$setOnInsert": {
                    "backend": static.name,
                    "starttime": static.starttime,
                    "received_at": utc_now(),
                },
            },
            upsert=True,
        )
        return record_id

    def record_dynamic(self, backend: str, payload: JsonObject) -> str:
        """Insert one get_dynamic answer with the time it was received."""
        self._ensure_indexes()
        received_at = utc_now()
        record_id = f"{backend}@{received_at.isoformat()}"
        document: Document = {"backend": backend, "received_at": received_at}
        if _safe_field_names(payload):
            document["payload"] = payload
        else:
            document["payload_json"] = json.dumps(payload)
        self._db[self.DYNAMIC].update_one({"_id": record_id}, {"$set": document}, upsert=True)
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
