"""The provenance and chip pages in Chromium, against really recorded calibrations.

Two calibrations of a simulated two-qubit chip are recorded on the embedded MongoDB as the
``calibrate`` flow records them (tests/browser/calibrated.py), their QCoDeS runs synced into
the catalog, and the real app serves them; each test asserts what a person sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from qops.backend.state import MongoBackendStateStore
from qops.catalog.search import CatalogQueryService
from qops.console.app import ConsoleServices, create_app
from qops.console.chip_data import CatalogCalibrationDatasets
from qops.mongo import EmbeddedServer, database
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from tests.browser.calibrated import (
    CHIP,
    MARKUP_PARAMETER,
    MARKUP_QID,
    MARKUP_VALUE,
    PROJECT,
    CalibratedLab,
    calibrated_lab,
)
from tests.browser.conftest import ConsoleBrowser, ConsoleServer, running_console

PREFECT_UI = "http://127.0.0.1:4200"


@dataclass
class Served:
    """The recorded calibrations and the server showing them."""

    lab: CalibratedLab
    server: ConsoleServer


@pytest.fixture(scope="module")
def served(
    embedded_mongo: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    data_dir: Path = tmp_path_factory.mktemp("calibrated")
    with calibrated_lab(embedded_mongo, data_dir) as lab:
        db = database(lab.settings)
        repository = MongoProvenanceRepository(db)
        repository.ensure_indexes()
        catalog = CatalogQueryService(db)
        catalog.ensure_indexes()
        services = ConsoleServices(
            provenance=ProvenanceService(repository, PROJECT),
            catalog=catalog,
            backend_state=MongoBackendStateStore(db),
            calibration_datasets=CatalogCalibrationDatasets(catalog),
            prefect_ui_url=PREFECT_UI,
        )
        with running_console(create_app(services)) as server:
            yield Served(lab, server)


def _plotted_points(driver: WebDriver) -> str | None:
    return driver.find_element(By.ID, "history-plot").get_attribute("data-rendered")


def _entity_path(entity_id: str, query: str = "") -> str:
    return f"/console/entities/{quote(entity_id, safe='')}{query}"


def test_history_page_shows_every_version_and_a_plot_with_points(
    served: Served, browser: ConsoleBrowser
) -> None:
    browser.open(served.server.page("/console/parameters/t1/Q0"), "parameter-history")
    assert browser.wait_for(_plotted_points) == "2"
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert [r.get_attribute("data-version") for r in rows] == ["2", "1"]
    assert " s " in rows[0].text
    assert "current" in rows[0].text
    assert "calibration-2" in rows[0].text
    assert "calibration-1" in rows[1].text
    # Plotly drew two markers with error bars, styled by its rules from the server's sheet.
    markers = browser.driver.find_elements(By.CSS_SELECTOR, "#history-plot .scatterlayer .point")
    assert len(markers) == 2
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#history-plot .errorbar")
    position = browser.script(
        "return getComputedStyle(document.querySelector('#history-plot .main-svg')).position"
    )
    assert position == "absolute"


def test_lineage_picture_shows_nodes_and_clicking_one_opens_it(
    served: Served, browser: ConsoleBrowser
) -> None:
    entity = served.lab.after.entity_id("t1", "Q0")
    browser.open(served.server.page(_entity_path(entity, "?depth=2")), "execution-from-graph")
    browser.screenshot("entity-lineage")
    texts = [t.text for t in browser.driver.find_elements(By.CSS_SELECTOR, "#graph svg text")]
    for expected in ("t1 Q0 v2", "CheckT1 Q0", "pi_amplitude Q0 v2", "qubit_frequency Q0 v2"):
        assert expected in texts, texts
    assert "t1 Q0 v1" in texts
    legend = browser.driver.find_element(By.ID, "legend").text
    for relation in ("wasGeneratedBy", "used", "wasDerivedFrom"):
        assert relation in legend
    # Click the input version pi_amplitude: its own entity page, same direction and depth.
    node = next(
        n
        for n in browser.driver.find_elements(By.CSS_SELECTOR, "#graph g.node")
        if "pi_amplitude Q0 v2" in n.text
    )
    node.find_element(By.CSS_SELECTOR, "a").click()
    browser.wait_for(lambda d: "pi_amplitude%3AQ0" in d.current_url)
    assert browser.driver.find_element(By.TAG_NAME, "h1").text == "pi_amplitude of Q0 version 2"
    assert "depth=2" in browser.driver.current_url
    browser.screenshot("entity-lineage-clicked")
    # Click the task run that wrote it: the execution page.
    activity = next(
        n
        for n in browser.driver.find_elements(By.CSS_SELECTOR, "#graph g.node.activity")
        if "CheckRabi Q0" in n.text
    )
    activity.find_element(By.CSS_SELECTOR, "a").click()
    browser.wait_for(lambda d: d.current_url.endswith("/console/executions/calibration-2"))


def test_fitted_from_leads_to_the_runs_plot_and_back_to_what_was_fitted_from_it(
    served: Served, browser: ConsoleBrowser
) -> None:
    entity = served.lab.after.entity_id("t1", "Q0")
    browser.open(served.server.page(_entity_path(entity, "?depth=1")), "entity-fitted-from")
    fitted = browser.driver.find_element(By.ID, "fitted-from")
    assert "CheckT1" in fitted.text
    # The run is drawn as a raw measurement, a kind of its own in the legend.
    datasets = browser.driver.find_elements(By.CSS_SELECTOR, "#graph g.node.dataset")
    assert len(datasets) == 1
    assert "CheckT1" in datasets[0].text
    assert "raw measurement (QCoDeS run)" in browser.driver.find_element(By.ID, "legend").text
    # Quick look: the catalog dataset page of the run, its plot drawn.
    fitted.find_element(By.CSS_SELECTOR, "a.quick-look").click()
    browser.wait_for(lambda d: "/console/datasets/" in d.current_url)
    browser.wait_for(lambda d: d.find_element(By.ID, "plot").get_attribute("data-plot-drawn"))
    provenance = browser.driver.find_element(By.ID, "provenance")
    assert "calibration-lab" in provenance.text
    assert "t1 Q0 v2" in provenance.text
    browser.screenshot("dataset-provenance")
    # Its impact: the raw measurement's page with the version fitted from it.
    provenance.find_element(By.ID, "provenance-impact").click()
    browser.wait_for(lambda d: "direction=impact" in d.current_url)
    graph = browser.driver.find_element(By.ID, "graph")
    assert "t1 Q0 v2" in graph.text
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#graph g.node.origin.dataset")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#graph g.node.dataset_file")


def test_depth_selector_and_impact_direction_change_the_picture(
    served: Served, browser: ConsoleBrowser
) -> None:
    entity = served.lab.before.entity_id("qubit_frequency", "Q0")
    browser.open(
        served.server.page(_entity_path(entity, "?direction=impact&depth=1")), "impact-depth-4"
    )
    browser.screenshot("impact-depth-1")

    def count() -> int:
        return len(browser.driver.find_elements(By.CSS_SELECTOR, "#graph g.node"))

    shallow = count()
    Select(browser.driver.find_element(By.ID, "depth")).select_by_value("4")
    browser.driver.find_element(By.CSS_SELECTOR, "#graph-form button").click()
    browser.wait_for(lambda d: "depth=4" in d.current_url)
    assert "direction=impact" in browser.driver.current_url
    assert count() > shallow
    texts = browser.driver.find_element(By.ID, "graph").text
    assert "CheckRabi Q0" in texts
    assert "t2_echo Q0 v2" in texts


def test_executions_list_then_compare_shows_the_changed_parameters(
    served: Served, browser: ConsoleBrowser
) -> None:
    browser.open(served.server.page("/console/executions"), "compare")
    browser.screenshot("executions")
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#executions tbody tr")
    order = [r.get_attribute("data-execution") for r in rows]
    assert order == ["markup-run", "calibration-2", "calibration-1"]  # newest first
    assert "t1 Q0" in rows[1].text
    rows[1].find_element(By.LINK_TEXT, "calibration-2").click()
    browser.wait_for(lambda d: d.current_url.endswith("/console/executions/calibration-2"))
    versions = browser.driver.find_element(By.ID, "versions").text
    assert "cz_fidelity" in versions
    assert browser.driver.find_element(By.ID, "prefect-run").get_attribute("href") == (
        f"{PREFECT_UI}/runs/flow-run/calibration-2"
    )
    browser.screenshot("execution")
    before = Select(browser.driver.find_element(By.NAME, "before"))
    assert before.first_selected_option.text == "calibration-1"  # the one before it
    browser.driver.find_element(By.CSS_SELECTOR, "#compare-form button").click()
    browser.wait_for(lambda d: "/console/compare?" in d.current_url)
    changed = browser.driver.find_elements(By.CSS_SELECTOR, "#changed tbody tr")
    names = {tuple(r.text.split()[:2]) for r in changed}
    assert ("t1", "Q0") in names
    assert ("qubit_frequency", "Q1") in names
    assert ("cz_fidelity", "Q0-Q1") in names
    assert all("%" in r.text for r in changed)


def test_chip_page_shows_each_qubits_values_the_state_and_calibration_links(
    served: Served, browser: ConsoleBrowser
) -> None:
    repository = MongoProvenanceRepository(database(served.lab.settings))
    current = repository.current_versions(PROJECT, CHIP.chip_id)
    browser.open(served.server.page(f"/console/chips/{CHIP.chip_id}"), "chip-dataset")
    browser.screenshot("chip")
    assert browser.driver.find_element(By.CSS_SELECTOR, "#state .state").text == "IDLE"
    for version in current:
        table = "pairs" if "-" in version.qid else "qubits"
        cell = browser.driver.find_element(
            By.CSS_SELECTOR,
            f'#{table} tr[data-qid="{version.qid}"] td[data-parameter="{version.parameter_name}"]',
        )
        assert f"{version.value:.6g}" in cell.text
    row = browser.driver.find_element(
        By.CSS_SELECTOR, '#calibrations tr[data-execution="calibration-2"]'
    )
    assert row.find_element(By.CSS_SELECTOR, "a.prefect").get_attribute("href") == (
        f"{PREFECT_UI}/runs/flow-run/calibration-2"
    )
    datasets = row.find_elements(By.CSS_SELECTOR, "a.dataset")
    assert len(datasets) == len(served.lab.after.outcomes)
    next(d for d in datasets if d.text == "CheckT1 Q0").click()
    browser.wait_for(lambda d: "/console/datasets/" in d.current_url)
    assert "CheckT1" in browser.driver.find_element(By.TAG_NAME, "h1").text
    browser.wait_for(lambda d: d.find_element(By.ID, "plot").get_attribute("data-plot-drawn"))


def test_chip_page_shows_offline_with_the_operators_reason(
    served: Served, browser: ConsoleBrowser
) -> None:
    store = MongoBackendStateStore(database(served.lab.settings))
    store.set_offline(CHIP.chip_id, True, "fridge warm-up")
    try:
        browser.open(served.server.page(f"/console/chips/{CHIP.chip_id}"), "chip-offline")
        state = browser.driver.find_element(By.ID, "state").text
        assert "OFFLINE" in state
        assert "fridge warm-up" in state
    finally:
        store.set_offline(CHIP.chip_id, False)


def test_markup_in_lab_text_shows_as_text_in_the_picture_and_tables(
    served: Served, browser: ConsoleBrowser
) -> None:
    browser.open(served.server.page(_entity_path(served.lab.markup_entity_id)), "entity-markup")
    browser.assert_no_alert()
    texts = [t.text for t in browser.driver.find_elements(By.CSS_SELECTOR, "#graph svg text")]
    assert texts[0].startswith(f"{MARKUP_PARAMETER} ")  # long labels end in "…"
    assert f"<i>check</i> {MARKUP_QID}" in texts
    assert f"{MARKUP_VALUE} <sup>Hz</sup>" in texts
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "#graph img, #graph script")
    assert MARKUP_PARAMETER in browser.driver.find_element(By.TAG_NAME, "h1").text
    history = f"/console/parameters/{quote(MARKUP_PARAMETER, safe='')}/{quote(MARKUP_QID, safe='')}"
    browser.open(served.server.page(history), "history-markup")
    browser.assert_no_alert()
    assert MARKUP_VALUE in browser.driver.find_element(By.ID, "history").text
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "main img, main svg, main script")


def test_unknown_and_malformed_pages_answer_404_and_422_pages(
    served: Served, browser: ConsoleBrowser
) -> None:
    browser.expect_console("404")
    browser.expect_console("422")
    browser.open(served.server.page("/console/chips/no-such-chip"), "chip-404")
    assert browser.driver.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert "no-such-chip" in browser.driver.find_element(By.CSS_SELECTOR, "p.error").text
    entity = served.lab.after.entity_id("t1", "Q0")
    browser.open(served.server.page(_entity_path(entity, "?depth=0")), "entity-422")
    assert browser.driver.find_element(By.CSS_SELECTOR, "p.error").get_attribute("data-status") == (
        "422"
    )
    assert "depth" in browser.driver.find_element(By.CSS_SELECTOR, "p.error").text
