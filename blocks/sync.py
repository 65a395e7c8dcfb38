"""Blocks of the QCoDeS sync: the source block and file stores on filesystem blocks."""

from __future__ import annotations

import re
from pathlib import Path

from prefect.blocks.core import Block
from prefect.exceptions import ObjectNotFound
from prefect.filesystems import LocalFileSystem, WritableFileSystem
from pydantic import Field

from qops.catalog.models import SyncSource
from qops.export.store import FileStore, LocalDirStore
from qops.qcodes.backend import QCoDeSBackend, QCoDeSConfigData


def block_name(source_name: str) -> str:
    """Return the block name of a source (block names are lowercase with dashes)."""
    return re.sub(r"[^a-z0-9-]", "-", source_name.lower())


class QCoDeSSyncSource(Block):
    """A QCoDeS database synced into the catalog; mirrors :class:`QCoDeSConfigData`."""

    _block_type_name = "QCoDeSSyncSource"
    _block_type_slug = "qcodes-sync-source"
    _description = "A QCoDeS SQLite database whose runs qops syncs into its dataset catalog."

    source_name: str = Field(description="Name of the source in the qops registry.")
    backend: str = Field(default="qcodes", description="Sync backend identifier.")
    database_path: str = Field(description="The QCoDeS .db file (opened read-only).")
    set_up: str = Field(description="Name of the experimental set-up.")
    static_attributes: dict[str, str] = Field(
        default_factory=dict, description="Attributes added to every dataset."
    )
    default_scope: str = Field(default="default", description="Scope of the datasets.")

    def to_settings(self) -> QCoDeSConfigData:
        """Return the validated source config this block describes."""
        config = QCoDeSBackend.validate_config(
            self.source_name,
            {
                "database_path": self.database_path,
                "set_up": self.set_up,
                "static_attributes": self.static_attributes,
            },
        )
        assert isinstance(config, QCoDeSConfigData)
        return config


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


class FilesystemBlockStore:
    """A :class:`~qops.export.store.FileStore` writing through a Prefect filesystem block.

    ``LocalFileSystem`` blocks get the file copied under their base path without loading
    it into memory; any other writable filesystem (``RemoteFileSystem`` on an fsspec URL)
    receives it through ``write_path``.
    """

    def __init__(self, block: WritableFileSystem) -> None:
        self.block = block

    def put(self, local: Path, relative: str) -> str:
        if isinstance(self.block, LocalFileSystem):
            return LocalDirStore(Path(self.block.basepath or ".")).put(local, relative)
        with open(local, "rb") as handle:
            return str(self.block.write_path(relative, handle.read()))


def file_store(storage_block: str | None, data_dir: Path) -> FileStore:
    """Return the store of the named filesystem block, or a ``LocalFileSystem`` on ``data_dir``."""
    if storage_block:
        block = WritableFileSystem.load(storage_block)
        assert isinstance(block, WritableFileSystem)
        return FilesystemBlockStore(block)
    return FilesystemBlockStore(LocalFileSystem(basepath=str(data_dir)))


__all__ = ["BlockSourceMirror", "FilesystemBlockStore", "QCoDeSSyncSource", "file_store"]
