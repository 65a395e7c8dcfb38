"""The source registry: one source per database file."""

from __future__ import annotations

from pathlib import Path

import pytest

from qops.catalog.errors import SourceLocationTakenError
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d


def test_sources_create_same_database_twice_is_refused_naming_existing_source(
    tmp_path: Path, mongo_settings: MongoSettings
) -> None:
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    run_1d(exp)
    conn.close()
    (tmp_path / "link.db").symlink_to(db)
    SyncSources.create(
        name="lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(db), "set_up": "fridge"},
        settings=mongo_settings,
    )

    # Another spelling of the same file (a symlink, a relative detour) is the same database.
    for spelling in (tmp_path / "link.db", tmp_path / "sub" / ".." / "lab.db"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(SourceLocationTakenError) as error:
            SyncSources.create(
                name="lab-again",
                backend_identifier="qcodes",
                config_data={"database_path": str(spelling), "set_up": "other"},
                settings=mongo_settings,
            )
        assert "'lab'" in str(error.value)
        assert str(db.resolve()) in str(error.value)

    assert [s.name for s in SyncSources.list(settings=mongo_settings)] == ["lab"]
    # Re-creating the same source stays a no-op.
    SyncSources.create(
        name="lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(db), "set_up": "fridge"},
        settings=mongo_settings,
    )
