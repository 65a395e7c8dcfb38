"""The CLI's REST client of Prefect under a real Prefect API: blocks as Prefect saves them,
flow runs recorded with their state, logs and artifact."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from pymongo.database import Database

from blocks.sync import QCoDeSSyncSource
from qops.catalog.models import SyncSource
from qops.cli.prefect_env import PrefectApi
from qops.cli.prefect_rest import PrefectRest, PrefectRestError, load_registrations
from qops.cli.sync import RestSourceMirror
from qops.config import MongoSettings
from qops.mongo import Document
from qops.qcodes.backend import SOURCE_BLOCK_TYPE_SLUG, source_block_data
from qops.timeutil import utc_now
from tasks.source_mirror import BlockSourceMirror
from tests.cli import run_qops
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d


def _source(name: str, attributes: dict[str, str]) -> SyncSource:
    return SyncSource(
        name=name,
        backend="qcodes",
        config={
            "database_path": "/data/lab.db",
            "set_up": "fridge",
            "static_attributes": attributes,
        },
        default_scope="scope-1",
        created_at=utc_now(),
    )


def _document(api_url: str, name: str) -> dict[str, object]:
    route = f"{api_url}/block_types/slug/{SOURCE_BLOCK_TYPE_SLUG}/block_documents/name/{name}"
    response = httpx.get(route)
    assert response.status_code == 200, response.text
    document = response.json()
    assert isinstance(document, dict)
    return document


def test_rest_mirror_saves_block_prefect_loads_and_saves_identically(prefect_api: str) -> None:
    mirror = RestSourceMirror(PrefectApi(prefect_api, "configured"))
    source = _source("Rest.Lab", {"project": "p1", "cooldown": "7"})

    mirror.save(source)
    BlockSourceMirror().save(_source("Engine.Lab", {"project": "p1", "cooldown": "7"}))

    loaded = QCoDeSSyncSource.load("rest-lab")
    assert isinstance(loaded, QCoDeSSyncSource)
    assert loaded.model_dump(include=set(source_block_data(source))) == source_block_data(source)
    ours, prefects = _document(prefect_api, "rest-lab"), _document(prefect_api, "engine-lab")
    assert ours["block_schema_id"] == prefects["block_schema_id"]
    assert ours["block_type_id"] == prefects["block_type_id"]
    assert isinstance(ours["data"], dict)
    assert isinstance(prefects["data"], dict)
    assert {**ours["data"], "source_name": "x"} == {**prefects["data"], "source_name": "x"}


def test_rest_mirror_save_again_overwrites_whole_block_and_delete_removes_it(
    prefect_api: str,
) -> None:
    mirror = RestSourceMirror(PrefectApi(prefect_api, "configured"))
    mirror.save(_source("twice", {"old": "1", "kept": "2"}))

    mirror.save(_source("twice", {"kept": "3"}))

    loaded = QCoDeSSyncSource.load("twice")
    assert isinstance(loaded, QCoDeSSyncSource)
    assert loaded.static_attributes == {"kept": "3"}  # no merge with the old document
    mirror.delete("twice")
    with pytest.raises(ValueError, match="Unable to find block document named twice"):
        QCoDeSSyncSource.load("twice")
    with PrefectRest(PrefectApi(prefect_api, "configured")) as rest:
        assert rest.delete_block(SOURCE_BLOCK_TYPE_SLUG, "twice") is False


def test_rest_register_block_is_idempotent_and_reuses_the_schema(prefect_api: str) -> None:
    registration = load_registrations()[SOURCE_BLOCK_TYPE_SLUG]
    with PrefectRest(PrefectApi(prefect_api, "configured")) as rest:
        first = rest.register_block(registration)
        second = rest.register_block(registration)
    assert first == second
    schema = httpx.get(f"{prefect_api}/block_schemas/{first[1]}").json()
    assert schema["checksum"] == registration.checksum


def test_rest_call_to_api_that_refuses_names_api_action_and_status(prefect_api: str) -> None:
    with (
        PrefectRest(PrefectApi(prefect_api, "configured")) as rest,
        pytest.raises(PrefectRestError, match=r"delete block s/x failed: HTTP 4\d\d"),
    ):
        rest._call("DELETE", "block_documents/not-a-uuid", "delete block s/x")


def _add_one_run_source(tmp_path: Path, name: str) -> None:
    """Register ``name``: a QCoDeS database of one 1-D run, added with ``qops sources add``."""
    db = tmp_path / "lab.db"
    conn, exp = create_db(db)
    run_1d(exp)
    conn.close()
    added = run_qops("sources", "add", name, "--database", str(db), "--set-up", "f")
    assert added.returncode == 0, added.stderr


def test_cli_sync_with_api_records_flow_run_with_logs_and_artifact(
    prefect_api: str, mongo_settings: MongoSettings, mongo_db: Database[Document], tmp_path: Path
) -> None:
    _add_one_run_source(tmp_path, "rec-lab")

    synced = run_qops("sync", "rec-lab", env={"QOPS_CONSOLE_URL": "http://qops.lab:8000"})

    assert synced.returncode == 0, synced.stderr
    match = re.search(
        r"flow run ([0-9a-f-]{36}) of sync-qcodes .*synced in this process", synced.stdout
    )
    assert match is not None, synced.stdout
    flow_run_id = match.group(1)
    flow_run = httpx.get(f"{prefect_api}/flow_runs/{flow_run_id}").json()
    assert flow_run["state"]["type"] == "COMPLETED"
    assert (
        flow_run["state"]["message"] == "rec-lab: 1 new, 0 updated, 0 live, 0 abandoned, 0 failed"
    )
    assert flow_run["parameters"]["source_name"] == "rec-lab"
    assert flow_run["start_time"] is not None
    assert flow_run["end_time"] is not None
    flow = httpx.get(f"{prefect_api}/flows/{flow_run['flow_id']}").json()
    assert flow["name"] == "sync-qcodes"
    body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    (artifact,) = httpx.post(f"{prefect_api}/artifacts/filter", json=body).json()
    assert artifact["key"] == "sync-qcodes-rec-lab"
    assert '"action": "new"' in artifact["data"]
    # QOPS_CONSOLE_URL was set: the run's dataset links to its console page.
    record = mongo_db.datasets.find_one({"source": "rec-lab"})
    assert record is not None
    link = f"[{record['_id']}](http://qops.lab:8000/console/datasets/{record['_id']})"
    assert f'"dataset": "{link}"' in artifact["data"]
    body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}}
    messages = [
        log["message"] for log in httpx.post(f"{prefect_api}/logs/filter", json=body).json()
    ]
    assert "source rec-lab: 1 new, 0 updated, 0 live, 0 abandoned, 0 failed" in messages
    assert mongo_db.datasets.count_documents({"source": "rec-lab"}) == 1


def test_cli_sync_engine_option_runs_the_flow_with_task_runs(
    prefect_api: str, mongo_settings: MongoSettings, mongo_db: Database[Document], tmp_path: Path
) -> None:
    _add_one_run_source(tmp_path, "eng-lab")

    synced = run_qops("sync", "eng-lab", "--engine")

    assert synced.returncode == 0, synced.stderr
    assert "synced in this process" not in synced.stdout
    match = re.search(r"flow run ([0-9a-f-]{36}) of sync-qcodes", synced.stdout)
    assert match is not None, synced.stdout
    body = {"flow_runs": {"id": {"any_": [match.group(1)]}}}
    task_runs = httpx.post(f"{prefect_api}/task_runs/filter", json=body).json()
    assert {t["name"] for t in task_runs} >= {"discover-runs-eng-lab", "sync-run-eng-lab-1"}


def test_cli_sync_with_api_of_unreadable_source_records_failed_flow_run_naming_it(
    prefect_api: str, mongo_settings: MongoSettings, tmp_path: Path
) -> None:
    _add_one_run_source(tmp_path, "gone-lab")
    (tmp_path / "lab.db").unlink()

    synced = run_qops("sync", "gone-lab")

    assert synced.returncode != 0
    assert "gone-lab: discovery failed" in synced.stderr
    match = re.search(r"flow run ([0-9a-f-]{36}) of sync-qcodes", synced.stdout)
    assert match is not None, synced.stdout
    flow_run = httpx.get(f"{prefect_api}/flow_runs/{match.group(1)}").json()
    assert flow_run["state"]["type"] == "FAILED"
    message = flow_run["state"]["message"]
    assert message.startswith("sync of 1 source(s) failed (gone-lab): gone-lab: ")
    assert str(tmp_path / "lab.db") in message
