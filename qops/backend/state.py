"""The state a 2300 backend publishes, set by other processes through a shared store.

Who sets what:

- an operator: OFFLINE on or off (``qops backend set-state offline|online``), until changed;
- a calibration flow: CALIBRATING for its chip while it runs, as a *lease* that it renews in
  the background and releases when done; if the flow's process dies, the lease simply
  expires, so a crashed calibration never leaves the chip CALIBRATING for ever.

The server resolves the published state from the store: the first that applies of OFFLINE,
CALIBRATING, EXECUTING, IDLE (:func:`resolve_state`).

A calibration flow marks its chip like this::

    from qops.mongo import database
    from qops.backend.state import MongoBackendStateStore, calibrating

    with calibrating(MongoBackendStateStore(database(settings)), "chip-a", holder=run_id):
        ...  # the calibration
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from qops.backend.errors import ChipBusyError, StateStoreError
from qops.mongo import Document
from qops.protocol.messages import BackendState
from qops.timeutil import as_utc, utc_now

logger = logging.getLogger(__name__)

LeaseState = Literal[BackendState.CALIBRATING, BackendState.EXECUTING]

DEFAULT_LEASE_S = 30.0
"""How long a lease lasts without renewal; the holder renews every third of it."""


@dataclass(frozen=True)
class StateMarks:
    """Everything the store says about one chip at one moment."""

    offline: bool
    leases: tuple[BackendState, ...]
    reason: str = ""
    """The operator's reason for OFFLINE (empty if none was given, or not offline)."""


def resolve_state(marks: StateMarks) -> BackendState:
    """Return the state to publish: the first that applies of OFFLINE, CALIBRATING,
    EXECUTING, IDLE."""
    if marks.offline:
        return BackendState.OFFLINE
    for state in (BackendState.CALIBRATING, BackendState.EXECUTING):
        if state in marks.leases:
            return state
    return BackendState.IDLE


class BackendStateStore(Protocol):
    """Shared marks from which a backend's state is resolved."""

    def marks(self, chip_id: str) -> StateMarks:
        """Return the current marks of ``chip_id`` (expired leases are ignored).

        Raises:
            StateStoreError: The store cannot be read.
        """
        ...

    def set_offline(self, chip_id: str, offline: bool, reason: str = "") -> None:
        """Set or clear the operator's OFFLINE mark of ``chip_id``."""
        ...

    def acquire(
        self,
        chip_id: str,
        state: LeaseState,
        holder: str,
        lease_s: float,
        exclusive: bool = False,
    ) -> str:
        """Mark ``chip_id`` with ``state`` for ``lease_s`` seconds; return the lease id.

        With ``exclusive``, at most one unexpired lease of ``state`` exists per chip.

        Raises:
            ChipBusyError: ``exclusive`` and another holder has the lease.
        """
        ...

    def renew(self, chip_id: str, lease_id: str, lease_s: float) -> bool:
        """Extend a lease to ``lease_s`` seconds from now; ``False`` if it no longer exists."""
        ...

    def release(self, chip_id: str, lease_id: str) -> None:
        """Remove a lease (no-op if it is gone)."""
        ...


class MongoBackendStateStore:
    """The state marks in the MongoDB collection ``backend_state``.

    Documents: ``{_id: "manual:<chip>", chip_id, kind: "manual", offline, reason,
    updated_at}`` and ``{_id: "lease:<chip>:<lease id>", chip_id, kind: "lease", state,
    holder, acquired_at, expires_at}``.

    Args:
        db: The qops database.
    """

    COLLECTION = "backend_state"

    def __init__(self, db: Database[Document]) -> None:
        self._collection: Collection[Document] = db[self.COLLECTION]
        self._indexed = False

    def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        # Serves marks(): find({"chip_id": ...}) at every state poll of the server.
        self._collection.create_index([("chip_id", ASCENDING)])
        # Not for a query: MongoDB's TTL monitor deletes the leases of holders that died
        # (about once a minute); marks() already ignores them once expired.
        self._collection.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)
        self._indexed = True

    def marks(self, chip_id: str) -> StateMarks:
        """Return the current marks of ``chip_id``; expired leases are ignored."""
        now = utc_now()
        try:
            self._ensure_indexes()
            documents = list(self._collection.find({"chip_id": chip_id}))
        except PyMongoError as e:
            raise StateStoreError(chip_id, f"cannot read {self.COLLECTION}: {e}") from e
        return _marks_of(documents, now)

    def set_offline(self, chip_id: str, offline: bool, reason: str = "") -> None:
        """Set or clear the operator's OFFLINE mark (idempotent)."""
        try:
            self._ensure_indexes()
            self._collection.replace_one(
                {"_id": f"manual:{chip_id}"},
                {
                    "chip_id": chip_id,
                    "kind": "manual",
                    "offline": offline,
                    "reason": reason,
                    "updated_at": utc_now(),
                },
                upsert=True,
            )
        except PyMongoError as e:
            raise StateStoreError(chip_id, f"cannot write {self.COLLECTION}: {e}") from e

    def acquire(
        self,
        chip_id: str,
        state: LeaseState,
        holder: str,
        lease_s: float,
        exclusive: bool = False,
    ) -> str:
        """Insert a lease document; return its id.

        An exclusive lease has the fixed id ``exclusive-<state>``, so the unique ``_id``
        lets only one holder insert it; an expired one is taken over.

        Raises:
            ChipBusyError: ``exclusive`` and another holder's lease has not expired.
            StateStoreError: The store cannot be written.
        """
        name = BackendState(state).value.lower()
        lease_id = f"exclusive-{name}" if exclusive else uuid.uuid4().hex
        key = f"lease:{chip_id}:{lease_id}"
        now = utc_now()
        document = {
            "_id": key,
            "chip_id": chip_id,
            "kind": "lease",
            "state": BackendState(state).value,
            "holder": holder,
            "acquired_at": now,
            "expires_at": now + timedelta(seconds=lease_s),
        }
        try:
            self._ensure_indexes()
            try:
                self._collection.insert_one(document)
            except DuplicateKeyError:
                current = self._collection.find_one({"_id": key})
                if current is not None and as_utc(current["expires_at"]) > now:
                    raise ChipBusyError(
                        chip_id,
                        BackendState(state).value,
                        str(current.get("holder")),
                        as_utc(current["acquired_at"]),
                    ) from None
                # The holder died: take its expired lease over (only if nobody else did).
                replaced = self._collection.replace_one(
                    {"_id": key, "holder": (current or {}).get("holder")}, document
                )
                if replaced.matched_count != 1:
                    raise ChipBusyError(
                        chip_id, BackendState(state).value, "another process", now
                    ) from None
        except PyMongoError as e:
            raise StateStoreError(chip_id, f"cannot write {self.COLLECTION}: {e}") from e
        return lease_id

    def renew(self, chip_id: str, lease_id: str, lease_s: float) -> bool:
        """Move the lease's expiry to ``lease_s`` seconds from now."""
        key = {"_id": f"lease:{chip_id}:{lease_id}"}
        try:
            document = self._collection.find_one(key)
            if document is None:
                return False
            document["expires_at"] = utc_now() + timedelta(seconds=lease_s)
            # Whole-document replacement: the embedded server stores a $set datetime of an
            # existing document as text (see docs/mongodb.md).
            result = self._collection.replace_one(key, document)
        except PyMongoError as e:
            raise StateStoreError(chip_id, f"cannot renew lease {lease_id}: {e}") from e
        return result.matched_count == 1

    def release(self, chip_id: str, lease_id: str) -> None:
        """Delete the lease document."""
        try:
            self._collection.delete_one({"_id": f"lease:{chip_id}:{lease_id}"})
        except PyMongoError as e:
            raise StateStoreError(chip_id, f"cannot release lease {lease_id}: {e}") from e

    def purge_expired(self, chip_id: str) -> int:
        """Delete the expired leases of ``chip_id``; return how many were deleted."""
        now = utc_now()
        try:
            documents = self._collection.find({"chip_id": chip_id, "kind": "lease"})
            stale = [d["_id"] for d in documents if as_utc(d["expires_at"]) <= now]
            if stale:
                self._collection.delete_many({"_id": {"$in": stale}})
        except PyMongoError as e:
            raise StateStoreError(chip_id, f"cannot purge leases: {e}") from e
        return len(stale)


def _marks_of(documents: Iterable[Document], now: datetime) -> StateMarks:
    offline = False
    reason = ""
    leases: list[BackendState] = []
    for document in documents:
        if document.get("kind") == "manual":
            offline = bool(document.get("offline"))
            reason = str(document.get("reason") or "") if offline else ""
        elif document.get("kind") == "lease":
            expires_at = document.get("expires_at")
            if isinstance(expires_at, datetime) and as_utc(expires_at) > now:
                with contextlib.suppress(ValueError):
                    leases.append(BackendState(str(document.get("state"))))
    return StateMarks(offline=offline, leases=tuple(leases), reason=reason)


class StateLease:
    """A held lease that renews itself from a background thread until released.

    Use :func:`calibrating` or :func:`holding_state` rather than building one directly.
    """

    def __init__(
        self, store: BackendStateStore, chip_id: str, lease_id: str, lease_s: float
    ) -> None:
        self.store = store
        self.chip_id = chip_id
        self.lease_id = lease_id
        self.lease_s = lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"qops-lease-{chip_id}", daemon=True
        )
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                if not self.store.renew(self.chip_id, self.lease_id, self.lease_s):
                    logger.warning("lease %s of chip %s vanished", self.lease_id, self.chip_id)
                    return
            except StateStoreError as e:
                # Keep trying: the lease stays valid until it expires.
                logger.warning("lease renewal failed: %s", e)

    def release(self) -> None:
        """Stop renewing and remove the lease."""
        self._stop.set()
        self._thread.join()
        self.store.release(self.chip_id, self.lease_id)


@contextlib.contextmanager
def holding_state(
    store: BackendStateStore,
    chip_id: str,
    state: LeaseState,
    holder: str,
    lease_s: float = DEFAULT_LEASE_S,
    exclusive: bool = False,
    wait_s: float = 0.0,
) -> Iterator[StateLease]:
    """Hold ``state`` for ``chip_id`` while the ``with`` block runs.

    The lease is renewed every ``lease_s / 3`` seconds and released on exit, also when the
    block raises. If the process dies, the lease expires ``lease_s`` seconds later.

    Args:
        store: The shared state store.
        chip_id: The chip.
        state: The state to hold.
        holder: Who holds it, for the record.
        lease_s: Seconds the mark survives its holder's death.
        exclusive: Allow only one holder of ``state`` for the chip at a time.
        wait_s: With ``exclusive``, how long to wait for the other holder to finish.

    Raises:
        ChipBusyError: ``exclusive`` and another holder kept the lease for ``wait_s``.
        StateStoreError: The lease cannot be taken.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lease_id = store.acquire(chip_id, state, holder, lease_s, exclusive=exclusive)
            break
        except ChipBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    lease = StateLease(store, chip_id, lease_id, lease_s)
    logger.info("chip %s marked %s by %s (lease %s)", chip_id, state, holder, lease.lease_id)
    try:
        yield lease
    finally:
        lease.release()
        logger.info("chip %s no longer marked %s by %s", chip_id, state, holder)


def calibrating(
    store: BackendStateStore,
    chip_id: str,
    holder: str,
    lease_s: float = DEFAULT_LEASE_S,
    exclusive: bool = False,
    wait_s: float = 0.0,
) -> contextlib.AbstractContextManager[StateLease]:
    """Mark ``chip_id`` CALIBRATING while the ``with`` block runs (see :func:`holding_state`).

    Args:
        store: The shared state store, e.g. ``MongoBackendStateStore(db)``.
        chip_id: The chip being calibrated.
        holder: Who calibrates, for the record (e.g. the flow run id).
        lease_s: Seconds the mark survives its holder's death.
        exclusive: Refuse (:class:`ChipBusyError`) while another holder calibrates the chip.
        wait_s: With ``exclusive``, how long to wait for the other calibration to end.
    """
    return holding_state(
        store, chip_id, BackendState.CALIBRATING, holder, lease_s, exclusive, wait_s
    )
