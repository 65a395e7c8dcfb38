"""The console's quick-look plot of a 1000 x 1000 map: time from navigation to the plot drawn.

Usage: .venv/bin/python bench/console_plot.py [--size 1000] [--repeats 5]

A QCoDeS database with one ``size x size`` map (``size`` rows of ``size``-point arrays,
written with QCoDeS), synced by the real sync service into a temporary embedded MongoDB,
served by the real app (``qops.console.app.create_app``) under uvicorn on 127.0.0.1, and
opened in Debian's headless Chromium (1400 x 1000) at ``/console/datasets/{uuid}``.

Measured per page load: the time from navigation start to the ``qops-plot-drawn``
performance mark (set by ``datasets-plot.js`` when ``Plotly.newPlot`` has drawn), the
server's time to open the HDF5 file and to reduce the data (its ``Server-Timing`` header),
the plot JSON's size, and the grid drawn. Cold: the browser cache disabled, so plotly.js
(4.6 MB) is fetched and compiled on every load; warm: the cache on, as a person's second
look. Goal (issue 10): <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from qcodes.dataset import Measurement, load_or_create_experiment
from qcodes.dataset.sqlite.database import connect as qcodes_connect
from qcodes.parameters import ManualParameter
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from qops.catalog.models import dataset_uuid
from qops.catalog.service import SyncService
from qops.catalog.settings import SyncSettings
from qops.catalog.sources import SyncSources
from qops.config import MongoSettings
from qops.console.app import create_app
from qops.export.store import LocalDirStore
from qops.mongo import EmbeddedMongo, connect
from tests.browser.conftest import (
    CHROMEDRIVER,
    _chrome_options,
    console_services,
    running_console,
)

SCOPE = "bench"


def _build_map(path: Path, size: int) -> str:
    """Write one ``size x size`` map with QCoDeS; return the run's guid."""
    conn = qcodes_connect(path)
    exp = load_or_create_experiment("bench", sample_name="sample", conn=conn)
    gate = ManualParameter("gate", label="Gate voltage", unit="V")
    frequency = ManualParameter("frequency", label="Frequency", unit="Hz")
    signal = ManualParameter("signal", label="Signal", unit="V")
    meas = Measurement(exp=exp, name=f"map {size}x{size}")
    meas.register_parameter(gate, paramtype="array")
    meas.register_parameter(frequency, paramtype="array")
    meas.register_parameter(signal, setpoints=(gate, frequency), paramtype="array")
    meas.set_shapes({"signal": (size, size)})
    frequencies = np.linspace(4e9, 6e9, size)
    rng = np.random.default_rng(0)
    with meas.run() as saver:
        for i in range(size):
            values = np.sin(i / 50) * np.cos(frequencies / 2e8) + 0.05 * rng.standard_normal(size)
            saver.add_result(
                (gate, np.full(size, i * 1e-3)), (frequency, frequencies), (signal, values)
            )
    guid = saver.dataset.guid
    conn.close()
    return guid


def _load(driver: webdriver.Chrome, url: str) -> dict[str, float]:
    driver.get(url)
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script(
            "return performance.getEntriesByName('qops-plot-drawn').length > 0;"
        )
    )
    measured: dict[str, float] = driver.execute_script(
        """
        var drawn = performance.getEntriesByName("qops-plot-drawn")[0].startTime;
        var plot = performance.getEntriesByType("resource").filter(function (r) {
          return r.name.indexOf("/plot?") >= 0;
        })[0];
        var timing = {};
        (plot.serverTiming || []).forEach(function (t) { timing[t.name] = t.duration; });
        var nav = performance.getEntriesByType("navigation")[0];
        return {drawn: drawn, html: nav.responseEnd, plot_start: plot.startTime,
                plot_end: plot.responseEnd, plot_bytes: plot.encodedBodySize,
                open: timing.open, reduce: timing.reduce};
        """
    )
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qops-bench-plot-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        guid = _build_map(root / "lab.db", args.size)
        print(
            f"QCoDeS map {args.size}x{args.size} written in {time.perf_counter() - started:.1f} s"
        )
        embedded = EmbeddedMongo(root / "mongo")
        server = embedded.ensure_running()
        try:
            settings = MongoSettings(
                mongodb_url=SecretStr(server.url), mongodb_db="bench", data_dir=root
            )
            os.environ["QOPS_MONGODB_URL"] = server.url
            db = connect(settings)["bench"]
            SyncSources.create(
                name="bench",
                backend_identifier="qcodes",
                config_data={"database_path": str(root / "lab.db"), "set_up": "bench-fridge"},
                default_scope=SCOPE,
                settings=settings,
            )
            service = SyncService(db, LocalDirStore(root / "files"), SyncSettings())
            service.ensure_indexes()
            started = time.perf_counter()
            service.sync_source("bench")
            print(f"synced in {time.perf_counter() - started:.1f} s")
            uuid = dataset_uuid(SCOPE, guid)
            record = db.datasets.find_one({"_id": uuid})
            assert record is not None
            print(f"HDF5 file: {record['files'][-1]['size'] / 1e6:.1f} MB")
            _measure(create_app(console_services(db)), uuid, args.repeats)
        finally:
            embedded.stop()


def _measure(app: object, uuid: str, repeats: int) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)
    with running_console(app) as console:
        page = console.page(f"/console/datasets/{uuid}")
        plot_url = console.page(f"/console/datasets/{uuid}/plot?width=900&height=520")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(urllib.request.Request(plot_url)) as answer:
            body = answer.read()
            timing = answer.headers["server-timing"]
        plot = json.loads(body)
        z = plot["traces"][0]["z"]
        print(f"plot JSON {len(body) / 1e6:.2f} MB, grid drawn {z['shape']} (y,x), {timing}")
        print(f"reduction: {plot['reduction']}")
        driver = webdriver.Chrome(options=_chrome_options(), service=Service(str(CHROMEDRIVER)))
        try:
            results: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
            for mode in ("cold", "warm"):
                driver.execute_cdp_cmd("Network.enable", {})
                driver.execute_cdp_cmd(
                    "Network.setCacheDisabled", {"cacheDisabled": mode == "cold"}
                )
                if mode == "warm":
                    _load(driver, page)  # fill the cache
                for _ in range(repeats):
                    results[mode].append(_load(driver, page))
                    driver.get("about:blank")
        finally:
            driver.quit()
    print()
    print(
        "| load | navigation -> plot drawn | HTML | plot request (start -> end) "
        "| server open + reduce | plot JSON |"
    )
    print("|---|---|---|---|---|---|")
    for mode, runs in results.items():

        def med(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        drawn = [r["drawn"] for r in runs]
        print(
            f"| {mode} (median of {len(runs)}; min {min(drawn):.0f}, max {max(drawn):.0f} ms) "
            f"| {med('drawn'):.0f} ms | {med('html'):.0f} ms "
            f"| {med('plot_start'):.0f} -> {med('plot_end'):.0f} ms "
            f"| {med('open'):.0f} + {med('reduce'):.0f} ms "
            f"| {med('plot_bytes') / 1e6:.2f} MB |"
        )


if __name__ == "__main__":
    main()
