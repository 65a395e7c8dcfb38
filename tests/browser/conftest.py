"""The browser-test harness: the real console app under uvicorn, driven by a real Chromium.

- ``running_console(app)``: a context manager serving a FastAPI app (``create_app(...)``)
  under uvicorn on ``127.0.0.1`` and a free port, in a thread of the test process; ready
  when it answers ``/`` (the listening socket is bound before the server starts, so the
  readiness request waits in the kernel's backlog: no sleep, no retry loop).
- ``serve_console``: a factory fixture over it; tests give it their ``ConsoleServices`` (or
  a whole app) and get a :class:`ConsoleServer`, stopped after the test;
  ``console_services(db)`` builds the services ``qops api serve`` would, on a database.
- ``module_mongo_settings`` / ``module_mongo_db``: a database of the module's own on the
  session's embedded MongoDB, for data built once per module (synced runs), dropped after.
- ``chrome`` (session): Debian's ``/usr/bin/chromium`` through ``/usr/bin/chromedriver``,
  headless, 1400x1000, with the browser console and the network (performance) logs on.
  Skipped, with the reason, only when either program is absent.
- ``browser``: a :class:`ConsoleBrowser` over ``chrome`` for one test. After the test it
  saves a screenshot of every page the test opened (``$QOPS_SCREENSHOT_DIR``, default
  ``build/screenshots``) and asserts that the browser logged no SEVERE console entry and
  that every request the pages made went to 127.0.0.1.

Every test under ``tests/browser/`` is marked ``browser`` (select with ``-m browser``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from pymongo.database import Database
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from qops.catalog.search import CatalogQueryService
from qops.config import MongoSettings
from qops.console.app import ConsoleServices, create_app
from qops.mongo import Document, EmbeddedServer, connect
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService

CHROMIUM = Path(os.environ.get("QOPS_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("QOPS_CHROMEDRIVER", "/usr/bin/chromedriver"))
SCREENSHOT_DIR = Path(
    os.environ.get(
        "QOPS_SCREENSHOT_DIR", str(Path(__file__).resolve().parents[2] / "build" / "screenshots")
    )
)
LOOPBACK = "127.0.0.1"
# How long a page may take to do what a test waits for (a plot drawn, a table filled).
PAGE_TIMEOUT = 30.0
_SERVER_START_TIMEOUT = 60.0
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this directory ``browser``."""
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


# --- the server ---------------------------------------------------------------------------


@dataclass
class ConsoleServer:
    """A console app served on the loopback interface.

    Attributes:
        url: The server's base URL, ``http://127.0.0.1:<port>`` (no trailing slash).
        app: The app it serves.
    """

    url: str
    app: FastAPI

    def page(self, path: str) -> str:
        """Return the absolute URL of ``path`` (``/console/datasets``) on this server."""
        return urljoin(self.url + "/", path.lstrip("/"))


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    # Requests to the loopback server must never go through a proxy from the environment.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


@contextlib.contextmanager
def running_console(app: FastAPI) -> Iterator[ConsoleServer]:
    """Serve ``app`` under uvicorn on 127.0.0.1 and a free port until the block ends.

    Raises:
        RuntimeError: The server did not answer ``/`` within a minute, or its thread died.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK, 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name=f"console-{port}", daemon=True
    )
    thread.start()
    url = f"http://{LOOPBACK}:{port}"
    try:
        # The socket already listens, so this request is queued until uvicorn accepts it:
        # the answer is the readiness handshake.
        with _no_proxy_opener().open(url + "/", timeout=_SERVER_START_TIMEOUT) as answer:
            if answer.status != 200:
                raise RuntimeError(f"console at {url} answered / with {answer.status}")
        if not thread.is_alive() or not server.started:
            raise RuntimeError(f"console server thread for {url} is not running")
        yield ConsoleServer(url=url, app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def console_services(db: Database[Document], project_id: str = "browser-test") -> ConsoleServices:
    """The services ``qops api serve`` builds, on ``db`` (indexes created)."""
    provenance = MongoProvenanceRepository(db)
    provenance.ensure_indexes()
    catalog = CatalogQueryService(db)
    catalog.ensure_indexes()
    return ConsoleServices(
        provenance=ProvenanceService(provenance, project_id),
        catalog=catalog,
    )


@pytest.fixture
def serve_console() -> Iterator[Callable[[ConsoleServices | FastAPI], ConsoleServer]]:
    """Return ``start(services_or_app) -> ConsoleServer``; every server stops after the test."""
    with contextlib.ExitStack() as stack:

        def start(what: ConsoleServices | FastAPI) -> ConsoleServer:
            app = what if isinstance(what, FastAPI) else create_app(what)
            return stack.enter_context(running_console(app))

        yield start


@pytest.fixture(scope="module")
def module_mongo_settings(
    embedded_mongo: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MongoSettings]:
    """Settings of a database of this module's own on the embedded server (dropped after)."""
    name = f"browser_{uuid.uuid4().hex[:12]}"
    settings = MongoSettings(
        mongodb_url=SecretStr(embedded_mongo.url),
        mongodb_db=name,
        data_dir=tmp_path_factory.mktemp("browser-data"),
    )
    yield settings
    connect(settings).drop_database(name)


@pytest.fixture(scope="module")
def module_mongo_db(module_mongo_settings: MongoSettings) -> Database[Document]:
    """The module's own database on the embedded server."""
    return connect(module_mongo_settings)[module_mongo_settings.mongodb_db]


# --- the browser --------------------------------------------------------------------------


def _chrome_options() -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--window-size=1400,1000",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        # Nothing but the pages may talk to the network: no proxy, no updates, no sync.
        "--no-proxy-server",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--disable-features=Translate,OptimizationHints,MediaRouter",
    ):
        options.add_argument(argument)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Chromium's sandbox refuses to run as root (containers, CI).
        options.add_argument("--no-sandbox")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # An alert left open fails the next command of the test (markup run as script shows).
    options.set_capability("unhandledPromptBehavior", "dismiss and notify")
    return options


@pytest.fixture(scope="session")
def chrome() -> Iterator[WebDriver]:
    """One headless Chromium for the session (skipped when Chromium is not installed)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(
            f"browser tests need Debian's chromium and chromium-driver: {', '.join(missing)} "
            "not found (scripts/system-deps.sh installs them)"
        )
    driver = webdriver.Chrome(options=_chrome_options(), service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def severe_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the console entries logged at level SEVERE (errors, CSP violations, 404s)."""
    return [e for e in entries if e.get("level") == "SEVERE"]


def requested_urls(performance_entries: list[dict[str, Any]]) -> list[str]:
    """Return the URLs of the requests in ChromeDriver's performance log entries."""
    urls = []
    for entry in performance_entries:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


# Not network requests: inline data, blobs the page made itself, the empty page.
_LOCAL_SCHEMES = {"data", "blob", "about"}


def foreign_requests(urls: list[str], host: str = LOOPBACK) -> list[str]:
    """Return the URLs that went anywhere but ``host`` (``data:`` and ``blob:`` are local)."""
    foreign = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in _LOCAL_SCHEMES:
            continue
        if parts.scheme not in {"http", "https", "ws", "wss"} or parts.hostname != host:
            foreign.append(url)
    return foreign


@dataclass
class ConsoleBrowser:
    """One test's use of the session's Chromium.

    :meth:`open` loads a page under a name; :meth:`finish` (called after the test) saves a
    screenshot of each opened page as ``<name>.png`` and asserts no SEVERE console entry
    and no request away from 127.0.0.1. Logs are read as they accumulate, so a test may
    also look at :attr:`console` and :attr:`requests` itself.
    """

    driver: WebDriver
    screenshot_dir: Path
    console: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    _current: str | None = None

    def open(self, url: str, name: str) -> None:
        """Load ``url``; the page's screenshot is saved as ``<name>.png`` when left."""
        self._leave_page()
        self.driver.get(url)
        self._current = name

    def wait_for(self, condition: Callable[[WebDriver], Any], timeout: float = PAGE_TIMEOUT) -> Any:
        """Wait until ``condition(driver)`` is truthy and return it (TimeoutException if not)."""
        return WebDriverWait(self.driver, timeout).until(condition)

    def script(self, source: str, *args: Any) -> Any:
        """Run ``source`` in the page (WebDriver's script channel, not the page's CSP)."""
        return self.driver.execute_script(source, *args)

    def assert_no_alert(self) -> None:
        """Fail when the page opened an alert (markup in lab text executed as script)."""
        try:
            alert = self.driver.switch_to.alert
        except NoAlertPresentException:
            return
        text = alert.text
        alert.dismiss()
        raise AssertionError(f"the page opened an alert: {text!r}")

    def expect_console(self, fragment: str) -> None:
        """Allow SEVERE entries containing ``fragment`` (a page answered 404 on purpose)."""
        self.expected.append(fragment)

    def collect_logs(self) -> None:
        """Move the browser's new console and network log entries into this object."""
        self.console.extend(self.driver.get_log("browser"))
        self.requests.extend(requested_urls(self.driver.get_log("performance")))

    def screenshot(self, name: str) -> Path:
        """Save a screenshot of the current page as ``<name>.png`` and return its path."""
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.screenshot_dir / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.screenshots.append(path)
        return path

    def _leave_page(self) -> None:
        if self._current is not None:
            self.collect_logs()
            self.screenshot(self._current)
            self._current = None

    def check(self) -> None:
        """Assert no SEVERE console entry and no request away from 127.0.0.1 so far."""
        self.collect_logs()
        severe = [
            entry
            for entry in severe_entries(self.console)
            if not any(fragment in str(entry.get("message")) for fragment in self.expected)
        ]
        assert not severe, f"the browser console logged errors: {severe}"
        foreign = foreign_requests(self.requests)
        assert not foreign, f"requests left {LOOPBACK}: {foreign}"

    def finish(self) -> None:
        """Screenshot the last page, then :meth:`check`."""
        self._leave_page()
        self.check()


@pytest.fixture
def browser(chrome: WebDriver) -> Iterator[ConsoleBrowser]:
    """A :class:`ConsoleBrowser` for this test, checked after it (see the module docstring)."""
    # Entries from earlier tests (or the blank start page) are not this test's.
    chrome.get_log("browser")
    chrome.get_log("performance")
    helper = ConsoleBrowser(driver=chrome, screenshot_dir=SCREENSHOT_DIR)
    yield helper
    try:
        helper.finish()
    finally:
        chrome.get("about:blank")
