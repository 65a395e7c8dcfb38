"""The sync service: discovers runs of a source and syncs each one into the catalog.

It works on any backend (:mod:`qops.catalog.backends`): the source's backend is looked up
in the registry and the source is read only through the contract's reader.

Discovery is cheap: one query for runs above the source's watermark and one aggregate
fingerprint over every run's completion flag and metadata; only when that fingerprint
changed are runs compared one by one. Each run is then synced on its own
(:meth:`SyncService.sync_run`): its record is upserted, its HDF5 file is written only when
its data changed, and its state is kept in ``sync_items``. A run that fails is recorded
with its error and retried after a back-off; it never stops the others.

Order of writes for one run: file, then what the service's :class:`SyncObserver` records
of the new file (its provenance), then dataset record, then sync item. Killed at any point,
the run stays due and the next sync redoes the unfinished part under the same ids (the
file version keeps its number, so the observer is told the same file again).
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict
from pymongo.database import Database

from qops.catalog.backends import SourceReader, SourceRun, SyncBackend, get_backend
from qops.catalog.errors import SourceNotFoundError, SourceReadError
from qops.catalog.models import (
    DatasetRecord,
    DatasetStatus,
    DiscoveryCursor,
    FileVersion,
    ItemState,
    SyncItem,
    SyncSource,
    dataset_uuid,
)
from qops.catalog.repository import DatasetRepository, SyncItemRepository, SyncSourceRepository
from qops.catalog.settings import SyncSettings
from qops.console_links import dataset_url, markdown_link
from qops.export.hdf5 import ExportError, write_hdf5
from qops.export.store import FileStore
from qops.mongo import Document
from qops.timeutil import as_utc, utc_now

logger = logging.getLogger(__name__)

Action = Literal["new", "updated", "unchanged", "live", "abandoned", "failed"]


def _to_mongo_precision(value: datetime | None) -> datetime | None:
    """Truncate to milliseconds, the precision MongoDB stores, so re-reads compare equal."""
    return None if value is None else value.replace(microsecond=value.microsecond // 1000 * 1000)


LIVE_REWRITE_FACTOR = 3
"""Past its write allowance (``SyncSettings.live_write_allowance_bytes``), a live run's file
is rewritten when the new file would be this many times the bytes already written for it.

Live rewrites then form a geometric series: all of them add up to at most ``4/3`` of the
last live file, so a run's total bytes written are its final file plus at most that
(``<= 2.33x`` the final file, ``<= 2x`` unless the run completes right after a live
rewrite; see docs/sync.md). A run that settles (completes or is abandoned) or whose
metadata changed is written in full at once.
"""
_LEGACY_ROWS_GROWTH = 4
"""For a file written before sizes were recorded: rewrite when the rows quadrupled."""


def _file_name(guid: str, *, complete: bool) -> str:
    """The run's stable file name: ``<guid>.live.h5`` until it completes, then ``<guid>.h5``."""
    return f"{guid}.h5" if complete else f"{guid}.live.h5"


def _relative(source: SyncSource, guid: str, name: str) -> str:
    return f"datasets/{source.default_scope}/{guid}/{name}"


def _needs_file(
    latest: FileVersion | None,
    run: SourceRun,
    status: DatasetStatus,
    item_fingerprint: str | None,
    allowance: int,
) -> bool:
    """Whether the run's file must be (re)written now.

    Always when there is none, the run completed, or its metadata changed since the file
    was written (the file's attributes carry it); once settled (complete or abandoned),
    whenever it grew; while live, whenever it grew as long as the bytes written for the run
    stay within ``allowance`` (so a live run is fresh at every poll), past it only when the
    data grew by :data:`LIVE_REWRITE_FACTOR` (so a long run's writes stay bounded).
    """
    if latest is None or latest.complete != run.is_completed:
        return True
    written_with = latest.fingerprint if latest.fingerprint is not None else item_fingerprint
    if written_with != run.fingerprint:
        return True
    if latest.rows == run.rows:
        return False
    if status is not DatasetStatus.LIVE:
        return True
    if latest.rows == 0:
        return True
    if latest.payload == 0 or latest.written == 0:
        return run.rows >= _LEGACY_ROWS_GROWTH * latest.rows
    # The file's fixed part (attributes, snapshot, HDF5 structure) plus data that grows
    # with the rows.
    fixed = max(latest.size - latest.payload, 0)
    estimate = fixed + latest.payload * run.rows / latest.rows
    if latest.written + estimate <= allowance:
        return True
    return estimate >= LIVE_REWRITE_FACTOR * latest.written


class Discovery(BaseModel):
    """What discovery found for one source."""

    model_config = ConfigDict(frozen=True)

    source: str
    run_ids: list[int]
    """Runs that need work now, ascending."""
    new: int
    changed: int


class RunOutcome(BaseModel):
    """What syncing one run did."""

    model_config = ConfigDict(frozen=True)

    source: str
    run_id: int
    action: Action
    status: DatasetStatus | None = None
    file_version: int = 0
    dataset_uuid: str | None = None
    error: str | None = None


SUMMARY_ACTIONS: tuple[Action, ...] = ("new", "updated", "live", "abandoned", "failed")
"""The outcomes a sync's summary line counts, in its order."""


def summary_line(source: str, outcomes: Iterable[RunOutcome]) -> str:
    """What a sync did to a source's runs: ``lab: 2 new, 0 updated, 0 live, 0 abandoned, 0 failed``.

    The one form of the line that ``qops sync``, the ``sync-qcodes`` flow's log and its
    artifact show.
    """
    actions = [o.action for o in outcomes]
    return f"{source}: " + ", ".join(f"{actions.count(a)} {a}" for a in SUMMARY_ACTIONS)


def summary_rows(
    source: str,
    outcomes: Iterable[RunOutcome],
    error: str | None = None,
    console_url: str | None = None,
) -> list[dict[str, str | int]]:
    """The rows of a sync's table artifact for one source: one per run, one for ``error``.

    ``error`` is why the source could not be read at all (its discovery failed). The one
    form of the table that the ``sync-qcodes`` flow and ``qops sync`` publish. With the
    console's base URL (``QOPS_CONSOLE_URL``) a ``dataset`` column links each synced run's
    dataset to its console page; without one the table has no such column.
    """
    rows: list[dict[str, str | int]] = []
    if error:
        rows.append(
            {
                "source": source,
                "run_id": "",
                "action": "failed",
                "status": "",
                "file_version": "",
                "error": error,
            }
        )
    for o in outcomes:
        row: dict[str, str | int] = {
            "source": o.source,
            "run_id": o.run_id,
            "action": o.action,
            "status": o.status.value if o.status else "",
            "file_version": o.file_version,
            "error": o.error or "",
        }
        rows.append(row)
        if console_url and o.dataset_uuid:
            row["dataset"] = markdown_link(o.dataset_uuid, dataset_url(console_url, o.dataset_uuid))
    if console_url:
        for row in rows:
            row.setdefault("dataset", "")
    return rows


NOTHING_TO_DO_ROW: dict[str, str | int] = {
    "source": "",
    "run_id": "",
    "action": "nothing to do",
    "status": "",
    "file_version": "",
    "error": "",
}
"""The one row of a sync's table artifact when no source had a run to sync."""


def sources_failed_message(failed: Mapping[str, str]) -> str:
    """The message of a sync whose ``failed`` sources (name: why) could not be read.

    The one form that the ``sync-qcodes`` flow's failure and ``qops sync``'s recorded flow
    run give.
    """
    details = "; ".join(f"{name}: {error}" for name, error in failed.items())
    return f"sync of {len(failed)} source(s) failed ({', '.join(failed)}): {details}"


def summary_artifact_key(sources: list[str]) -> str:
    """The key of a sync's table artifact: ``sync-qcodes-<source>`` or ``...-all-sources``."""
    name = sources[0] if len(sources) == 1 else "all-sources"
    return "sync-qcodes-" + re.sub(r"[^a-z0-9-]", "-", name.lower())


class FileWritten(BaseModel):
    """A run's new data file version, written and not yet listed by its catalog record."""

    model_config = ConfigDict(frozen=True)

    source: str
    location: str | None
    """What the source reads (the QCoDeS database file), if its backend says."""
    run_id: int
    guid: str
    name: str
    dataset_uuid: str
    file: FileVersion
    previous: FileVersion | None
    """The file version it replaces; ``None`` for the run's first."""
    started_at: datetime
    ended_at: datetime


class SyncObserver(Protocol):
    """Told of every new file version before the catalog record lists it (provenance).

    Called again with the same file version if the sync is redone after a crash or a
    failure, so what it records must be idempotent; what it raises fails the run's sync
    (a ``PyMongoError`` is retried like the catalog's own writes).
    """

    def file_written(self, event: FileWritten) -> None:
        """Record ``event``."""


class SyncService:
    """Syncs sources of any installed backend into the catalog.

    Args:
        db: The qops database.
        store: Where HDF5 files go.
        settings: Retry, idle-timeout and lock settings.
        observer: Told of each new file version (the provenance of the sync); ``None``:
            nobody.
    """

    def __init__(
        self,
        db: Database[Document],
        store: FileStore,
        settings: SyncSettings,
        observer: SyncObserver | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.observer = observer
        self.datasets = DatasetRepository(db)
        self.items = SyncItemRepository(db)
        self.sources = SyncSourceRepository(db)

    def ensure_indexes(self) -> None:
        """Create the catalog's indexes (idempotent)."""
        self.datasets.ensure_indexes()
        self.items.ensure_indexes()

    def source(self, name: str) -> tuple[SyncSource, type[SyncBackend], BaseModel]:
        """Return the source, its backend and its validated config.

        Raises:
            SourceNotFoundError: No such source.
            UnknownBackendError: Its backend is not installed.
            InvalidSourceConfigError: Its config no longer validates.
        """
        source = self.sources.get(name)
        if source is None:
            raise SourceNotFoundError(name)
        backend, config = self._config(source)
        return source, backend, config

    @staticmethod
    def _config(source: SyncSource) -> tuple[type[SyncBackend], BaseModel]:
        backend = get_backend(source.backend)
        # A stored config is not re-checked against the source itself here: a locked or
        # missing database must fail the run (recorded, retried), not the lookup of its
        # source.
        return backend, backend.validate_config(source.name, source.config, stored=True)

    # -- discovery -------------------------------------------------------------------

    def discover(self, name: str) -> Discovery:
        """Track new runs and runs whose metadata changed; return the runs due for work.

        Raises:
            SourceReadError: The source cannot be read at all (the backend's subclass).
        """
        found = self.sources.get_for_discovery(name)
        if found is None:
            raise SourceNotFoundError(name)
        source, cursor, due, abandoned = found
        # Validated as stored: the source itself is checked again when the reader opens it.
        backend, config = self._config(source)
        stamp = backend.change_stamp(config)
        if stamp == cursor.file_stamp:
            # Untouched since the last discovery: nothing new, nothing changed.
            return Discovery(source=name, run_ids=due, new=0, changed=0)
        if abandoned is None:
            # Tracked by an older version: the abandoned runs are looked up once.
            abandoned = self.items.abandoned(name)
            self.sources.seed_abandoned(name, abandoned)
        with backend.open_reader(config, self.settings) as reader:
            new_runs = reader.runs_after(cursor.watermark)
            fingerprint = reader.metadata_fingerprint()
            per_run = reader.run_fingerprints() if fingerprint != cursor.fingerprint else {}
            # An abandoned run's writer may resume (or commit its last rows and crash): a
            # grown data marker sends it back to work. One cheap lookup per abandoned run.
            markers = reader.data_markers(sorted(abandoned)) if abandoned else {}
        resumed = [r for r, rows in sorted(abandoned.items()) if markers.get(r, rows) > rows]
        self.sources.mark_open(name, [run.run_id for run in new_runs])
        self.items.add_pending(name, [(run.run_id, run.guid) for run in new_runs])
        changed: list[int] = []
        if per_run:
            settled = (ItemState.SYNCED, ItemState.ABANDONED)
            changed = [
                run_id
                for run_id, (state, stored) in self.items.fingerprints(name).items()
                if state in settled and per_run.get(run_id, stored) != stored
            ]
        changed = sorted({*changed, *resumed})
        if changed:
            self.sources.mark_open(name, changed)
            self.items.mark_pending(name, changed)
        top = max([cursor.watermark, *(run.run_id for run in new_runs)])
        self.sources.set_cursor(
            name, DiscoveryCursor(watermark=top, fingerprint=fingerprint, file_stamp=stamp)
        )
        due = sorted({*due, *(run.run_id for run in new_runs), *changed})
        if new_runs or changed:
            logger.info(
                "source %s: %d new runs, %d changed, %d due",
                name,
                len(new_runs),
                len(changed),
                len(due),
            )
        return Discovery(source=name, run_ids=due, new=len(new_runs), changed=len(changed))

    # -- one run ---------------------------------------------------------------------

    def sync_run(self, name: str, run_id: int) -> RunOutcome:
        """Sync run ``run_id`` of source ``name``; a run-level failure is recorded, not raised.

        Raises:
            SourceNotFoundError: No such source.
            PyMongoError: MongoDB failed (the caller retries; all writes are idempotent).
        """
        source, backend, config = self.source(name)
        now = utc_now()
        item = self.items.get(name, run_id) or SyncItem(
            source=name,
            run_id=run_id,
            guid="",
            state=ItemState.PENDING,
            created_at=now,
            updated_at=now,
        )
        try:
            reader = backend.open_reader(config, self.settings)
            return self._sync(source, reader, item, backend.location(config))
        except (SourceReadError, ExportError) as e:
            attempts = item.attempts + 1
            delay = self.settings.backoff_s(attempts)
            failed = item.model_copy(
                update={
                    "state": ItemState.FAILED,
                    "attempts": attempts,
                    "last_error": str(e),
                    "next_attempt_at": now + timedelta(seconds=delay),
                    "updated_at": now,
                }
            )
            self.sources.mark_open(name, [run_id], failed.next_attempt_at)
            self.items.save(failed)
            logger.warning(
                "source %s run %d failed (attempt %d, retry in %g s): %s",
                name,
                run_id,
                attempts,
                delay,
                e,
            )
            return RunOutcome(source=name, run_id=run_id, action="failed", error=str(e))

    def _sync(
        self, source: SyncSource, reader: SourceReader, item: SyncItem, location: str | None
    ) -> RunOutcome:
        now = utc_now()
        with reader:
            run = reader.run(item.run_id)
            rows = run.rows
            fingerprint = run.fingerprint
            metadata = run.metadata
            grew = rows != item.data_rows or item.last_change_at is None
            last_change = now if grew else as_utc(item.last_change_at or now)
            if run.is_completed:
                status, state = DatasetStatus.COMPLETE, ItemState.SYNCED
            elif (now - last_change).total_seconds() > self.settings.idle_timeout_s:
                status, state = DatasetStatus.ABANDONED, ItemState.ABANDONED
            else:
                status, state = DatasetStatus.LIVE, ItemState.LIVE
            uuid = dataset_uuid(source.default_scope, run.guid)
            existing = self.datasets.get(uuid)
            previous = list(existing.files) if existing else []
            latest = previous[-1] if previous else None
            files = previous[-1:]
            if _needs_file(
                latest,
                run,
                status,
                item.meta_fingerprint,
                self.settings.live_write_allowance_bytes,
            ):
                files = [self._write_file(run, source, rows, latest)]
                if self.observer is not None:
                    self.observer.file_written(
                        FileWritten(
                            source=source.name,
                            location=location,
                            run_id=item.run_id,
                            guid=run.guid,
                            name=metadata.name,
                            dataset_uuid=uuid,
                            file=files[0],
                            previous=latest,
                            started_at=now,
                            ended_at=utc_now(),
                        )
                    )

        record = DatasetRecord(
            **metadata.model_dump(exclude={"collected"}),
            collected=_to_mongo_precision(metadata.collected),
            uuid=uuid,
            alt_uid=run.guid,
            scope=source.default_scope,
            source=source.name,
            status=status,
            synced_at=now,
            files=files,
        )
        unchanged_record = existing is not None and existing.model_dump(
            exclude={"synced_at"}
        ) == record.model_dump(exclude={"synced_at"})
        if not unchanged_record:
            self.datasets.save(record)
        self._delete_superseded(source, run.guid, previous, files)
        self.items.save(
            item.model_copy(
                update={
                    "guid": run.guid,
                    "state": state,
                    "attempts": 0,
                    "last_error": None,
                    "next_attempt_at": None,
                    "data_rows": rows,
                    "meta_fingerprint": fingerprint,
                    "file_version": files[-1].version if files else 0,
                    "dataset_uuid": uuid,
                    "last_change_at": last_change,
                    "updated_at": now,
                }
            )
        )
        if state in (ItemState.SYNCED, ItemState.ABANDONED):
            abandoned_rows = rows if state is ItemState.ABANDONED else None
            self.sources.mark_settled(source.name, item.run_id, abandoned_rows)
        action: Action
        if status is DatasetStatus.LIVE:
            action = "unchanged" if unchanged_record else "live"
        elif status is DatasetStatus.ABANDONED:
            action = "abandoned"
        elif existing is None:
            action = "new"
        else:
            action = "unchanged" if unchanged_record else "updated"
        return RunOutcome(
            source=source.name,
            run_id=item.run_id,
            action=action,
            status=status,
            file_version=files[-1].version if files else 0,
            dataset_uuid=uuid,
        )

    def _delete_superseded(
        self, source: SyncSource, guid: str, previous: list[FileVersion], current: list[FileVersion]
    ) -> None:
        """Delete the run's files the record no longer lists (after the record is saved).

        A complete run's live file is deleted on every sync of it (missing is fine), so a
        sync killed between saving the record and deleting is finished by the next one.
        """
        keep = {f.name for f in current}
        stale = {f.name for f in previous} - keep
        if current and current[-1].complete:
            stale.add(_file_name(guid, complete=False))
        for name in sorted(stale - keep):
            self.store.delete(_relative(source, guid, name))

    def _write_file(
        self, run: SourceRun, source: SyncSource, rows: int, latest: FileVersion | None
    ) -> FileVersion:
        dataset = run.dataset(up_to_row=rows)
        payload = int(dataset.nbytes)
        name = _file_name(run.guid, complete=run.is_completed)
        with tempfile.TemporaryDirectory(prefix="qops-sync-") as tmp:
            local = Path(tmp) / name
            facts = write_hdf5(dataset, local)
            del dataset
            location = self.store.put(local, _relative(source, run.guid, name))
        before = 0 if latest is None else (latest.written or latest.size)
        return FileVersion(
            name=name,
            version=1 if latest is None else latest.version + 1,
            location=location,
            size=facts.size,
            md5=facts.md5,
            rows=rows,
            complete=run.is_completed,
            created=_to_mongo_precision(utc_now()),
            fingerprint=run.fingerprint,
            payload=payload,
            written=before + facts.size,
        )

    def sync_source(self, name: str) -> list[RunOutcome]:
        """Discover and sync every due run of ``name`` one after the other (no Prefect)."""
        return [self.sync_run(name, run_id) for run_id in self.discover(name).run_ids]

    def follow(
        self, name: str, stop: threading.Event, poll_s: float = 0.5
    ) -> Iterator[list[RunOutcome]]:
        """Sync ``name`` every ``poll_s`` seconds until ``stop`` is set (live sync).

        Each pass is cheap when nothing changed (discovery plus one check per live run),
        so new rows of a running measurement reach the catalog within about ``poll_s``.
        Yields the outcomes of every pass that did something.
        """
        while not stop.is_set():
            outcomes = [o for o in self.sync_source(name) if o.action != "unchanged"]
            if outcomes:
                yield outcomes
            stop.wait(poll_s)
