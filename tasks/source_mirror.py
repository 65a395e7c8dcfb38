"""The Prefect side of the sync-source registry: a ``QCoDeSSyncSource`` block per source.

:class:`BlockSourceMirror` is the :class:`~qops.catalog.sources.SourceMirror` the CLI gives
``SyncSources.create`` and ``SyncSources.remove``, so every registered source is also
visible (and editable) as a block in the Prefect UI.
"""

from __future__ import annotations

import re

from prefect.exceptions import ObjectNotFound

from blocks.sync import QCoDeSSyncSource
from qops.catalog.models import SyncSource


def block_name(source_name: str) -> str:
    """Return the block name of a source (block names are lowercase with dashes)."""
    return re.sub(r"[^a-z0-9-]", "-", source_name.lower())


class BlockSourceMirror:
    """Keeps a ``QCoDeSSyncSource`` block per registered source."""

    def save(self, source: SyncSource) -> None:
        config = source.config
        attributes = config.get("static_attributes") or {}
        assert isinstance(attributes, dict)
        QCoDeSSyncSource(
            source_name=source.name,
            backend=source.backend,
            database_path=str(config["database_path"]),
            set_up=str(config["set_up"]),
            static_attributes={str(k): str(v) for k, v in attributes.items()},
            default_scope=source.default_scope,
        ).save(block_name(source.name), overwrite=True)

    def delete(self, name: str) -> None:
        try:
            QCoDeSSyncSource.delete(block_name(name))
        except ObjectNotFound:
            return
