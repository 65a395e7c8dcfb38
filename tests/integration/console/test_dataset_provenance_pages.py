"""The console's provenance of raw measurements: a version's "Fitted from", the dataset and
file-version entity pages, the catalog dataset page's Provenance section and how the
pictures draw them; on really recorded calibrations whose runs were really synced."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from qops.catalog.models import dataset_uuid
from qops.catalog.search import CatalogQueryService
from qops.console.app import ConsoleServices, create_app
from qops.console.provenance_views import NODE_STYLES, entity_url
from qops.mongo import Document, EmbeddedServer, database
from qops.provenance.ids import EntityKind, dataset_entity_id
from qops.provenance.models import DatasetEntity, Measured
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.browser.calibrated import PROJECT, SCOPE, CalibratedLab, calibrated_lab
from tests.integration.provenance.records import PROJECT as RECORDS_PROJECT
from tests.integration.provenance.records import make_record

STATIC = Path(__file__).parents[3] / "qops" / "console" / "static"


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
        provenance=ProvenanceService(MongoProvenanceRepository(db), PROJECT), catalog=catalog
    )
    return TestClient(create_app(services))


def _t1_run(lab: CalibratedLab) -> tuple[str, DatasetEntity]:
    """The newest t1 version of Q0 and the QCoDeS run it was fitted from."""
    entity = lab.after.entity_id("t1", "Q0")
    outcome = next(o for o in lab.after.outcomes.values() if entity in o.entity_ids.values())
    assert len(outcome.datasets) == 1
    return entity, outcome.datasets[0]


def _page(client: TestClient, entity_id: str, query: str = "") -> str:
    answer = client.get(f"/console/entities/{quote(entity_id, safe='')}{query}")
    assert answer.status_code == 200, answer.text
    return answer.text


def _svg(page: str) -> str:
    return page[page.index("<svg") : page.index("</svg>")]


def test_version_page_shows_the_run_it_was_fitted_from_with_its_catalog_links(
    client: TestClient, lab: CalibratedLab
) -> None:
    entity, run = _t1_run(lab)
    page = _page(client, entity)
    fitted = page[page.index('id="fitted-from"') : page.index("</table>")]
    assert "CheckT1" in fitted
    assert f'<td class="num">{run.run_id}</td>' in fitted
    assert run.source_db is not None
    assert html.escape(run.source_db) in fitted
    assert run.guid in fitted
    uuid = dataset_uuid(SCOPE, run.guid)  # the catalog record of the synced run
    assert f'<a class="catalog-dataset" href="/console/datasets/{uuid}">' in fitted
    assert f'<a class="quick-look" href="/console/datasets/{uuid}#quick-look">' in fitted
    assert html.escape(entity_url(dataset_entity_id(run.guid))) in fitted
    assert "not synced yet" not in fitted
    # The page it links to has the plot under that anchor.
    catalog_page = client.get(f"/console/datasets/{uuid}")
    assert '<section class="plot-section" id="quick-look">' in catalog_page.text


def test_lineage_picture_draws_the_run_as_a_dataset_node_in_the_legend(
    client: TestClient, lab: CalibratedLab
) -> None:
    entity, run = _t1_run(lab)
    page = _page(client, entity, "?depth=1")
    svg = _svg(page)
    node = re.search(r'<g id="node_\d+" class="node entity dataset">(.*?)</g>\s*</g>', svg, re.S)
    assert node is not None, svg
    assert "CheckT1" in node.group(1)
    assert f"run {run.run_id}" in node.group(1)
    link = entity_url(dataset_entity_id(run.guid), "lineage", 1)
    assert f'xlink:href="{link}"' in html.unescape(node.group(1))
    assert f'fill="{NODE_STYLES[EntityKind.DATASET].fill}"' in node.group(1)
    legend = page[page.index('id="legend"') : page.index("</ul>", page.index('id="legend"'))]
    for style in NODE_STYLES.values():
        assert f'<span class="node node-{style.kind}"></span>{style.meaning}' in legend
    assert " style=" not in svg  # the CSP would refuse inline style attributes


def test_legend_fills_are_those_of_the_picture() -> None:
    css = (STATIC / "provenance.css").read_text()
    for style in NODE_STYLES.values():
        assert re.search(rf"\.node-{style.kind} \{{[^}}]*background: {style.fill};", css), style


def test_dataset_entity_page_shows_its_fields_catalog_and_fitted_versions(
    client: TestClient, lab: CalibratedLab
) -> None:
    entity, run = _t1_run(lab)
    page = _page(client, dataset_entity_id(run.guid), "?direction=impact&depth=2")
    facts = page[page.index('id="entity"') : page.index("</dl>")]
    assert run.guid in facts
    assert f"<dd>{run.run_id}</dd>" in facts
    assert f'href="/console/datasets/{dataset_uuid(SCOPE, run.guid)}"' in facts
    assert html.escape(entity_url(entity)) in page  # fitted into
    svg = _svg(page)
    assert 'class="node origin dataset"' in svg
    assert "t1 Q0 v2" in svg
    assert 'class="node entity dataset_file"' in svg  # the synced file, generated from it


def test_file_version_page_links_its_catalog_dataset_and_draws_its_sync(
    client: TestClient, lab: CalibratedLab
) -> None:
    _, run = _t1_run(lab)
    db = database(lab.settings)
    found = ProvenanceService(MongoProvenanceRepository(db), PROJECT).dataset(run.guid)
    file = found.files[0].file
    page = _page(client, file.entity_id)
    assert f'<a id="catalog" href="/console/datasets/{file.dataset_uuid}">' in page
    assert html.escape(entity_url(dataset_entity_id(run.guid))) in page
    assert file.md5 in page
    svg = _svg(page)
    assert 'class="node origin dataset_file"' in svg
    assert "SyncRun" in svg
    assert 'class="node entity dataset"' in svg


def test_catalog_dataset_page_shows_the_runs_provenance(
    client: TestClient, lab: CalibratedLab
) -> None:
    entity, run = _t1_run(lab)
    page = client.get(f"/console/datasets/{dataset_uuid(SCOPE, run.guid)}")
    assert page.status_code == 200
    section = page.text[page.text.index('<section id="provenance">') :]
    files = section[section.index('id="provenance-files"') : section.index("</table>")]
    rows = re.findall(
        r"<tr><td>(\d+)</td><td[^>]*>([^<]+)</td><td>([^<]*)</td><td>([^<]+)</td>", files
    )
    assert len(rows) == 1
    version, synced, source, host = rows[0]
    assert version == "1"
    assert synced.endswith(" UTC")
    assert source == "calibration-lab"
    assert host.strip()
    assert html.escape(entity_url(entity)) in section
    impact = entity_url(dataset_entity_id(run.guid), "impact")
    assert f'id="provenance-impact" href="{html.escape(impact)}"' in section


def test_unsynced_and_markup_runs_show_as_text_and_not_synced_yet(
    mongo_db: Database[Document],
) -> None:
    repository = MongoProvenanceRepository(mongo_db)
    repository.ensure_indexes()
    raw = DatasetEntity(
        guid="aaaaaaaa-0000-0000-0000-0000000000aa",
        name="<img src=x onerror=alert(4)>",
        run_id=4,
        source_db="/lab/<b>fridge</b>.db",
    )
    record = make_record("exec-raw", "t", {"t1": Measured(value=1e-5, unit="s")})
    result = repository.record(record.model_copy(update={"datasets": [raw]}))
    catalog = CatalogQueryService(mongo_db)
    catalog.ensure_indexes()
    app = create_app(
        ConsoleServices(provenance=ProvenanceService(repository, RECORDS_PROJECT), catalog=catalog)
    )
    client = TestClient(app)
    for page in (
        _page(client, result.entity_ids["t1"]),
        _page(client, dataset_entity_id(raw.guid)),
    ):
        assert "not synced yet" in page
        assert raw.name not in page
        assert "<b>fridge" not in page
        assert html.escape(raw.name, quote=False) in _svg(page)
        assert "<img" not in page
