"""The provenance of the sync: every synced data file version as a PROV entity.

:class:`SyncProvenance` is the catalog's :class:`~qops.catalog.service.SyncObserver` that
writes, through the provenance recorder (write-ahead journal, outbox), what a sync of one
run did: its activity, the raw measurement (QCoDeS run) it used, and the file version it
generated, derived from the measurement and from the file version before it.
:func:`backfill` records the current file version of runs synced before that.
"""

from qops.sync_provenance.backfill import BackfillReport, backfill
from qops.sync_provenance.observer import SYNC_TASK_NAME, SyncProvenance, sync_record

__all__ = ["SYNC_TASK_NAME", "BackfillReport", "SyncProvenance", "backfill", "sync_record"]
