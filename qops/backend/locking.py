"""The two exclusive uses of a chip: calibrating it, and running 2200's circuits on it.

The protocol's ``initialize`` locks 2300 for execution until ``terminate``; a calibration
needs the chip alone as well. Each use is an exclusive lease in the shared state store
(:mod:`qops.backend.state`): CALIBRATING held by the calibration flow, EXECUTING held by the
2300 server for an initialized session. :func:`lock_chip` takes one only while the other is
absent: it checks, takes its own lease, then checks again, and gives its lease back if the
other appeared in between. Two takers racing therefore never both hold the chip (at worst
both back off and the waiting one retries).

Who waits: a calibration waits up to its ``wait_s`` for a session to terminate, then fails
with :class:`~qops.backend.errors.ChipInUseError`; ``initialize`` never waits (the 2300
server answers every request at once) and gets a failure reply naming the calibration.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from qops.backend.errors import ChipBusyError, ChipInUseError
from qops.backend.state import (
    DEFAULT_LEASE_S,
    BackendStateStore,
    LeaseState,
    StateLease,
)
from qops.protocol.messages import BackendState

logger = logging.getLogger(__name__)

RETRY_S = 0.5
"""How often a waiting taker looks again."""


def _other(state: LeaseState) -> BackendState:
    return BackendState.EXECUTING if state is BackendState.CALIBRATING else BackendState.CALIBRATING


def lock_chip(
    store: BackendStateStore,
    chip_id: str,
    state: LeaseState,
    holder: str,
    lease_s: float = DEFAULT_LEASE_S,
    wait_s: float = 0.0,
    refuse_offline: bool = False,
) -> StateLease:
    """Take the chip's exclusive lease of ``state`` while it is not held in the other use.

    The lease renews itself until :meth:`StateLease.release`.

    Args:
        store: The shared state store.
        chip_id: The chip.
        state: ``CALIBRATING`` or ``EXECUTING``.
        holder: Who takes it, for the record (a flow run id, a session id).
        lease_s: Seconds the lease survives its holder's death.
        wait_s: How long to wait for the chip to become free (0: refuse at once).
        refuse_offline: Also refuse while an operator has set the chip OFFLINE.

    Raises:
        ChipInUseError: The chip is held in the other use (or OFFLINE) for ``wait_s``.
        ChipBusyError: Another holder has the lease of ``state`` itself for ``wait_s``.
        StateStoreError: The store cannot be read or written.
    """
    other = _other(state)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return _try_lock(store, chip_id, state, other, holder, lease_s, refuse_offline)
        except (ChipInUseError, ChipBusyError) as e:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            logger.info("waiting up to %.0f s for chip %s: %s", left, chip_id, e)
            time.sleep(min(RETRY_S, left))


def _try_lock(
    store: BackendStateStore,
    chip_id: str,
    state: LeaseState,
    other: BackendState,
    holder: str,
    lease_s: float,
    refuse_offline: bool,
) -> StateLease:
    _check_free(store, chip_id, state, other, refuse_offline)
    lease_id = store.acquire(chip_id, state, holder, lease_s, exclusive=True)
    try:
        _check_free(store, chip_id, state, other, refuse_offline)
    except BaseException:
        store.release(chip_id, lease_id)
        raise
    return StateLease(store, chip_id, lease_id, lease_s)


def _check_free(
    store: BackendStateStore,
    chip_id: str,
    state: LeaseState,
    other: BackendState,
    refuse_offline: bool,
) -> None:
    marks = store.marks(chip_id)
    if refuse_offline and marks.offline:
        raise ChipInUseError(chip_id, BackendState(state).value, BackendState.OFFLINE.value)
    if other in marks.leases:
        raise ChipInUseError(chip_id, BackendState(state).value, other.value)


@contextlib.contextmanager
def chip_locked(
    store: BackendStateStore,
    chip_id: str,
    state: LeaseState,
    holder: str,
    lease_s: float = DEFAULT_LEASE_S,
    wait_s: float = 0.0,
) -> Iterator[StateLease]:
    """Hold :func:`lock_chip`'s lease while the ``with`` block runs; released on exit."""
    lease = lock_chip(store, chip_id, state, holder, lease_s, wait_s)
    logger.info("chip %s locked %s by %s (lease %s)", chip_id, state, holder, lease.lease_id)
    try:
        yield lease
    finally:
        lease.release()
        logger.info("chip %s no longer %s by %s", chip_id, state, holder)
