"""The recorder's write-ahead journal in the outbox file: live entries are left alone,
abandoned ones move to the outbox once (issue 12, finding 2)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qops.provenance.models import Measured
from qops.provenance.outbox import Outbox
from tests.integration.provenance.records import make_record


def test_journal_entry_of_a_live_writer_stays_and_done_forgets_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    flight = outbox.begin(make_record("e1", "t1", {"f": Measured(value=1.0)}))

    assert outbox.adopt_abandoned() == 0  # its lock is held (by this process)
    ((summary, _started, abandoned),) = outbox.in_flight()
    assert "e1" in summary
    assert not abandoned
    flight.done()

    assert outbox.in_flight() == []
    assert outbox.adopt_abandoned() == 0
    assert outbox.pending() == 0
    assert list((tmp_path / "outbox.sqlite.in-flight").iterdir()) == []


def test_released_journal_entry_is_adopted_into_the_outbox_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    record = make_record("e1", "t1", {"f": 1.0})
    outbox.begin(record).release()  # a write failed part-way in a live process

    assert [abandoned for _s, _t, abandoned in outbox.in_flight()] == [True]
    assert outbox.adopt_abandoned() == 1
    assert outbox.adopt_abandoned() == 0
    assert outbox.in_flight() == []
    assert [r.task_id for r in outbox.peek()] == ["t1"]
    # The same run journaled again and abandoned again is still kept once.
    outbox.begin(record).release()
    assert outbox.adopt_abandoned() == 1
    assert outbox.pending() == 1


def test_outboxes_opened_at_once_by_many_threads_all_work(tmp_path: Path) -> None:
    """Sync threads each open the data directory's outbox; the first opens create and
    upgrade its tables together without failing (a column added twice did)."""
    path = tmp_path / "outbox.sqlite"
    start = threading.Barrier(8)

    def journal(n: int) -> None:
        outbox = Outbox(path)
        start.wait()
        flight = outbox.begin(make_record("exec", f"t-{n}", {"t1": Measured(value=1e-5)}))
        flight.done()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(journal, range(8)))  # re-raises a thread's error
    assert Outbox(path).in_flight() == []
