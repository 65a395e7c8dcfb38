"""HDF5 files go through Prefect filesystem blocks (local and fsspec URLs)."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest
from prefect.filesystems import LocalFileSystem, RemoteFileSystem

from qops.export.hdf5 import ExportError
from qops.export.store import LocalDirStore
from tasks.storage import FilesystemBlockStore


def test_filesystem_block_store_local_copies_under_basepath(tmp_path: Path) -> None:
    source = tmp_path / "run.h5"
    source.write_bytes(b"\x89HDF data")
    store = FilesystemBlockStore(LocalFileSystem(basepath=str(tmp_path / "root")))

    location = store.put(source, "datasets/s/guid/guid.v1.h5")

    assert Path(location) == tmp_path / "root" / "datasets/s/guid/guid.v1.h5"
    assert Path(location).read_bytes() == b"\x89HDF data"


def test_filesystem_block_store_remote_url_writes_through_fsspec(tmp_path: Path) -> None:
    source = tmp_path / "run.h5"
    source.write_bytes(b"\x89HDF data")
    bucket = f"qops-test-{tmp_path.name}"
    store = FilesystemBlockStore(RemoteFileSystem(basepath=f"memory://{bucket}"))

    store.put(source, "datasets/s/guid/guid.v1.h5")

    stored = fsspec.filesystem("memory").cat_file(f"/{bucket}/datasets/s/guid/guid.v1.h5")
    assert stored == b"\x89HDF data"


def test_local_dir_store_path_escaping_root_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "run.h5"
    source.write_bytes(b"x")
    with pytest.raises(ExportError, match="escapes the store root"):
        LocalDirStore(tmp_path / "root").put(source, "../outside.h5")


@pytest.mark.parametrize("kind", ["local", "remote"])
def test_filesystem_block_store_replaces_in_place_and_deletes(tmp_path: Path, kind: str) -> None:
    block = (
        LocalFileSystem(basepath=str(tmp_path / "root"))
        if kind == "local"
        else RemoteFileSystem(basepath=f"memory://qops-test-{tmp_path.name}")
    )
    store = FilesystemBlockStore(block)
    for content in (b"first", b"second"):
        source = tmp_path / "run.h5"
        source.write_bytes(content)
        store.put(source, "datasets/s/guid/guid.live.h5")

    assert block.read_path("datasets/s/guid/guid.live.h5") == b"second"
    store.delete("datasets/s/guid/guid.live.h5")
    store.delete("datasets/s/guid/guid.live.h5")  # already gone: not an error
    with pytest.raises((FileNotFoundError, ValueError, OSError)):
        block.read_path("datasets/s/guid/guid.live.h5")
