"""The browser harness itself: the real app served and loaded in Chromium, and its checks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pymongo.database import Database
from selenium.webdriver.common.by import By

from qops.console.app import ConsoleServices, create_app
from qops.mongo import Document
from tests.browser.conftest import (
    ConsoleBrowser,
    ConsoleServer,
    console_services,
    foreign_requests,
    requested_urls,
    severe_entries,
)

StartConsole = Callable[[ConsoleServices | FastAPI], ConsoleServer]


def test_home_page_loads_from_the_loopback_server_without_console_errors(
    serve_console: StartConsole, mongo_db: Database[Document], browser: ConsoleBrowser
) -> None:
    server: ConsoleServer = serve_console(console_services(mongo_db))
    assert server.url.startswith("http://127.0.0.1:")

    browser.open(server.page("/"), "home")

    assert browser.driver.find_element(By.TAG_NAME, "h1").text == "qops console"
    browser.check()
    assert any(url.endswith("/static/qops.css") for url in browser.requests)


def test_inline_script_is_refused_by_the_csp_and_caught_as_a_console_error(
    serve_console: StartConsole, mongo_db: Database[Document], browser: ConsoleBrowser
) -> None:
    app = create_app(console_services(mongo_db))

    def injected() -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html><link rel="icon" href="/static/favicon.svg">'
            "<p>page</p><script>document.title='ran'</script>"
        )

    app.add_api_route("/console/injected", injected)
    server: ConsoleServer = serve_console(app)

    browser.open(server.page("/console/injected"), "harness-injected")
    browser.collect_logs()

    assert browser.driver.title != "ran"
    refused = severe_entries(browser.console)
    assert refused, "the CSP violation was not logged"
    assert "Content Security Policy" in refused[0]["message"]
    browser.console.clear()  # seen and expected: the check after the test starts afresh


@pytest.mark.parametrize(
    ("url", "foreign"),
    [
        ("http://127.0.0.1:8123/static/qops.css", False),
        ("data:image/png;base64,AAAA", False),
        ("blob:http://127.0.0.1:8123/0b1c", False),
        ("http://localhost:8123/", True),
        ("https://cdn.plot.ly/plotly.min.js", True),
        ("http://127.0.0.1.example.org/", True),
        ("ftp://127.0.0.1/x", True),
    ],
)
def test_foreign_requests_flags_every_host_but_the_loopback_address(
    url: str, foreign: bool
) -> None:
    assert foreign_requests([url]) == ([url] if foreign else [])


def test_requested_urls_reads_chromedriver_performance_entries() -> None:
    entry = {
        "message": '{"message": {"method": "Network.requestWillBeSent",'
        ' "params": {"request": {"url": "http://127.0.0.1:1/x"}}}}'
    }
    other = {"message": '{"message": {"method": "Network.responseReceived", "params": {}}}'}
    assert requested_urls([entry, other]) == ["http://127.0.0.1:1/x"]
