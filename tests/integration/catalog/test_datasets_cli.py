"""``qops datasets search|show|download`` run as a user would, on the embedded MongoDB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pymongo.database import Database

from qops.config import MongoSettings
from qops.mongo import Document
from tests.cli import run_qops
from tests.integration.catalog.catalog_records import record, save
from tests.integration.catalog.test_read_files import sync_lab


@pytest.fixture
def synced(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> dict[str, str]:
    return sync_lab(tmp_path / "lab.db", tmp_path / "files", mongo_settings, mongo_db)


def test_datasets_search_table_and_json_find_by_tag_attribute_and_time(
    mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> None:
    records = save(
        mongo_db,
        record(0, name="T1 Q1", tags=["t1"], attributes={"set-up": "fridge-1", "qh.qubit": "Q1"}),
        record(1, name="T1 Q2", tags=["t1"], attributes={"set-up": "fridge-1", "qh.qubit": "Q2"}),
        record(2, name="Rabi", tags=["rabi"], attributes={"set-up": "fridge-1", "qh.qubit": "Q1"}),
    )
    args = [
        "--tag",
        "t1",
        "--attr",
        "qh.qubit=Q1",
        "--after",
        "2026-11-01",
        "--before",
        "2026-11-02",
    ]
    table = run_qops("datasets", "search", *args)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["collected", "uuid", "name", "status", "set-up", "tags"]
    assert records[0].uuid in lines[1]
    assert "fridge-1" in lines[1]
    assert lines[-1] == "1 of 1 datasets"
    as_json = run_qops("datasets", "search", "--set-up", "fridge-1", "--limit", "2", "--json")
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert [d["uuid"] for d in body["datasets"]] == [records[2].uuid, records[1].uuid]
    assert body["total"] == 3
    assert body["facets"]["set_ups"] == [{"value": "fridge-1", "count": 3}]
    rest = run_qops("datasets", "search", "--set-up", "fridge-1", "--cursor", body["next_cursor"])
    assert records[0].uuid in rest.stdout
    assert records[1].uuid not in rest.stdout


def test_datasets_show_by_uuid_and_alt_uid(
    mongo_settings: MongoSettings, synced: dict[str, str], mongo_db: Database[Document]
) -> None:
    document = mongo_db.datasets.find_one({"alt_uid": synced["1d"]})
    assert document is not None
    shown = run_qops("datasets", "show", document["_id"])
    assert shown.returncode == 0, shown.stderr
    assert f"uuid       {document['_id']}" in shown.stdout
    assert "  set-up = fridge-1" in shown.stdout
    assert "files:" in shown.stdout
    assert document["files"][0]["md5"] in shown.stdout
    by_alt = run_qops("datasets", "show", "--alt-uid", synced["1d"], "--scope", "scope-1", "--json")
    assert by_alt.returncode == 0, by_alt.stderr
    assert json.loads(by_alt.stdout)["uuid"] == document["_id"]


def test_datasets_download_writes_the_stored_file(
    mongo_settings: MongoSettings,
    synced: dict[str, str],
    mongo_db: Database[Document],
    tmp_path: Path,
) -> None:
    document = mongo_db.datasets.find_one({"alt_uid": synced["2d"]})
    assert document is not None
    (file,) = document["files"]
    out = tmp_path / "out"
    out.mkdir()
    result = run_qops("datasets", "download", document["_id"], "-o", str(out), "--version", "1")
    assert result.returncode == 0, result.stderr
    written = out / file["name"]
    assert written.read_bytes() == Path(file["location"]).read_bytes()
    assert result.stdout.startswith(f"wrote {written} ")
    assert list(out.iterdir()) == [written]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "no-such-uuid"], "no dataset with uuid 'no-such-uuid'"),
        (["show", "--alt-uid", "nope", "--scope", "s"], "no dataset with alt_uid 'nope'"),
        (["download", "no-such-uuid"], "no dataset with uuid 'no-such-uuid'"),
        (["search", "--attr", "qubit"], "--attr='qubit' is not accepted: expected key=value"),
        (["search", "--after", "last week"], "--after='last week' is not accepted"),
        (["search", "--cursor", "???"], "cursor='???' is not accepted"),
    ],
)
def test_datasets_errors_print_one_line_and_exit_2(
    mongo_settings: MongoSettings, args: list[str], message: str
) -> None:
    result = run_qops("datasets", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("qops: error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
