"""The dataset pages in Chromium, against really synced QCoDeS runs on the embedded MongoDB.

One lab database is built with QCoDeS (1-D, 2-D, complex, 3-D, two dependents, a run with
markup in its name, tags and attributes, a run whose file is then deleted), synced by the
real sync service into the module's database, and served by the real app.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import numpy as np
import pytest
from pymongo.database import Database
from qcodes import Station
from qcodes.dataset import Measurement
from qcodes.dataset.data_set import DataSet
from qcodes.dataset.experiment_container import Experiment
from qcodes.parameters import ManualParameter
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from qops.catalog.models import dataset_uuid
from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.console.app import create_app
from qops.export.store import LocalDirStore
from qops.mongo import Document
from qops.qcodes.instrument import QHMetaData
from tests.browser.conftest import ConsoleBrowser, ConsoleServer, console_services, running_console
from tests.unit.qcodes.qcodes_dbs import create_db, run_1d, run_2d, run_two_dependents

SCOPE = "browser-scope"
MARKUP_NAME = "<script>alert(1)</script>"
MARKUP_TAG = '"><img src=x onerror=alert(1)>'
MARKUP_VALUE = "<b>bold</b>'\"><img src=x onerror=alert(2)>"


def _complex(exp: Experiment) -> DataSet:
    frequency = ManualParameter("frequency", label="Frequency", unit="Hz")
    s21 = ManualParameter("s21", label="S21", unit="")
    meas = Measurement(exp=exp, name="resonator S21")
    meas.register_parameter(frequency)
    meas.register_parameter(s21, setpoints=(frequency,), paramtype="complex")
    f = np.linspace(5e9, 5.1e9, 400)
    response = 1 - 0.8 / (1 + 2j * (f - 5.05e9) / 2e6)
    with meas.run() as saver:
        for fi, ri in zip(f, response, strict=True):
            saver.add_result((frequency, fi), (s21, ri))
    return saver.dataset


def _cube(exp: Experiment) -> DataSet:
    field = ManualParameter("field", label="Field", unit="T")
    x = ManualParameter("x", label="Gate voltage", unit="V")
    y = ManualParameter("y", label="Bias", unit="mV")
    current = ManualParameter("current", label="Current", unit="A")
    meas = Measurement(exp=exp, name="field cube")
    for p in (field, x, y):
        meas.register_parameter(p)
    meas.register_parameter(current, setpoints=(field, x, y))
    with meas.run() as saver:
        for k in range(3):
            for i in range(8):
                for j in range(6):
                    saver.add_result(
                        (field, 0.1 * k), (x, i * 0.5), (y, j * 1.0), (current, k * 100 + i * j)
                    )
    return saver.dataset


@dataclass
class Lab:
    """The synced runs (dataset uuids) and the server showing them."""

    server: ConsoleServer
    uuids: dict[str, str]
    files: dict[str, Path]


@pytest.fixture(scope="module")
def lab(
    module_mongo_settings: MongoSettings,
    module_mongo_db: Database[Document],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("browser-lab")
    db_path = root / "lab.db"
    conn, exp = create_db(db_path)
    meta = QHMetaData("qh_meta", static_tags=["browser-lab"])
    station = Station(meta)
    guids: dict[str, str] = {}
    try:
        meta.add_tags(["t1-sweep"])
        meta.add_attributes({"qubit": "Q1"})
        guids["line"] = run_1d(exp, n=200, name="qubit sweep").guid
        meta.reset()
        meta.add_attributes({"qubit": "Q2"})
        guids["map"] = run_2d(exp, nx=30, ny=20).guid
        meta.reset()
        meta.add_tags(["spectroscopy"])
        guids["complex"] = _complex(exp).guid
        guids["cube"] = _cube(exp).guid
        guids["two"] = run_two_dependents(exp).guid
        meta.reset()
        meta.add_tags([MARKUP_TAG])
        meta.add_attributes({"note": MARKUP_VALUE, MARKUP_TAG: "key with markup"})
        guids["markup"] = run_1d(exp, n=20, name=MARKUP_NAME).guid
        meta.reset()
        meta.add_tags(["file-gone"])
        guids["missing"] = run_1d(exp, n=10, name="deleted file").guid
    finally:
        meta.close()
        Station.default = None
        del station
        conn.close()
    SyncSources.create(
        name="browser-lab",
        backend_identifier="qcodes",
        config_data={"database_path": str(db_path), "set_up": "fridge-7"},
        default_scope=SCOPE,
        settings=module_mongo_settings,
    )
    service = SyncService(module_mongo_db, LocalDirStore(root / "files"), SyncSettings())
    service.ensure_indexes()
    outcomes = service.sync_source("browser-lab")
    assert {o.action for o in outcomes} == {"new"}, outcomes
    uuids = {key: dataset_uuid(SCOPE, guid) for key, guid in guids.items()}
    files: dict[str, Path] = {}
    for key, uuid in uuids.items():
        record = module_mongo_db.datasets.find_one({"_id": uuid})
        assert record is not None, key
        files[key] = Path(record["files"][-1]["location"])
    files["missing"].unlink()
    with running_console(create_app(console_services(module_mongo_db))) as server:
        yield Lab(server=server, uuids=uuids, files=files)


def _plot(driver: WebDriver) -> str | None:
    return driver.find_element(By.ID, "plot").get_attribute("data-plot-drawn")


def _open_dataset(browser: ConsoleBrowser, lab: Lab, key: str, name: str) -> None:
    browser.open(lab.server.page(f"/console/datasets/{lab.uuids[key]}"), name)
    browser.wait_for(_plot)


def _traces(browser: ConsoleBrowser) -> list[dict[str, object]]:
    """The drawn graph's traces as Plotly holds them once drawn (``_fullData``: the heat
    maps' typed arrays decoded): type, name and point counts."""
    traces: list[dict[str, object]] = browser.script(
        """
        return document.getElementById("plot")._fullData.map(function (t) {
          var z = t.z ? Array.prototype.slice.call(t.z) : [];
          return {type: t.type, name: t.name, x: t.x ? t.x.length : 0,
                  y: t.y ? t.y.length : 0, zRows: z.length, zCols: z.length ? z[0].length : 0};
        });
        """
    )
    return traces


def _status(url: str) -> tuple[int, str, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=30) as answer:
            return answer.status, answer.headers["content-type"], answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["content-type"], e.read().decode()


def test_search_by_tag_from_the_form_lists_the_dataset(lab: Lab, browser: ConsoleBrowser) -> None:
    browser.open(lab.server.page("/console/datasets"), "datasets-search")
    box = browser.driver.find_element(By.NAME, "tag")
    box.send_keys("t1-sweep", Keys.ENTER)
    browser.wait_for(lambda d: "tag=t1-sweep" in d.current_url)

    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert [r.get_attribute("data-uuid") for r in rows] == [lab.uuids["line"]]
    assert rows[0].find_element(By.CSS_SELECTOR, "td.name").text == "qubit sweep"
    assert "fridge-7" in rows[0].text
    assert browser.driver.find_element(By.ID, "total").text == "1 dataset"
    browser.screenshot("datasets-search-by-tag")


def test_search_page_lists_all_newest_first_with_facets_that_filter(
    lab: Lab, browser: ConsoleBrowser
) -> None:
    browser.open(lab.server.page("/console/datasets?tag=browser-lab"), "datasets-list")
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(rows) == len(lab.uuids)
    assert rows[0].get_attribute("data-uuid") == lab.uuids["missing"]  # synced last: newest
    assert browser.driver.find_element(By.ID, "total").text == f"{len(lab.uuids)} datasets"

    facet = browser.driver.find_element(By.CSS_SELECTOR, '[data-facet="qubit"]')
    link = facet.find_element(By.LINK_TEXT, "Q2")
    link.click()
    browser.wait_for(lambda d: "attr=qubit%3DQ2" in d.current_url)
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert [r.get_attribute("data-uuid") for r in rows] == [lab.uuids["map"]]


def test_search_pages_through_results_with_the_next_link(lab: Lab, browser: ConsoleBrowser) -> None:
    seen: list[str] = []
    browser.open(lab.server.page("/console/datasets?tag=browser-lab&limit=3"), "datasets-paged")
    while True:
        rows = browser.driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
        seen += [r.get_attribute("data-uuid") or "" for r in rows]
        nxt = browser.driver.find_elements(By.ID, "next-page")
        if not nxt:
            break
        nxt[0].click()
        browser.wait_for(lambda d: "cursor=" in d.current_url)
    assert sorted(seen) == sorted(lab.uuids.values())
    assert len(seen) == len(set(seen))


def test_one_dimensional_dataset_page_shows_metadata_and_a_line_with_points(
    lab: Lab, browser: ConsoleBrowser
) -> None:
    _open_dataset(browser, lab, "line", "dataset-1d")

    assert browser.driver.find_element(By.ID, "dataset-name").text == "qubit sweep"
    metadata = browser.driver.find_element(By.ID, "metadata").text
    assert "t1-sweep" in metadata
    assert SCOPE in metadata
    assert "browser-lab" in metadata
    attributes = browser.driver.find_element(By.ID, "attributes").text
    assert "qubit Q1" in attributes
    assert "set-up fridge-7" in attributes
    assert "1" in browser.driver.find_element(By.ID, "files").text
    download = browser.driver.find_element(By.ID, "download")
    href = download.get_attribute("href")
    assert href == lab.server.page(f"/datasets/{lab.uuids['line']}/file")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(href, timeout=30) as answer:
        assert answer.read() == lab.files["line"].read_bytes()
    (trace,) = _traces(browser)
    assert trace["type"] == "scatter"
    assert trace["x"] == trace["y"] == 200
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#plot .scatterlayer path.js-line")


def test_two_dimensional_dataset_page_shows_a_heat_map(lab: Lab, browser: ConsoleBrowser) -> None:
    _open_dataset(browser, lab, "map", "dataset-2d")

    (trace,) = _traces(browser)
    assert trace["type"] == "heatmap"
    assert (trace["x"], trace["y"]) == (30, 20)
    assert (trace["zRows"], trace["zCols"]) == (20, 30)
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#plot .heatmaplayer image")


def test_complex_dataset_page_shows_magnitude_and_phase(lab: Lab, browser: ConsoleBrowser) -> None:
    _open_dataset(browser, lab, "complex", "dataset-complex")

    traces = _traces(browser)
    assert [t["name"] for t in traces] == ["magnitude", "phase (rad)"]
    assert all(t["x"] == 400 for t in traces)


def test_three_dimensional_dataset_page_has_a_slice_selector(
    lab: Lab, browser: ConsoleBrowser
) -> None:
    _open_dataset(browser, lab, "cube", "dataset-3d")
    (trace,) = _traces(browser)
    assert trace["type"] == "heatmap"
    assert (trace["zRows"], trace["zCols"]) == (6, 8)
    selector = browser.driver.find_element(By.CSS_SELECTOR, 'input[type=range][data-dim="field"]')
    assert selector.get_attribute("max") == "2"
    title = browser.script("return document.getElementById('plot').layout.title.text;")
    assert "field=0" in title

    browser.script(
        "arguments[0].value = '2'; arguments[0].dispatchEvent(new Event('change'));", selector
    )
    browser.wait_for(
        lambda d: (
            _plot(d)
            and "field=0.2"
            in d.execute_script("return document.getElementById('plot').layout.title.text;")
        )
    )
    browser.screenshot("dataset-3d-sliced")


def test_variable_picker_switches_between_dependents(lab: Lab, browser: ConsoleBrowser) -> None:
    _open_dataset(browser, lab, "two", "dataset-two-dependents")
    picker = browser.driver.find_element(By.ID, "variable")
    options = [o.get_attribute("value") for o in picker.find_elements(By.TAG_NAME, "option")]
    assert options == ["z", "w"] or sorted(options) == ["w", "z"]
    first = browser.script("return document.getElementById('plot').data[0].type;")
    other = next(o for o in options if o != picker.get_attribute("value"))

    browser.script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'));",
        picker,
        other,
    )
    browser.wait_for(lambda d: _plot(d) == other)
    assert browser.script("return document.getElementById('plot').data[0].type;") != first


def test_markup_in_name_tags_and_attributes_shows_as_text(
    lab: Lab, browser: ConsoleBrowser
) -> None:
    query = urlencode({"tag": MARKUP_TAG})
    browser.open(lab.server.page(f"/console/datasets?{query}"), "datasets-markup-search")
    browser.assert_no_alert()
    (row,) = browser.driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert row.find_element(By.CSS_SELECTOR, "td.name").text == MARKUP_NAME
    assert MARKUP_TAG in row.text
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "main img, main script")

    _open_dataset(browser, lab, "markup", "dataset-markup")
    browser.assert_no_alert()
    assert browser.driver.find_element(By.ID, "dataset-name").text == MARKUP_NAME
    assert browser.driver.title.startswith(MARKUP_NAME)
    assert MARKUP_TAG in browser.driver.find_element(By.ID, "metadata").text
    attributes = browser.driver.find_element(By.ID, "attributes").text
    assert MARKUP_VALUE in attributes
    assert MARKUP_TAG in attributes
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "main img, main script, main b")
    plot_title = browser.script("return document.getElementById('plot').layout.title.text;")
    assert plot_title == "Current (z) [A]"


def test_dataset_whose_file_is_missing_says_so_and_shows_its_metadata(
    lab: Lab, browser: ConsoleBrowser
) -> None:
    browser.open(
        lab.server.page(f"/console/datasets/{lab.uuids['missing']}"), "dataset-missing-file"
    )

    problem = browser.driver.find_element(By.ID, "file-problem").text
    assert "missing" in problem
    assert lab.files["missing"].name in problem
    assert browser.driver.find_element(By.ID, "dataset-name").text == "deleted file"
    assert "file-gone" in browser.driver.find_element(By.ID, "metadata").text
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#files tbody tr")
    assert not browser.driver.find_elements(By.ID, "plot")
    status, _, _ = _status(lab.server.page(f"/console/datasets/{lab.uuids['missing']}"))
    assert status == 200


def test_unknown_dataset_is_a_404_page(lab: Lab, browser: ConsoleBrowser) -> None:
    url = lab.server.page("/console/datasets/" + quote("no-such-dataset"))
    status, content_type, body = _status(url)
    assert status == 404
    assert content_type.startswith("text/html")
    assert "no-such-dataset" in body

    browser.open(url, "dataset-404")
    assert browser.driver.find_element(By.TAG_NAME, "h1").text == "Not found"
    assert "no-such-dataset" in browser.driver.find_element(By.CSS_SELECTOR, "p.error").text
    browser.expect_console("404 (Not Found)")


def test_malformed_search_parameter_is_a_422_page_naming_it(
    lab: Lab, browser: ConsoleBrowser
) -> None:
    url = lab.server.page("/console/datasets?collected_after=last+tuesday")
    status, content_type, _body = _status(url)
    assert status == 422
    assert content_type.startswith("text/html")

    browser.open(url, "datasets-422")
    assert browser.driver.find_element(By.TAG_NAME, "h1").text == "Bad request"
    assert "collected_after" in browser.driver.find_element(By.CSS_SELECTOR, "p.error").text
    browser.expect_console("422 (Unprocessable")
