"""Calibrating and executing exclude each other, also when both start at the same moment."""

from __future__ import annotations

import threading
import time

import pytest
from pymongo.database import Database

from qops.backend.errors import ChipBusyError, ChipInUseError
from qops.backend.locking import lock_chip
from qops.backend.state import LeaseState, MongoBackendStateStore
from qops.mongo import Document
from qops.protocol.messages import BackendState

CHIP = "chip-race"


def test_lock_chip_racing_calibration_and_session_never_both_hold(
    mongo_db: Database[Document],
) -> None:
    """As in production, the calibration waits and initialize does not: racing at the same
    moment they never both hold the chip, and the calibration gets it in every round (both
    may back off once; the waiting one then retries)."""
    store = MongoBackendStateStore(mongo_db)
    guard = threading.Lock()
    holders: list[str] = []
    overlaps: list[list[str]] = []
    wins = {BackendState.CALIBRATING: 0, BackendState.EXECUTING: 0}

    def take(state: LeaseState, start: threading.Barrier) -> None:
        start.wait()
        try:
            wait_s = 5.0 if state is BackendState.CALIBRATING else 0.0
            lease = lock_chip(
                store, CHIP, state, holder=f"racer {state}", lease_s=10, wait_s=wait_s
            )
        except (ChipInUseError, ChipBusyError):
            return
        with guard:
            holders.append(state)
            wins[state] += 1
            if len(holders) > 1:
                overlaps.append(list(holders))
        time.sleep(0.02)
        with guard:
            holders.remove(state)
        lease.release()

    for _ in range(20):
        start = threading.Barrier(2)
        racers = [
            threading.Thread(target=take, args=(state, start))
            for state in (BackendState.CALIBRATING, BackendState.EXECUTING)
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=30)
        assert store.marks(CHIP).leases == ()
    assert overlaps == []
    assert wins[BackendState.CALIBRATING] == 20


def test_lock_chip_refusal_leaves_no_lease_behind(mongo_db: Database[Document]) -> None:
    store = MongoBackendStateStore(mongo_db)
    lease = lock_chip(store, CHIP, BackendState.CALIBRATING, holder="flow-run-1")
    try:
        with pytest.raises(ChipInUseError, match="cannot be EXECUTING: it is CALIBRATING"):
            lock_chip(store, CHIP, BackendState.EXECUTING, holder="session-1")
        with pytest.raises(ChipInUseError, match="cannot be EXECUTING: it is CALIBRATING"):
            lock_chip(store, CHIP, BackendState.EXECUTING, holder="session-1", wait_s=0.6)
        assert store.marks(CHIP).leases == (BackendState.CALIBRATING,)
    finally:
        lease.release()
    assert store.marks(CHIP).leases == ()
