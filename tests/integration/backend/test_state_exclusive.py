"""Exclusive calibration leases: one calibration of a chip at a time."""

from __future__ import annotations

import threading

import pytest
from pymongo.database import Database

from qops.backend.errors import ChipBusyError
from qops.backend.state import MongoBackendStateStore, calibrating, resolve_state
from qops.mongo import Document
from qops.protocol.messages import BackendState


def test_exclusive_calibration_second_holder_refused_naming_first(
    mongo_db: Database[Document],
) -> None:
    store = MongoBackendStateStore(mongo_db)
    with calibrating(store, "chip-x", holder="run-1", exclusive=True):
        assert resolve_state(store.marks("chip-x")) is BackendState.CALIBRATING
        with (
            pytest.raises(ChipBusyError, match="run-1"),
            calibrating(store, "chip-x", holder="run-2", exclusive=True),
        ):
            pass
        # Another chip is independent.
        with calibrating(store, "chip-y", holder="run-2", exclusive=True):
            pass
    assert resolve_state(store.marks("chip-x")) is BackendState.IDLE
    with calibrating(store, "chip-x", holder="run-2", exclusive=True):
        pass


def test_exclusive_calibration_waits_for_first_to_finish(mongo_db: Database[Document]) -> None:
    store = MongoBackendStateStore(mongo_db)
    order: list[str] = []
    first_holds = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with calibrating(store, "chip-x", holder="run-1", exclusive=True):
            order.append("first in")
            first_holds.set()
            release_first.wait(10)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    assert first_holds.wait(10)
    threading.Timer(0.3, release_first.set).start()
    with calibrating(store, "chip-x", holder="run-2", exclusive=True, wait_s=10):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]


def test_exclusive_lease_of_dead_holder_is_taken_over_after_expiry(
    mongo_db: Database[Document],
) -> None:
    store = MongoBackendStateStore(mongo_db)
    store.acquire("chip-x", BackendState.CALIBRATING, "crashed-run", lease_s=0.2, exclusive=True)
    with pytest.raises(ChipBusyError):
        store.acquire("chip-x", BackendState.CALIBRATING, "run-2", lease_s=5, exclusive=True)
    with calibrating(store, "chip-x", holder="run-2", exclusive=True, wait_s=5):
        marks = store.marks("chip-x")
        assert marks.leases == (BackendState.CALIBRATING,)
