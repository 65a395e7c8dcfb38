"""Where the sync's HDF5 files go, on Prefect filesystem blocks.

:class:`FilesystemBlockStore` adapts a ``LocalFileSystem`` or ``RemoteFileSystem`` block to
the export's :class:`~qops.export.store.FileStore`; :func:`file_store` picks the block a
flow run was given, or a ``LocalFileSystem`` on the data directory.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prefect.filesystems import LocalFileSystem, RemoteFileSystem, WritableFileSystem

from qops.export.hdf5 import ExportError
from qops.export.store import FileStore, LocalDirStore

logger = logging.getLogger(__name__)


class FilesystemBlockStore:
    """A :class:`~qops.export.store.FileStore` writing through a Prefect filesystem block.

    ``LocalFileSystem`` blocks get the file copied under their base path without loading
    it into memory; any other writable filesystem (``RemoteFileSystem`` on an fsspec URL)
    receives it through ``write_path``.
    """

    def __init__(self, block: WritableFileSystem) -> None:
        self.block = block

    def put(self, local: Path, relative: str) -> str:
        # Object stores (s3, gcs, az, memory) replace an object atomically on write.
        if isinstance(self.block, LocalFileSystem):
            return LocalDirStore(Path(self.block.basepath or ".")).put(local, relative)
        with open(local, "rb") as handle:
            return str(self.block.write_path(relative, handle.read()))

    def delete(self, relative: str) -> None:
        if isinstance(self.block, LocalFileSystem):
            LocalDirStore(Path(self.block.basepath or ".")).delete(relative)
            return
        if isinstance(self.block, RemoteFileSystem):
            path = self.block._resolve_path(relative)
            try:
                if self.block.filesystem.exists(path):
                    self.block.filesystem.rm(path)
            except OSError as e:
                raise ExportError(path, f"cannot delete: {e}") from e
            return
        # A filesystem block without a delete operation: the superseded file stays (the
        # names are stable per run, so at most one live file per run is left behind).
        logger.warning("storage block %s cannot delete %s", type(self.block).__name__, relative)


def file_store(storage_block: str | None, data_dir: Path) -> FileStore:
    """Return the store of the named filesystem block, or a ``LocalFileSystem`` on ``data_dir``."""
    if storage_block:
        block = WritableFileSystem.load(storage_block)
        assert isinstance(block, WritableFileSystem)
        return FilesystemBlockStore(block)
    return FilesystemBlockStore(LocalFileSystem(basepath=str(data_dir)))
