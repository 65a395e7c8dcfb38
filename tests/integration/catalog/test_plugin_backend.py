"""The backend contract is real: a second, non-QCoDeS backend syncs through SyncService.

The backend here reads a directory of JSON files, one per run (``<run_id>.json``), and is
defined in this test only. It is registered by replacing the entry-point lookup, exactly
what an installed package's ``qops.sync_backends`` entry point provides; the catalog code
is used unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import numpy as np
import pytest
import xarray as xr
from pydantic import BaseModel, ConfigDict
from pymongo.database import Database

from qops.catalog import backends
from qops.catalog.backends import SyncBackend
from qops.catalog.errors import SourceReadError
from qops.catalog.models import DatasetMetadata, ItemState
from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.export.hdf5 import read_hdf5
from qops.export.store import LocalDirStore
from qops.mongo import Document


class JsonRunError(SourceReadError):
    """A run file of a JSON directory cannot be read."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"JSON run {path}: {reason}")


class JsonDirConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: Path


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise JsonRunError(path, str(e)) from e
    if not isinstance(document, dict):
        raise JsonRunError(path, "not a JSON object")
    return document


def _fingerprint(document: Mapping[str, Any]) -> str:
    meta = [document.get("completed"), document.get("name"), document.get("tags")]
    return hashlib.sha1(json.dumps(meta).encode()).hexdigest()


class TrackedJsonRun:
    def __init__(self, run_id: int, guid: str) -> None:
        self.run_id = run_id
        self.guid = guid


class JsonRun:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.guid = str(document["guid"])
        self.is_completed = bool(document.get("completed"))
        self.rows = len(document.get("rows", []))
        self.fingerprint = _fingerprint(document)
        self.metadata = DatasetMetadata(
            name=str(document.get("name", "")),
            description=f"JSON run {self.guid}",
            collected=None,
            tags=sorted(document.get("tags", [])),
            attributes={"format": "json"},
            ranking=0,
        )

    def dataset(self, up_to_row: int) -> xr.Dataset:
        rows = self.document.get("rows", [])[:up_to_row]
        x = np.array([r[0] for r in rows], dtype=float)
        y = np.array([r[1] for r in rows], dtype=float)
        return xr.Dataset({"y": ("x", y)}, coords={"x": x})


class JsonDirReader:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.opened = False

    def __enter__(self) -> Self:
        if not self.directory.is_dir():
            raise JsonRunError(self.directory, "no such directory")
        self.opened = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.opened = False

    def _files(self) -> Iterator[tuple[int, Path]]:
        for path in sorted(self.directory.glob("*.json"), key=lambda p: int(p.stem)):
            yield int(path.stem), path

    def runs_after(self, watermark: int) -> list[TrackedJsonRun]:
        return [TrackedJsonRun(i, str(_load(p)["guid"])) for i, p in self._files() if i > watermark]

    def metadata_fingerprint(self) -> str:
        digests = json.dumps(sorted(self.run_fingerprints().items()))
        return hashlib.sha1(digests.encode()).hexdigest()

    def run_fingerprints(self) -> dict[int, str]:
        return {i: _fingerprint(_load(p)) for i, p in self._files()}

    def data_markers(self, run_ids: Sequence[int]) -> dict[int, int]:
        files = dict(self._files())
        return {i: len(_load(files[i]).get("rows", [])) for i in run_ids if i in files}

    def run(self, run_id: int) -> JsonRun:
        assert self.opened
        return JsonRun(_load(self.directory / f"{run_id}.json"))


class JsonDirBackend(SyncBackend):
    identifier: ClassVar[str] = "jsondir"
    display_name: ClassVar[str] = "Directory of JSON runs"
    version: ClassVar[str] = "0.0.1"
    reads_with: ClassVar[str] = "json"
    config_model: ClassVar[type[BaseModel]] = JsonDirConfig
    opened: ClassVar[int] = 0

    @classmethod
    def change_stamp(cls, config: BaseModel) -> list[int]:
        assert isinstance(config, JsonDirConfig)
        stamp = []
        for path in sorted(config.directory.glob("*.json")):
            st = path.stat()
            stamp += [int(path.stem), st.st_size, st.st_mtime_ns]
        return stamp

    @classmethod
    def open_reader(cls, config: BaseModel, settings: SyncSettings) -> JsonDirReader:
        assert isinstance(config, JsonDirConfig)
        cls.opened += 1
        return JsonDirReader(config.directory)


def _write_run(directory: Path, run_id: int, **document: Any) -> None:
    path = directory / f"{run_id}.json"
    previous = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(json.dumps({"guid": f"json-guid-{run_id}", **document}))
    # The change stamp compares mtimes: make sure a rewrite within the clock's tick shows.
    if path.stat().st_mtime_ns == previous:
        os.utime(path, ns=(previous + 1_000, previous + 1_000))


@pytest.fixture
def json_backend(monkeypatch: pytest.MonkeyPatch) -> type[JsonDirBackend]:
    """Register the JSON backend next to the installed ones, as its entry point would."""
    installed = backends.installed_backends
    monkeypatch.setattr(
        backends, "installed_backends", lambda: {**installed(), "jsondir": JsonDirBackend}
    )
    monkeypatch.setattr(JsonDirBackend, "opened", 0)
    return JsonDirBackend


def test_sync_service_second_backend_syncs_records_files_and_updates(
    json_backend: type[JsonDirBackend],
    tmp_path: Path,
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    _write_run(runs, 1, name="trace", tags=["b", "a"], completed=True, rows=[[0, 1], [1, 3]])
    _write_run(runs, 2, name="growing", tags=[], completed=False, rows=[[0, 5]])
    SyncSources.create(
        name="notes",
        backend_identifier="jsondir",
        config_data={"directory": str(runs)},
        default_scope="json-scope",
        settings=mongo_settings,
    )
    service = SyncService(mongo_db, LocalDirStore(tmp_path / "files"), SyncSettings())
    service.ensure_indexes()

    outcomes = service.sync_source("notes")

    assert [(o.run_id, o.action) for o in outcomes] == [(1, "new"), (2, "live")]
    record = mongo_db.datasets.find_one({"alt_uid": "json-guid-1"})
    assert record is not None
    assert record["name"] == "trace"
    assert record["tags"] == ["a", "b"]
    assert record["scope"] == "json-scope"
    assert record["status"] == "complete"
    (file,) = record["files"]
    assert file["rows"] == 2
    assert read_hdf5(Path(file["location"]))["y"].values.tolist() == [1.0, 3.0]

    # Nothing changed: the change stamp stops discovery before the source is opened.
    opened = json_backend.opened
    again = service.sync_source("notes")
    assert [(o.run_id, o.action) for o in again] == [(2, "unchanged")]
    assert json_backend.opened == opened + 1  # the live run's check only

    # The live run grows and completes; run 1 gets a new tag (metadata only).
    _write_run(runs, 2, name="growing", tags=[], completed=True, rows=[[0, 5], [1, 6]])
    _write_run(runs, 1, name="trace", tags=["a", "b", "c"], completed=True, rows=[[0, 1], [1, 3]])
    changed = service.sync_source("notes")

    assert sorted((o.run_id, o.action) for o in changed) == [(1, "updated"), (2, "updated")]
    first = mongo_db.datasets.find_one({"alt_uid": "json-guid-1"})
    assert first is not None
    assert first["tags"] == ["a", "b", "c"]
    # Metadata change: the file is rewritten in place (same name, next version).
    assert [(f["name"], f["version"]) for f in first["files"]] == [("json-guid-1.h5", 2)]
    second = mongo_db.datasets.find_one({"alt_uid": "json-guid-2"})
    assert second is not None
    assert second["status"] == "complete"
    assert [(f["rows"], f["version"]) for f in second["files"]] == [(2, 2)]
    assert service.sync_source("notes") == []


def test_sync_service_second_backend_read_error_fails_run_alone(
    json_backend: type[JsonDirBackend],
    tmp_path: Path,
    mongo_settings: MongoSettings,
    mongo_db: Database[Document],
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    _write_run(runs, 1, name="fine", completed=True, rows=[[0, 1]])
    _write_run(runs, 2, name="to break", completed=True, rows=[[0, 1]])
    SyncSources.create(
        name="notes",
        backend_identifier="jsondir",
        config_data={"directory": str(runs)},
        settings=mongo_settings,
    )
    service = SyncService(
        mongo_db, LocalDirStore(tmp_path / "files"), SyncSettings(retry_base_s=3600)
    )
    service.ensure_indexes()
    assert service.discover("notes").run_ids == [1, 2]
    (runs / "2.json").write_text("{broken")

    outcomes = [service.sync_run("notes", run_id) for run_id in (1, 2)]

    assert [o.action for o in outcomes] == ["new", "failed"]
    assert outcomes[1].error is not None
    assert outcomes[1].error.startswith(f"JSON run {runs / '2.json'}: ")
    item = service.items.get("notes", 2)
    assert item is not None
    assert item.state is ItemState.FAILED
    assert item.attempts == 1
    assert mongo_db.datasets.count_documents({}) == 1
