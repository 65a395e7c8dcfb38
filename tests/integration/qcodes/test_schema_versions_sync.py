"""QCoDeS's fixture databases of schema versions 2 to 8 synced as they are, never upgraded.

Each untouched copy goes through the sync service on the embedded MongoDB; the records and
HDF5 files must hold what QCoDeS 0.58 reads from a second copy it upgraded (one group per
dependent where QCoDeS reads the run only with ``to_xarray_dataset_dict``), and the lab's
folder must stay exactly as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import xarray as xr
from pymongo.database import Database

from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.export.hdf5 import read_hdf5, read_hdf5_groups, write_hdf5
from qops.export.store import LocalDirStore
from qops.mongo import Document
from qops.qcodes.dataset_groups import GROUPS_LAYOUT
from tests.unit.qcodes.schema_fixtures import (
    WITH_RUNS,
    copy_fixture,
    listing,
    needs_fixtures,
    qcodes_runs,
    sha256,
)
from tests.unit.qcodes.test_reader import assert_equals_qcodes, assert_same_attrs

pytestmark = needs_fixtures


@pytest.mark.parametrize(
    ("version", "fixture"), WITH_RUNS, ids=[name.removesuffix(".db") for _, name in WITH_RUNS]
)
def test_sync_source_old_schema_version_equals_qcodes_reading_of_upgraded_copy(
    tmp_path: Path,
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
    version: int,
    fixture: str,
) -> None:
    untouched = copy_fixture(fixture, tmp_path / "lab")
    reference = qcodes_runs(copy_fixture(fixture, tmp_path / "upgraded"))
    before = (sha256(untouched), listing(untouched.parent))
    SyncSources.create(
        name="old-lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(untouched), "set_up": "fridge-1"},
        default_scope="scope-1",
        settings=mongo_settings,
    )
    service = SyncService(mongo_db, LocalDirStore(tmp_path / "files"), SyncSettings())
    service.ensure_indexes()

    outcomes = {o.run_id: o for o in service.sync_source("old-lab")}

    assert sorted(outcomes) == sorted(reference)
    for run_id, expected in reference.items():
        try:
            theirs: xr.Dataset | xr.DataTree = expected.to_xarray_dataset()
        except xr.MergeError:
            # QCoDeS cannot merge this run into one dataset but reads it one dataset per
            # dependent: the file holds one group per dependent.
            groups = expected.to_xarray_dataset_dict()
            theirs = xr.DataTree.from_dict(
                {
                    "/": xr.Dataset(
                        attrs={**next(iter(groups.values())).attrs, "qops_layout": GROUPS_LAYOUT}
                    ),
                    **{f"/{name}": dataset for name, dataset in groups.items()},
                }
            )
        action = "new" if expected.completed else "live"  # a run never completed stays live
        assert outcomes[run_id].action == action, outcomes[run_id].error
        record = mongo_db.datasets.find_one({"alt_uid": expected.guid})
        assert record is not None, run_id
        assert record["name"] == expected.name.splitlines()[0]
        assert f"QCoDeS run {run_id} of {untouched.name}" in record["description"]
        assert record["status"] == ("complete" if expected.completed else "live")
        collected = record["collected"]
        assert isinstance(collected, datetime)
        stamp = datetime.fromtimestamp(expected.run_timestamp_raw or 0, UTC)
        assert abs((collected - stamp).total_seconds()) < 1e-3
        labels = {spec.label or spec.name for spec in expected.paramspecs.values()}
        assert labels <= set(record["tags"])
        assert record["attributes"]["sample"] == expected.sample_name
        (file,) = record["files"]
        reference_file = tmp_path / f"reference-{run_id}.h5"
        write_hdf5(theirs, reference_file)
        if isinstance(theirs, xr.DataTree):
            mine_attrs, mine_groups = read_hdf5_groups(Path(file["location"]))
            their_attrs, their_groups = read_hdf5_groups(reference_file)
            assert mine_groups.keys() == their_groups.keys() == set(theirs.children)
            for name, group in their_groups.items():
                assert_equals_qcodes(mine_groups[name], group)
            assert_same_attrs(mine_attrs, their_attrs)
            continue
        assert_equals_qcodes(read_hdf5(Path(file["location"])), read_hdf5(reference_file))

    again = service.sync_source("old-lab")  # nothing changed: only live runs are looked at
    assert all(o.action == "unchanged" for o in again), again
    assert (sha256(untouched), listing(untouched.parent)) == before
