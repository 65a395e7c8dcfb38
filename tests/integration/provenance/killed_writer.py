"""A writer that SIGKILLs itself at a chosen boundary between its MongoDB commands.

Run as a script by ``test_crash_safety.py``::

    python killed_writer.py <mongodb_url> <db> <outbox_path> <kill_at> <record_json>

It records ``record_json`` (an encoded :class:`TaskRecord`) through a
:class:`ProvenanceRecorder` on the real server. Every command the repository's four
collections send is counted; the process kills itself with ``SIGKILL`` just before command
number ``kill_at`` (0-based), or, if ``kill_at`` equals the number of commands, just after
the repository's last command (before the recorder forgets its journal entry). Otherwise it
finishes and prints the number of commands it sent.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from qops.config import MongoSettings
from qops.mongo import database
from qops.provenance.models import RecordResult, TaskRecord
from qops.provenance.outbox import Outbox, decode_record
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository

COMMANDS = (
    "aggregate",
    "bulk_write",
    "count_documents",
    "delete_many",
    "delete_one",
    "find",
    "find_one",
    "insert_many",
    "insert_one",
    "replace_one",
    "update_many",
    "update_one",
)


class Boundaries:
    """Counts commands and kills the process at the chosen boundary."""

    def __init__(self, kill_at: int) -> None:
        self.kill_at = kill_at
        self.sent = 0

    def before_command(self) -> None:
        if self.sent == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        self.sent += 1


class KillingCollection:
    """A real pymongo collection whose commands pass a boundary first."""

    def __init__(self, collection: Any, boundaries: Boundaries) -> None:
        self._collection = collection
        self._boundaries = boundaries

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if name not in COMMANDS:
            return attribute

        def command(*args: Any, **kwargs: Any) -> Any:
            self._boundaries.before_command()
            return attribute(*args, **kwargs)

        return command


def main() -> None:
    url, db_name, outbox_file, kill_at, payload = sys.argv[1:6]
    settings = MongoSettings(mongodb_url=SecretStr(url), mongodb_db=db_name)
    repository = MongoProvenanceRepository(database(settings))
    boundaries = Boundaries(int(kill_at))
    for attribute in ("versions", "relations", "activity_docs", "other_entities"):
        wrapped = KillingCollection(getattr(repository, attribute), boundaries)
        setattr(repository, attribute, wrapped)
    write = repository.record

    def record_then_maybe_die(record: TaskRecord) -> RecordResult:
        result = write(record)
        if boundaries.sent == boundaries.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    repository.record = record_then_maybe_die  # type: ignore[method-assign]
    recorder = ProvenanceRecorder(lambda: repository, Outbox(Path(outbox_file)))
    recorder.record(decode_record(payload))
    print(boundaries.sent)


if __name__ == "__main__":
    main()
