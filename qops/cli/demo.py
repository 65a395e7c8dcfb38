"""``qops demo``: the whole system on one machine, on embedded defaults.

Starts the embedded MongoDB and a local Prefect server (SQLite), serves the 2300 hardware
backend of a simulated three-qubit chip, starts the 2200 monitor (Prometheus metrics) and the
console (the server of ``qops api serve``: the console's pages and the HTTP APIs), calibrates
the chip twice (v1 and v2 of every parameter), runs one circuit on the calibrated chip as a
2200 would (initialize, execute, terminate) and prints its counts, syncs the calibration
measurements into the dataset catalog, drifts one qubit and lets ``maintain`` bring it back,
and prints where everything is. The flows it runs get ``QOPS_CONSOLE_URL``, so their Prefect
artifacts link to the console's pages.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer
import yaml

from qops.cli.prefect_server import LocalPrefectServer
from qops.cli.services import Service, http_ready, tcp_ready
from qops.config import MongoSettings
from qops.console_links import entity_url, parameter_url
from qops.mongo import EmbeddedMongo, connect, redact_url
from qops.process import LOOPBACK, free_port

DEMO_CHIP = "demo-chip"
DEMO_SOURCE = "demo-calibration"
DEMO_PROJECT = "demo"
DEMO_SHOTS = 1000
DEMO_CIRCUIT = (
    "version 3.0\nqubit[3] q\nbit[3] b\nH q[0]\nCNOT q[0], q[1]\nCNOT q[1], q[2]\nb = measure q\n"
)
"""A three-qubit GHZ state: ideally only 000 and 111; the calibrated noise adds the rest."""


def _backend_config(path: Path) -> Path:
    """Write the demo backend's configuration: a three-qubit chip in a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "name": "qops-demo",
        "chip_id": DEMO_CHIP,
        "project_id": DEMO_PROJECT,
        "nqubits": 3,
        "topology": [[0, 1], [1, 2]],
        "pgs": ["X", "Y", "Z", "H", "CZ", "MEASURE"],
        "default_compiler_config": {
            "decomposition": [
                {
                    "path": "opensquirrel.passes.decomposer.mckay_decomposer.McKayDecomposer",
                    "method": "decompose",
                    "arguments": {},
                }
            ],
        },
        "supports_raw_data": True,
        "extra_metrics": {"fridge_temperature_in_mk": 8.4},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _qops(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("qops")), *args]


def _metrics_sample(url: str, wanted: str, timeout_s: float) -> list[str]:
    """``qi_*`` lines of ``url`` once one starts with ``wanted`` (or what is there at the end)."""
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            text = httpx.get(url, timeout=2).text
            lines = [line for line in text.splitlines() if line.startswith("qi_")]
            if any(line.startswith(wanted) for line in lines):
                return lines
        time.sleep(0.5)
    return lines


@contextlib.contextmanager
def _services(keep_running: bool) -> Iterator[list[Service]]:
    started: list[Service] = []
    try:
        yield started
    finally:
        if not keep_running:
            for service in reversed(started):
                service.stop()


def demo(
    keep_running: Annotated[
        bool, typer.Option(help="Leave every service running for exploring.")
    ] = False,
) -> None:
    """Run the whole system on one machine and print where things are."""
    settings = MongoSettings()
    os.environ.setdefault("QOPS_PROJECT_ID", DEMO_PROJECT)
    embedded = EmbeddedMongo(settings.data_dir)
    mongo_started_here = settings.embedded and embedded.status() is None
    if settings.embedded:
        mongo_url = embedded.ensure_running().url
    else:
        assert settings.mongodb_url is not None
        mongo_url = redact_url(settings.mongodb_url.get_secret_value())
        connect(settings)
    typer.echo(f"MongoDB          {mongo_url}  (database {settings.mongodb_db})")

    prefect = LocalPrefectServer(settings.data_dir)
    prefect_started_here = prefect.status() is None
    if prefect_started_here:
        typer.echo("Prefect server   starting (first start creates its database) ...")
    server = prefect.ensure_running()
    os.environ["PREFECT_API_URL"] = server.api_url
    typer.echo(f"Prefect UI       {server.url}")

    demo_dir = settings.data_dir / "demo"
    logs = demo_dir / "logs"
    config = _backend_config(demo_dir / "backend.yaml")
    database = demo_dir / "calibration.db"
    req, pub = free_port(), free_port()
    metrics_port, api_port = free_port(), free_port()
    req_address, pub_address = f"tcp://{LOOPBACK}:{req}", f"tcp://{LOOPBACK}:{pub}"
    metrics_url = f"http://{LOOPBACK}:{metrics_port}/metrics"
    api_url = f"http://{LOOPBACK}:{api_port}"
    try:
        with _services(keep_running) as services:
            for service in (
                Service(
                    "2300 backend",
                    _qops(
                        "backend",
                        "serve",
                        "--config",
                        str(config),
                        "--req-address",
                        req_address,
                        "--pub-address",
                        pub_address,
                    ),
                    logs / "backend.log",
                    tcp_ready(LOOPBACK, req),
                ),
                Service(
                    "2200 monitor",
                    _qops(
                        "monitor",
                        "--req-address",
                        req_address,
                        "--sub-address",
                        pub_address,
                        "--metrics-port",
                        str(metrics_port),
                        "--chip",
                        DEMO_CHIP,
                    ),
                    logs / "monitor.log",
                    http_ready(metrics_url),
                ),
                Service(
                    "console",
                    _qops("api", "serve", "--port", str(api_port)),
                    logs / "console.log",
                    # Listening is enough: with QOPS_CONSOLE_TOKEN or _PASSWORD set in the
                    # environment the server answers 401 to a probe without credentials.
                    tcp_ready(LOOPBACK, api_port),
                ),
            ):
                service.start(timeout_s=120)
                services.append(service)
                typer.echo(f"{service.name:16} running  (log {service.log_file})")
            typer.echo(f"Console          {api_url}/")
            os.environ["QOPS_CONSOLE_URL"] = api_url
            _run_flows(config, database, metrics_url, api_url, settings, req_address)
            if keep_running:
                typer.echo(
                    "\nServices left running (pids "
                    + ", ".join(str(s.process.pid) for s in services if s.process)
                    + "); stop them with kill, then: qops prefect stop; qops mongo stop"
                )
    finally:
        _flush_run_logs()
        if not keep_running:
            if prefect_started_here:
                prefect.stop()
            if mongo_started_here:
                embedded.stop()
            typer.echo("\nall services stopped")


def _run_flows(
    config: Path,
    database: Path,
    metrics_url: str,
    api_url: str,
    settings: MongoSettings,
    req_address: str,
) -> None:
    from flows.calibrate import calibrate
    from flows.sync_qcodes import sync_qcodes
    from qops.catalog.sources import SyncSources
    from qops.chip.offsets import OffsetStore

    # A demo run again on the same data directory starts from an undrifted chip.
    OffsetStore(settings.data_dir).clear(DEMO_CHIP)
    typer.echo("\ncalibrating demo-chip twice (v1 and v2 of every parameter) ...")
    reports = [
        calibrate(backend_config=str(config), database_path=str(database), project_id=DEMO_PROJECT)
        for _ in range(2)
    ]
    for report in reports:
        done = len(report.steps) - len(report.failed) - len(report.skipped)
        typer.echo(
            f"  execution {report.execution_id}: {done} steps completed, "
            f"{len(report.failed)} failed, {len(report.changes)} parameters changed"
        )

    _run_circuit(req_address)

    SyncSources.create(
        name=DEMO_SOURCE,
        backend_identifier="qcodes",
        config_data={"database_path": str(database), "set_up": "demo fridge"},
        settings=settings,
    )
    sync = sync_qcodes(source_name=DEMO_SOURCE)
    outcomes = [o for source in sync.sources for o in source.outcomes]
    typer.echo(f"synced {len(outcomes)} QCoDeS runs of {database} into the catalog")

    _maintain(config, database, settings)

    typer.echo(f"\nMetrics          {metrics_url}")
    lines = _metrics_sample(metrics_url, 'qi_t1{qubit="q0"}', timeout_s=20)
    shown = [line for line in lines if line.startswith("qi_up") or line.endswith("} 1.0")]
    shown = [line for line in shown if "backend_state" in line or line.startswith("qi_up")]
    shown += [line for line in lines if line.startswith(("qi_t1{", "qi_cz_fidelity{"))][:5]
    for line in shown:
        typer.echo(f"  {line}")
    typer.echo(f"  ({len(lines)} qi_* samples in all)")

    db = connect(settings)[settings.mongodb_db]
    t1 = db.parameter_versions.find_one(
        {
            "project_id": DEMO_PROJECT,
            "chip_id": DEMO_CHIP,
            "parameter_name": "t1",
            "qid": "Q0",
            "valid_until": None,
        }
    )
    datasets = db.datasets.count_documents({})
    items = db.sync_items.count_documents({})
    typer.echo(f"\nProvenance API   {api_url}/docs")
    if t1 is not None:
        lineage = (
            f"{api_url}/provenance/lineage/{t1['entity_id']}?max_depth=3&project_id={DEMO_PROJECT}"
        )
        with contextlib.suppress(httpx.HTTPError):
            graph = httpx.get(lineage, timeout=10, headers=_console_headers()).json()
            typer.echo(
                f"  lineage of t1 of Q0 v{t1['version']}: {len(graph.get('nodes', []))} nodes, "
                f"{len(graph.get('edges', []))} edges"
            )
        typer.echo(f"  {lineage}")
    typer.echo(f"\nCatalog          {datasets} datasets, {items} sync items")
    typer.echo(f"\nConsole          {api_url}/")
    typer.echo(f"  datasets       {api_url}/console/datasets")
    typer.echo(f"  t1 of Q0       {parameter_url(api_url, 't1', 'Q0')}")
    if t1 is not None:
        typer.echo(f"  its lineage    {entity_url(api_url, t1['entity_id'])}")
    typer.echo(f"  executions     {api_url}/console/executions")
    typer.echo(f"  chip           {api_url}/console/chips/{DEMO_CHIP}")


def _run_circuit(req_address: str) -> None:
    """Run :data:`DEMO_CIRCUIT` on the calibrated chip through the 2300 and print its counts."""
    from qops.backend.job_client import JobClient, JobFailedError
    from qops.protocol.messages import new_session_id

    typer.echo(f"\nrunning a GHZ circuit on {DEMO_CHIP} ({DEMO_SHOTS} shots, calibrated noise) ...")
    session = new_session_id()
    try:
        with JobClient(req_address, timeout_s=30) as client:
            client.initialize(session)
            try:
                payload = client.execute(session, 1, DEMO_CIRCUIT, DEMO_SHOTS)
            finally:
                client.terminate(session)
    except JobFailedError as e:
        typer.echo(f"  the circuit did not run: {e}")
        return
    results = payload["results"]
    assert isinstance(results, dict)
    counts = sorted(((str(k), int(v)) for k, v in results.items()), key=lambda kv: -kv[1])
    for bits, count in counts:
        typer.echo(f"  {bits}  {count:5d}")
    ghz = sum(count for bits, count in counts if bits in ("000", "111"))
    typer.echo(f"  counts of job 1: {ghz / DEMO_SHOTS:.1%} in 000 or 111")


DEMO_DRIFT_QUBIT = "Q2"
DEMO_DRIFT_HZ = 2e6


def _maintain(config: Path, database: Path, settings: MongoSettings) -> None:
    """Drift one qubit (for every process, as ``qops chip drift`` does) and let ``maintain``
    find it with its checks and recalibrate only what fails."""
    from flows.maintain import maintain
    from qops.chip.offsets import OffsetStore
    from qops.maintenance.report import summary_lines

    typer.echo(
        f"\ndrifting {DEMO_DRIFT_QUBIT} of {DEMO_CHIP} by {DEMO_DRIFT_HZ / 1e6:+g} MHz "
        "(qops chip drift), then maintaining the chip ..."
    )
    OffsetStore(settings.data_dir).add(
        DEMO_CHIP, DEMO_DRIFT_QUBIT, {"qubit_frequency": DEMO_DRIFT_HZ}
    )
    report = maintain(
        backend_config=str(config), database_path=str(database), project_id=DEMO_PROJECT
    )
    for line in summary_lines(report):
        typer.echo(f"  {line}")


def _console_headers() -> dict[str, str]:
    """Credentials for the demo's own console requests when authentication is configured."""
    from qops.console.settings import ConsoleSettings

    settings = ConsoleSettings()
    if settings.console_token is not None and settings.console_token.get_secret_value():
        return {"Authorization": f"Bearer {settings.console_token.get_secret_value()}"}
    if settings.console_password is not None and settings.console_password.get_secret_value():
        pair = f"{settings.console_user}:{settings.console_password.get_secret_value()}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    return {}


def _flush_run_logs() -> None:
    """Send buffered run logs to the Prefect API before its server may be stopped."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
