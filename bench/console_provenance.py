"""Console provenance pages: a lineage picture of depth 5 and a history page of 500 versions.

A fresh embedded MongoDB (temporary data directory) gets:

- a chip of 8 qubits calibrated 20 times by four chained task runs per qubit (frequency;
  rabi using it; t1 and t2 using both), recorded through the provenance repository as the
  calibration tasks record them (``used``, ``wasGeneratedBy``, ``wasDerivedFrom``);
- one parameter of one qubit with 500 versions.

The real app answers over TestClient (in process, no network): the entity page of the last
t1 of Q0 with its lineage at depth 5 (the service's traversal, Graphviz ``dot`` to SVG, the
template), and the history page of the 500 versions (table and Plotly figure JSON). Each is
requested ``--rounds`` times; the figures are server-side times per page. The split of the
lineage page's time (traversal, ``dot``) is measured on the same data.

Usage: .venv/bin/python bench/console_provenance.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from fastapi.testclient import TestClient

from qops.catalog.search import CatalogQueryService
from qops.console.app import ConsoleServices, create_app
from qops.console.provenance_views import graph_dot, render_svg
from qops.mongo import Document, EmbeddedMongo
from qops.provenance.models import (
    ActivityStatus,
    Agent,
    AgentType,
    InputUse,
    Measured,
    TaskRecord,
)
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from qops.timeutil import utc_now

PROJECT = "bench"
CHIP = "bench-chip"
QUBITS = [f"Q{i}" for i in range(8)]
CALIBRATIONS = 20
HISTORY_VERSIONS = 500
STEPS = (
    ("CheckFrequency", (), ("qubit_frequency",)),
    ("CheckRabi", ("qubit_frequency",), ("pi_amplitude",)),
    ("CheckT1", ("qubit_frequency", "pi_amplitude"), ("t1",)),
    ("CheckT2Echo", ("qubit_frequency", "pi_amplitude"), ("t2_echo",)),
)
AGENT = Agent(agent_type=AgentType.SYSTEM, name="bench:calibrate")


def _record(
    repository: MongoProvenanceRepository,
    execution: str,
    task: str,
    qid: str,
    inputs: tuple[str, ...],
    outputs: dict[str, Measured],
) -> dict[str, str]:
    current = repository.current_inputs(PROJECT, qid, inputs) if inputs else {}
    now = utc_now()
    result = repository.record(
        TaskRecord(
            project_id=PROJECT,
            chip_id=CHIP,
            execution_id=execution,
            task_id=f"{task}-{qid}",
            task_name=task,
            qid=qid,
            started_at=now,
            ended_at=now,
            status=ActivityStatus.COMPLETED,
            agent=AGENT,
            inputs=[InputUse.of(current[name]) for name in inputs],
            outputs=outputs,
        )
    )
    return result.entity_ids


def populate(repository: MongoProvenanceRepository) -> str:
    """Record the calibrations and the long history; return the lineage page's entity id."""
    last_t1 = ""
    for round_ in range(CALIBRATIONS):
        execution = f"calibration-{round_ + 1:03d}"
        for qid in QUBITS:
            for task, inputs, outputs in STEPS:
                measured = {
                    name: Measured(value=1.0 + 0.01 * round_, unit="", error=0.001)
                    for name in outputs
                }
                written = _record(repository, execution, task, qid, inputs, measured)
                if qid == "Q0" and "t1" in written:
                    last_t1 = written["t1"]
    for index in range(HISTORY_VERSIONS):
        value = Measured(value=5e-5 + 1e-7 * index, unit="s", error=1e-6)
        _record(repository, f"history-{index:04d}", "CheckT1", "Q99", (), {"t1": value})
    return last_t1


def timed(function: Callable[[], object], rounds: int) -> list[float]:
    """Seconds per call of ``function``, ``rounds`` times (after one warm-up call)."""
    function()
    durations = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    return durations


def report(name: str, durations: list[float]) -> None:
    ordered = sorted(durations)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print(
        f"| {name} | {statistics.median(ordered) * 1000:,.0f} | {p95 * 1000:,.0f} "
        f"| {max(ordered) * 1000:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="Requests per page.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qops-bench-console-") as tmp:
        embedded = EmbeddedMongo(Path(tmp))
        server = embedded.ensure_running()
        try:
            from pymongo import MongoClient

            client: MongoClient[Document] = MongoClient(server.url)
            db = client["bench"]
            repository = MongoProvenanceRepository(db)
            repository.ensure_indexes()
            started = time.perf_counter()
            entity = populate(repository)
            print(f"recorded in {time.perf_counter() - started:.1f} s")
            service = ProvenanceService(repository, PROJECT)
            app = create_app(ConsoleServices(provenance=service, catalog=CatalogQueryService(db)))
            http = TestClient(app)
            lineage_url = f"/console/entities/{quote(entity, safe='')}?depth=5"
            history_url = "/console/parameters/t1/Q99?limit=500"
            graph = service.lineage(entity, 5)
            page = http.get(lineage_url)
            assert page.status_code == 200, page.text[:500]
            svg_size = page.text.index("</svg>") - page.text.index("<svg")
            history = http.get(history_url)
            assert history.status_code == 200
            assert history.text.count("<tr data-version=") == HISTORY_VERSIONS
            print(
                f"lineage at depth 5: {len(graph.nodes) + 1} nodes, {len(graph.edges)} edges, "
                f"SVG {svg_size / 1024:.0f} KiB; history page {len(history.content) / 1024:.0f} KiB"
            )
            print("\n| page (server side) | p50 (ms) | p95 (ms) | max (ms) |\n|---|---:|---:|---:|")
            report(
                "entity page, lineage depth 5", timed(lambda: http.get(lineage_url), args.rounds)
            )
            report("  of which: traversal", timed(lambda: service.lineage(entity, 5), args.rounds))
            report(
                "  of which: dot layout to SVG",
                timed(lambda: render_svg(graph_dot(graph, 5)), args.rounds),
            )
            report("history page, 500 versions", timed(lambda: http.get(history_url), args.rounds))
            client.close()
        finally:
            embedded.stop()


if __name__ == "__main__":
    main()
