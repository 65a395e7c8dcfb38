"""Where the sync's HDF5 files go, on Prefect filesystem blocks.

:class:`FilesystemBlockStore` adapts a ``LocalFileSystem`` or ``RemoteFileSystem`` block to
the export's :class:`~qops.export.store.FileStore`; :func:`file_store` picks the block a
flow run was given, or a ``LocalFileSystem`` on the data directory.
"""

from __future__ import annotations

from pathlib import Path

from prefect.filesystems import LocalFileSystem, WritableFileSystem

from qops.export.store import FileStore, LocalDirStore


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
