"""The provenance and chip pages over HTTP, on really recorded calibrations."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from qops.backend.state import MongoBackendStateStore
from qops.catalog.search import CatalogQueryService
from qops.console.app import ConsoleServices, create_app
from qops.console.chip_data import CatalogCalibrationDatasets
from qops.console.provenance_views import entity_url, execution_url
from qops.maintenance.health import HealthService
from qops.maintenance.policy import Direction, MaintenancePolicy, ParameterPolicy
from qops.mongo import Document, EmbeddedServer, database
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.browser.calibrated import (
    CHIP,
    MARKUP_CHIP,
    MARKUP_PARAMETER,
    MARKUP_QID,
    MARKUP_VALUE,
    PROJECT,
    CalibratedLab,
    calibrated_lab,
)
from tests.integration.provenance.records import PROJECT as RECORDS_PROJECT
from tests.integration.provenance.records import make_record

PREFECT_UI = "http://127.0.0.1:4200"


@pytest.fixture(scope="module")
def lab(embedded_mongo: EmbeddedServer, qops_data_dir: Path) -> Iterator[CalibratedLab]:
    with calibrated_lab(embedded_mongo, qops_data_dir) as lab:
        yield lab


@pytest.fixture(scope="module")
def client(lab: CalibratedLab) -> TestClient:
    db = database(lab.settings)
    catalog = CatalogQueryService(db)
    catalog.ensure_indexes()
    services = ConsoleServices(
        provenance=ProvenanceService(MongoProvenanceRepository(db), PROJECT),
        catalog=catalog,
        backend_state=MongoBackendStateStore(db),
        calibration_datasets=CatalogCalibrationDatasets(catalog),
        prefect_ui_url=PREFECT_UI,
    )
    return TestClient(create_app(services))


def test_parameter_history_lists_both_versions_and_carries_the_plot(
    client: TestClient, lab: CalibratedLab
) -> None:
    page = client.get("/console/parameters/t1/Q0")
    assert page.status_code == 200
    rows = re.findall(r'<tr data-version="(\d+)">', page.text)
    assert rows == ["2", "1"]
    assert "calibration-1" in page.text
    assert "calibration-2" in page.text
    assert 'data-figure="' in page.text
    assert '<script src="/static/provenance.js"></script>' in page.text
    assert "<script>" not in page.text


def test_parameter_history_of_one_chip_shows_its_chain_and_chip_links_carry_it(
    client: TestClient, lab: CalibratedLab
) -> None:
    """Versions are chained per chip: the chip page links each value's history on its chip."""
    chip_id = CHIP.chip_id
    page = client.get("/console/parameters/t1/Q0", params={"chip": chip_id})
    assert page.status_code == 200
    assert re.findall(r'<tr data-version="(\d+)">', page.text) == ["2", "1"]
    assert f"<td>{html.escape(chip_id)}</td>" in page.text
    assert 'id="all-chips" href="/console/parameters/t1/Q0"' in page.text
    other = client.get("/console/parameters/t1/Q0", params={"chip": "no-such-chip"})
    assert other.status_code == 404
    assert client.get("/console/parameters/t1/Q0", params={"chip": ""}).status_code == 422
    chip_page = client.get(f"/console/chips/{chip_id}")
    assert f'href="/console/parameters/t1/Q0?chip={quote(chip_id, safe="")}"' in chip_page.text


def test_entity_page_draws_lineage_with_nodes_linking_to_their_pages(
    client: TestClient, lab: CalibratedLab
) -> None:
    entity = lab.after.entity_id("t1", "Q0")
    page = client.get(f"/console/entities/{quote(entity, safe='')}", params={"depth": 2})
    assert page.status_code == 200
    svg = html.unescape(page.text[page.text.index("<svg") : page.text.index("</svg>")])
    # the origin, the task run that wrote it and its inputs, by text in the picture
    assert "t1 Q0 v2" in svg
    assert "CheckT1 Q0" in svg
    assert "pi_amplitude Q0 v2" in svg
    assert "t1 Q0 v1" in svg  # wasDerivedFrom the previous version
    assert 'xlink:href="/console/executions/calibration-2"' in svg
    assert "?direction=lineage&depth=2" in svg
    assert "/console/entities/" in svg
    for relation in ("wasGeneratedBy", "used", "wasDerivedFrom"):
        assert relation in page.text  # legend and edge tooltips
    assert " style=" not in svg  # the CSP would refuse inline style attributes


def test_impact_and_depth_change_the_picture(client: TestClient, lab: CalibratedLab) -> None:
    entity = lab.before.entity_id("qubit_frequency", "Q0")
    shallow = client.get(f"/console/entities/{quote(entity, safe='')}?direction=impact&depth=1")
    deep = client.get(f"/console/entities/{quote(entity, safe='')}?direction=impact&depth=4")
    assert shallow.status_code == deep.status_code == 200

    def nodes(page: str) -> int:
        return len(re.findall(r'<g id="node_\d+" class="node (?:entity|activity)"', page))

    assert nodes(deep.text) > nodes(shallow.text) >= 1
    assert "CheckRabi Q0" in deep.text


def test_executions_list_and_page_and_compare(client: TestClient, lab: CalibratedLab) -> None:
    listing = client.get("/console/executions")
    assert listing.status_code == 200
    assert listing.text.index("calibration-2") < listing.text.index("calibration-1")
    assert "t1 Q0" in listing.text

    page = client.get("/console/executions/calibration-2")
    assert page.status_code == 200
    assert f'href="{PREFECT_UI}/runs/flow-run/calibration-2"' in page.text
    assert '<option value="calibration-1">' in page.text
    assert "CheckT2Echo" in page.text

    compare = client.get(
        "/console/compare", params={"before": "calibration-1", "after": "calibration-2"}
    )
    assert compare.status_code == 200
    changed = compare.text[compare.text.index('id="changed"') : compare.text.index('id="added"')]
    for parameter in ("t1", "qubit_frequency", "cz_fidelity"):
        assert parameter in changed
    assert re.search(r"[+-]\d", changed)  # a delta


def test_chip_page_shows_the_values_get_dynamic_serves_and_the_state(
    client: TestClient, lab: CalibratedLab
) -> None:
    repository = MongoProvenanceRepository(database(lab.settings))
    current = {
        (v.parameter_name, v.qid): v for v in repository.current_versions(PROJECT, CHIP.chip_id)
    }
    page = client.get(f"/console/chips/{CHIP.chip_id}")
    assert page.status_code == 200
    assert 'class="state state-IDLE"' in page.text
    for qid in ("Q0", "Q1"):
        assert f'<tr data-qid="{qid}">' in page.text
    assert '<tr data-qid="Q0-Q1">' in page.text
    t1 = current[("t1", "Q1")]
    assert f"{t1.value:.6g}" in page.text
    assert f'href="{PREFECT_UI}/runs/flow-run/calibration-1"' in page.text
    assert 'data-execution="markup-run"' not in page.text  # another chip's calibration

    MongoBackendStateStore(database(lab.settings)).set_offline(CHIP.chip_id, True, "fridge warm-up")
    try:
        offline = client.get(f"/console/chips/{CHIP.chip_id}")
        assert 'class="state state-OFFLINE"' in offline.text
        assert "fridge warm-up" in offline.text
    finally:
        MongoBackendStateStore(database(lab.settings)).set_offline(CHIP.chip_id, False)
    chips = client.get("/console/chips")
    assert f'href="/console/chips/{CHIP.chip_id}"' in chips.text


@pytest.mark.parametrize(
    "path",
    [
        "/console/entities/t1:Q0:nope:nope",
        "/console/executions/nope",
        "/console/chips/nope",
        "/console/parameters/t1/Q99",
        "/console/compare?before=calibration-1&after=nope",
    ],
)
def test_unknown_things_are_html_404_pages(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Not found" in answer.text


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("depth=0", "depth"),
        ("depth=many", "depth"),
        ("depth=51", "depth"),
        ("direction=sideways", "direction"),
    ],
)
def test_malformed_graph_parameters_are_422_pages_naming_them(
    client: TestClient, lab: CalibratedLab, query: str, named: str
) -> None:
    entity = quote(lab.after.entity_id("t1", "Q0"), safe="")
    answer = client.get(f"/console/entities/{entity}?{query}")
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert f"{named}:" in answer.text


def test_malformed_entity_id_and_missing_compare_side_are_422(client: TestClient) -> None:
    assert client.get("/console/entities/not-an-entity").status_code == 422
    missing = client.get("/console/compare?after=calibration-2")
    assert missing.status_code == 422
    assert "before:" in missing.text


def test_plotly_rules_served_as_a_style_sheet(client: TestClient) -> None:
    css = client.get("/static/plotly.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ".js-plotly-plot .plotly .main-svg {position:absolute;" in css.text


def test_markup_in_parameter_qid_value_and_chip_shows_as_text(
    client: TestClient, lab: CalibratedLab
) -> None:
    entity = client.get(f"/console/entities/{quote(lab.markup_entity_id, safe='')}")
    assert entity.status_code == 200
    svg = entity.text[entity.text.index("<svg") : entity.text.index("</svg>")]
    for text in (MARKUP_PARAMETER, MARKUP_QID, MARKUP_VALUE, MARKUP_CHIP, "<i>check</i>"):
        assert text not in entity.text
    assert html.escape(MARKUP_PARAMETER, quote=False) in entity.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in svg  # dot wrote it as XML text
    assert "<script" not in svg
    assert "<img" not in svg
    history = client.get(
        f"/console/parameters/{quote(MARKUP_PARAMETER, safe='')}/{quote(MARKUP_QID, safe='')}"
    )
    assert history.status_code == 200
    assert html.escape(MARKUP_VALUE) in history.text
    assert MARKUP_VALUE not in history.text
    assert "data-figure" not in history.text  # a string value: nothing to plot
    chips = client.get("/console/chips")
    assert MARKUP_CHIP not in chips.text
    assert "chip-&#34;&gt;&lt;b&gt;markup" in chips.text


def test_chip_page_links_each_calibration_to_the_datasets_it_measured(
    client: TestClient, lab: CalibratedLab
) -> None:
    assert lab.synced > 0
    page = client.get(f"/console/chips/{CHIP.chip_id}")
    row = page.text[page.text.index('data-execution="calibration-2"') :]
    row = row[: row.index("</tr>")]
    links = re.findall(r'<a class="dataset" href="/console/datasets/([0-9a-f-]{36})"', row)
    assert len(links) == len(lab.after.outcomes)
    execution = client.get("/console/executions/calibration-2")
    assert all(f"/console/datasets/{uuid}" in execution.text for uuid in links)


def test_chip_health_page_judges_the_calibrated_chip_and_links_its_versions(
    client: TestClient, lab: CalibratedLab
) -> None:
    db = database(lab.settings)
    provenance = ProvenanceService(MongoProvenanceRepository(db), PROJECT)
    # T1 stale after 36 ms: every T1 of the chip is stale by the time the page is judged.
    policy = MaintenancePolicy(
        parameters={"t1": ParameterPolicy(direction=Direction.HIGHER, stale_after_hours=1e-5)}
    )
    strict = TestClient(
        create_app(
            ConsoleServices(
                provenance=provenance,
                catalog=CatalogQueryService(db),
                health=HealthService(provenance, policy),
            )
        )
    )

    chip_page = client.get(f"/console/chips/{CHIP.chip_id}")
    assert f'href="/console/chips/{CHIP.chip_id}/health"' in chip_page.text
    page = strict.get(f"/console/chips/{CHIP.chip_id}/health")

    assert page.status_code == 200, page.text
    t1 = provenance.current_versions(CHIP.chip_id)
    for version in (v for v in t1 if v.parameter_name == "t1"):
        row = re.search(
            rf'<tr data-qid="{version.qid}" data-parameter="t1" data-findings="stale">', page.text
        )
        assert row is not None, version.qid
        assert html.escape(f"/console/entities/{quote(version.entity_id, safe='')}") in page.text
        assert f'<tr data-step="CheckT1" data-target="{version.qid}">' in page.text
    assert '<li class="finding finding-stale" data-finding="stale">stale: <strong>2</strong>' in (
        page.text
    )
    unknown = strict.get("/console/chips/no-such-chip/health")
    assert unknown.status_code == 404
    assert "no calibration of chip" in unknown.text


def test_entity_and_execution_pages_of_ids_holding_a_slash(
    mongo_db: Database[Document],
) -> None:
    repository = MongoProvenanceRepository(mongo_db)
    repository.ensure_indexes()
    recorded = repository.record(make_record("run/7", "task/8", {"t1": 5e-5}))
    entity_id = recorded.entity_ids["t1"]
    assert entity_id == "t1:Q0:run/7:task/8"
    services = ConsoleServices(
        provenance=ProvenanceService(repository, RECORDS_PROJECT),
        catalog=CatalogQueryService(mongo_db),
    )
    client = TestClient(create_app(services))

    page = client.get(entity_url(entity_id))  # the console's own link: "/" as %2F
    assert page.status_code == 200, page.text
    assert "t1 of Q0, version 1" in html.unescape(page.text)
    assert client.get(f"/console/entities/{entity_id}").status_code == 200  # "/" as is
    execution = client.get(execution_url("run/7"))
    assert execution.status_code == 200, execution.text
    assert "Execution <code>run/7</code>" in html.unescape(execution.text)
