"""The Prefect side of the sync-source registry: a ``QCoDeSSyncSource`` block per source.

:class:`BlockSourceMirror` is the :class:`~qops.catalog.sources.SourceMirror` the CLI gives
``SyncSources.create`` and ``SyncSources.remove``, so every registered source is also
visible (and editable) as a block in the Prefect UI.
"""

from __future__ import annotations

from prefect.exceptions import ObjectNotFound

from blocks.sync import QCoDeSSyncSource
from qops.catalog.models import SyncSource
from qops.qcodes.backend import source_block_data, source_block_name


def block_name(source_name: str) -> str:
    """Return the block name of a source (block names are lowercase with dashes)."""
    return source_block_name(source_name)


class BlockSourceMirror:
    """Keeps a ``QCoDeSSyncSource`` block per registered source."""

    def save(self, source: SyncSource) -> None:
        QCoDeSSyncSource.model_validate(source_block_data(source)).save(
            block_name(source.name), overwrite=True
        )

    def delete(self, name: str) -> None:
        try:
            QCoDeSSyncSource.delete(block_name(name))
        except ObjectNotFound:
            return
