"""A real Prometheus server scrapes ``qops monitor`` and answers a query for a qubit's T1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pymongo.database import Database

from qops.mongo import Document
from qops.process import free_port
from tests.cli import QOPS
from tests.meta_support import HEARTBEAT_S, ServerFactory, wait_for


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A Prometheus server scraping ``127.0.0.1:<target port>`` every second.

    Yields (Prometheus port, target port).
    """
    binary = shutil.which("prometheus")
    assert binary, "the prometheus Debian package is required (scripts/test.sh installs it)"
    target, port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: qops-monitor\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield port, target
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def query(port: int, expression: str) -> list[dict[str, object]]:
    try:
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/query", params={"query": expression}, timeout=2
        )
    except httpx.HTTPError:
        return []
    if response.status_code != 200:
        return []
    result: list[dict[str, object]] = response.json()["data"]["result"]
    return result


def test_prometheus_scrapes_qops_monitor_and_answers_t1_query(
    prefect_api: str,
    mongo_db: Database[Document],
    start_server: ServerFactory,
    prometheus_for: tuple[int, int],
) -> None:
    prometheus_port, metrics_port = prometheus_for
    server = start_server()
    monitor = subprocess.Popen(
        [
            QOPS,
            "monitor",
            "--req-address",
            server.req,
            "--sub-address",
            server.pub,
            "--metrics-port",
            str(metrics_port),
            "--heartbeat-s",
            str(HEARTBEAT_S),
            "--duration-s",
            "60",
        ],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        found: list[list[dict[str, object]]] = []

        def answered() -> bool:
            found[:] = [query(prometheus_port, 'qi_t1{qubit="q0"}')]
            return bool(found[0])

        wait_for(answered, timeout_s=40, what='Prometheus to answer qi_t1{qubit="q0"}')
        sample = found[0][0]
        assert sample["metric"] == {
            "__name__": "qi_t1",
            "qubit": "q0",
            "instance": f"127.0.0.1:{metrics_port}",
            "job": "qops-monitor",
        }
        value = sample["value"]
        assert isinstance(value, list)
        assert float(value[1]) == 0.995

        # qi_up is 0 for a moment whenever three 0.2 s heartbeats in a row arrive late (a
        # loaded machine); what matters is that Prometheus reports the backend up.
        def up() -> bool:
            answer = query(prometheus_port, "qi_up")
            return bool(answer) and answer[0]["value"][1] == "1"  # type: ignore[index]

        wait_for(up, timeout_s=20, what="Prometheus to answer qi_up 1")
    finally:
        monitor.send_signal(signal.SIGTERM)
        try:
            monitor.wait(timeout=15)
        except subprocess.TimeoutExpired:
            monitor.kill()
            monitor.wait()
