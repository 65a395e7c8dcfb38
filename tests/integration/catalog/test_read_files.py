"""Reading synced files through the catalog: really synced QCoDeS runs on the embedded MongoDB."""

from __future__ import annotations

import hashlib
from pathlib import Path

import fsspec
import numpy as np
import pytest
import xarray as xr
from pymongo.database import Database
from qcodes.dataset import load_by_guid
from qcodes.dataset.sqlite.connection import AtomicConnection
from qcodes.dataset.sqlite.database import connect

from qops.catalog.errors import (
    DatasetFileMissingError,
    DatasetNotFoundError,
    FileVersionNotFoundError,
)
from qops.catalog.models import FileVersion
from qops.catalog.search import CatalogQueryService, DatasetQuery
from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.export.store import LocalDirStore
from qops.mongo import Document
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d, run_2d, run_two_dependents
from tests.unit.qcodes.schema_fixtures import copy_fixture, needs_fixtures, qcodes_runs


def sync_lab(
    db_path: Path, files: Path, settings: MongoSettings, db: Database[Document]
) -> dict[str, str]:
    """Create a lab database with a 1-D, a 2-D and a two-dependent run, sync it.

    Returns ``kind -> guid``.
    """
    conn, exp = create_db(db_path)
    guids = {
        "1d": run_1d(exp, n=20).guid,
        "2d": run_2d(exp).guid,
        "two": run_two_dependents(exp).guid,
    }
    conn.close()
    SyncSources.create(
        name="lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(db_path), "set_up": "fridge-1"},
        default_scope="scope-1",
        settings=settings,
    )
    sync = SyncService(db, LocalDirStore(files), SyncSettings())
    sync.ensure_indexes()
    assert {o.action for o in sync.sync_source("lab")} == {"new"}
    return guids


@pytest.fixture
def synced(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> tuple[CatalogQueryService, dict[str, str], Path]:
    db_path = tmp_path / "lab.db"
    guids = sync_lab(db_path, tmp_path / "files", mongo_settings, mongo_db)
    service = CatalogQueryService(mongo_db)
    service.ensure_indexes()
    return service, guids, db_path


def test_synced_runs_are_found_by_set_up_and_file_is_the_stored_one(
    synced: tuple[CatalogQueryService, dict[str, str], Path],
) -> None:
    service, guids, _ = synced
    page = service.search(DatasetQuery(set_up="fridge-1", tags=["Gate voltage"]))
    assert page.total == 3
    record = service.get_by_alt_uid("scope-1", guids["1d"])
    dataset_file = service.file(record.uuid)
    assert dataset_file.file.version == 1
    assert isinstance(dataset_file.path, Path)
    streamed = b"".join(service.iter_bytes(dataset_file, chunk=1000))
    assert streamed == dataset_file.path.read_bytes()
    assert hashlib.md5(streamed, usedforsecurity=False).hexdigest() == dataset_file.file.md5
    assert len(streamed) == dataset_file.file.size
    with pytest.raises(FileVersionNotFoundError, match=r"version 7 .*versions listed: 1"):
        service.file(record.uuid, 7)
    with pytest.raises(DatasetNotFoundError):
        service.file("nope")


def test_open_dataset_equals_the_synced_qcodes_data(
    synced: tuple[CatalogQueryService, dict[str, str], Path],
) -> None:
    service, guids, db_path = synced
    for kind in ("1d", "2d"):
        record = service.get_by_alt_uid("scope-1", guids[kind])
        opened = service.open_dataset(record.uuid)
        assert isinstance(opened, xr.Dataset)
        expected = load_by_guid(guids[kind], conn=_connect(db_path)).to_xarray_dataset()
        # QCoDeS's own export rounds the last bit of some values: compare to 1e-12.
        np.testing.assert_allclose(opened["z"].values, expected["z"].values, rtol=1e-12)
        assert list(opened["z"].dims) == list(expected["z"].dims)
        for dim in expected["z"].dims:
            np.testing.assert_allclose(opened[dim].values, expected[dim].values, rtol=1e-12)
    one_d = service.open_dataset(service.get_by_alt_uid("scope-1", guids["1d"]).uuid)
    np.testing.assert_array_equal(one_d["z"].values, np.sin(np.arange(20)))


@needs_fixtures
def test_open_dataset_of_unmergeable_dependents_is_a_tree_of_groups(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    # QCoDeS's schema-version-2 fixture: runs whose dependents QCoDeS cannot merge.
    lab = copy_fixture("version2/some_runs.db", tmp_path / "lab")
    reference = qcodes_runs(copy_fixture("version2/some_runs.db", tmp_path / "upgraded"))
    SyncSources.create(
        name="old-lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(lab), "set_up": "fridge-0"},
        default_scope="scope-1",
        settings=mongo_settings,
    )
    sync = SyncService(mongo_db, LocalDirStore(tmp_path / "files"), SyncSettings())
    sync.ensure_indexes()
    sync.sync_source("old-lab")
    service = CatalogQueryService(mongo_db)
    run_id, expected = next(iter(reference.items()))
    record = service.get_by_alt_uid("scope-1", expected.guid)
    opened = service.open_dataset(record.uuid)
    assert isinstance(opened, xr.DataTree), run_id
    theirs = expected.to_xarray_dataset_dict()
    assert set(opened.children) == set(theirs)
    for name, group in theirs.items():
        mine = opened[name].to_dataset()
        for variable in group.data_vars:
            np.testing.assert_allclose(mine[variable].values, group[variable].values, rtol=1e-12)


def test_missing_file_is_reported_as_missing(
    synced: tuple[CatalogQueryService, dict[str, str], Path],
) -> None:
    service, guids, _ = synced
    record = service.get_by_alt_uid("scope-1", guids["1d"])
    dataset_file = service.file(record.uuid)
    assert isinstance(dataset_file.path, Path)
    dataset_file.path.unlink()
    with pytest.raises(DatasetFileMissingError, match="is missing: the record lists"):
        service.open_dataset(record.uuid)
    with pytest.raises(DatasetFileMissingError):
        service.open_bytes(dataset_file)


def test_file_at_an_fsspec_url_is_read_through_fsspec(
    synced: tuple[CatalogQueryService, dict[str, str], Path], mongo_db: Database[Document]
) -> None:
    # What a RemoteFileSystem block's write_path returns: an fsspec URL under its base path.
    service, guids, _ = synced
    record = service.get_by_alt_uid("scope-1", guids["2d"])
    local = service.file(record.uuid)
    assert isinstance(local.path, Path)
    content = local.path.read_bytes()
    url = f"memory://qops-test/{record.uuid}/{local.file.name}"
    with fsspec.open(url, "wb") as handle:
        handle.write(content)
    moved = local.file.model_copy(update={"location": url})
    mongo_db.datasets.update_one(
        {"_id": record.uuid}, {"$set": {"files": [moved.model_dump(mode="python")]}}
    )
    try:
        remote = service.file(record.uuid)
        assert remote.path == url
        assert b"".join(service.iter_bytes(remote)) == content
        opened = service.open_dataset(record.uuid)
        assert isinstance(opened, xr.Dataset)
        assert opened["z"].shape == (6, 5)
        gone = FileVersion.model_validate({**moved.model_dump(), "location": url + ".gone"})
        mongo_db.datasets.update_one(
            {"_id": record.uuid}, {"$set": {"files": [gone.model_dump(mode="python")]}}
        )
        with pytest.raises(DatasetFileMissingError, match=r"\.gone"):
            service.open_dataset(record.uuid)
    finally:
        fsspec.filesystem("memory").rm(f"memory://qops-test/{record.uuid}", recursive=True)


def _connect(path: Path) -> AtomicConnection:
    return connect(path)
