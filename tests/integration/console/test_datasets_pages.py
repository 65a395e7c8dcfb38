"""The dataset pages and the plot endpoint over HTTP, on really synced QCoDeS runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database
from qcodes import Station

from qops.catalog.models import dataset_uuid
from qops.catalog.search import CatalogQueryService
from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.console.app import ConsoleServices, create_app
from qops.export.store import LocalDirStore
from qops.mongo import Document
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from qops.qcodes.instrument import QHMetaData
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d, run_2d

MARKUP = "<script>alert(1)</script>"
JSON = {"Accept": "application/json"}


@pytest.fixture
def synced(
    tmp_path: Path, mongo_settings: MongoSettings, mongo_db: Database[Document]
) -> tuple[TestClient, dict[str, str]]:
    conn, exp = create_db(tmp_path / "lab.db")
    meta = QHMetaData("qh_meta")
    Station(meta)
    try:
        meta.add_tags([MARKUP])
        line = run_1d(exp, n=30, name=MARKUP).guid
        meta.reset()
        grid = run_2d(exp, nx=120, ny=30).guid
        gone = run_1d(exp, n=5, name="gone").guid
    finally:
        meta.close()
        Station.default = None
        conn.close()
    SyncSources.create(
        name="lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(tmp_path / "lab.db"), "set_up": "fridge-1"},
        default_scope="s",
        settings=mongo_settings,
    )
    SyncService(mongo_db, LocalDirStore(tmp_path / "files"), SyncSettings()).sync_source("lab")
    uuids = {k: dataset_uuid("s", g) for k, g in {"line": line, "grid": grid, "gone": gone}.items()}
    record = mongo_db.datasets.find_one({"_id": uuids["gone"]})
    assert record is not None
    Path(record["files"][0]["location"]).unlink()
    provenance = MongoProvenanceRepository(mongo_db)
    catalog = CatalogQueryService(mongo_db)
    catalog.ensure_indexes()
    services = ConsoleServices(provenance=ProvenanceService(provenance, "t"), catalog=catalog)
    return TestClient(create_app(services)), uuids


def test_search_page_escapes_lab_text_and_has_no_inline_script(
    synced: tuple[TestClient, dict[str, str]],
) -> None:
    client, uuids = synced

    page = client.get("/console/datasets", params={"q": "", "tag": MARKUP, "status": ""})

    assert page.status_code == 200
    assert f'data-uuid="{uuids["line"]}"' in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert MARKUP not in page.text
    assert not re.search(r"<script(?![^>]*\ssrc=)", page.text)


def test_blank_form_fields_mean_no_filter(synced: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = synced
    blank = {
        "q": "",
        "tag": "",
        "attr": "",
        "set_up": "",
        "status": "",
        "collected_after": "",
        "collected_before": "",
        "min_ranking": "",
    }

    page = client.get("/console/datasets", params=blank)

    assert page.status_code == 200
    assert '<p class="total" id="total">3 datasets</p>' in page.text


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"attr": "no-equals-sign"}, "attr"),
        ({"status": "finished"}, "status"),
        ({"collected_before": "soon"}, "collected_before"),
        ({"min_ranking": "high"}, "min_ranking"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_malformed_search_parameter_is_a_422_page_naming_it(
    synced: tuple[TestClient, dict[str, str]], params: dict[str, str], parameter: str
) -> None:
    client, _ = synced

    page = client.get("/console/datasets", params=params)

    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert parameter in page.text


def test_dataset_page_links_the_plot_endpoint_and_the_download(
    synced: tuple[TestClient, dict[str, str]],
) -> None:
    client, uuids = synced

    page = client.get(f"/console/datasets/{uuids['grid']}")

    assert page.status_code == 200
    assert f'data-plot-url="/console/datasets/{uuids["grid"]}/plot"' in page.text
    assert f'href="/datasets/{uuids["grid"]}/file"' in page.text
    assert '<script src="/static/vendor/plotly/plotly.min.js" defer></script>' in page.text
    assert not re.search(r"<script(?![^>]*\ssrc=)", page.text)
    assert "fridge-1" in page.text


def test_plot_endpoint_answers_the_reduced_plot_with_its_timing(
    synced: tuple[TestClient, dict[str, str]],
) -> None:
    client, uuids = synced

    answer = client.get(
        f"/console/datasets/{uuids['grid']}/plot", params={"width": 60, "height": 50}, headers=JSON
    )

    assert answer.status_code == 200
    plot = answer.json()
    assert plot["kind"] == "heatmap"
    assert plot["variable"] == "z"
    assert plot["traces"][0]["z"]["shape"] == "30,60"  # 120 x-cells in blocks of 2 (60 px)
    assert plot["shape"] == [120, 30]
    assert "open;dur=" in answer.headers["server-timing"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"var": "nope"}, "var"),
        ({"slice": "x"}, "slice"),
        ({"slice": "x=0"}, "slice"),
        ({"width": "10"}, "width"),
        ({"height": "tall"}, "height"),
    ],
)
def test_malformed_plot_parameter_is_a_422_naming_it(
    synced: tuple[TestClient, dict[str, str]], params: dict[str, str], parameter: str
) -> None:
    client, uuids = synced

    answer = client.get(f"/console/datasets/{uuids['grid']}/plot", params=params, headers=JSON)

    assert answer.status_code == 422
    assert parameter in str(answer.json()["detail"])


def test_unknown_dataset_is_404_as_page_and_as_plot_json(
    synced: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = synced

    page = client.get("/console/datasets/nope")
    plot = client.get("/console/datasets/nope/plot", headers=JSON)

    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert plot.status_code == 404
    assert plot.json()["error"] == "DatasetNotFoundError"


def test_missing_file_page_says_so_and_the_plot_is_404(
    synced: tuple[TestClient, dict[str, str]],
) -> None:
    client, uuids = synced

    page = client.get(f"/console/datasets/{uuids['gone']}")
    plot = client.get(f"/console/datasets/{uuids['gone']}/plot", headers=JSON)

    assert page.status_code == 200
    assert 'id="file-problem"' in page.text
    assert "missing" in page.text
    assert 'id="plot"' not in page.text
    assert plot.status_code == 404
    assert plot.json()["error"] == "DatasetFileMissingError"
