"""Provenance benchmark: recording task runs, and lineage/impact on a large graph.

Runs against a fresh embedded MongoDB in a temporary data directory (or QOPS_MONGODB_URL if
``--use-configured`` is given). Counts database commands with pymongo command monitoring.

    .venv/bin/python bench/provenance_bench.py [--runs 10000] [--relations 1000000]
        [--journal-runs 500] [--skip-recording] [--skip-graph]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pymongo import MongoClient, monitoring
from pymongo.database import Database

from qops.errors import QopsError
from qops.mongo import Document, EmbeddedMongo
from qops.provenance.ids import activity_id, entity_id
from qops.provenance.models import (
    ActivityStatus,
    Agent,
    AgentType,
    InputUse,
    Measured,
    TaskRecord,
)
from qops.provenance.outbox import Outbox
from qops.provenance.recorder import ProvenanceRecorder
from qops.provenance.repository import MongoProvenanceRepository
from qops.provenance.service import ProvenanceService
from qops.timeutil import utc_now

PROJECT = "bench"
CHAIN = [  # task name, inputs, outputs
    ("CheckFrequency", [], ["qubit_frequency"]),
    ("CheckRabi", ["qubit_frequency"], ["rabi_amplitude", "pi_pulse_length"]),
    ("CheckT1", ["qubit_frequency", "rabi_amplitude"], ["t1"]),
    ("CheckT2Echo", ["qubit_frequency", "pi_pulse_length"], ["t2_echo"]),
]


class Counter(monitoring.CommandListener):
    """Counts commands sent to the server."""

    def __init__(self) -> None:
        self.count = 0
        self.names: collections.Counter[str] = collections.Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += 1
        self.names[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def bench_recording(db: Database[Document], counter: Counter, runs: int) -> dict[str, Any]:
    """Record ``runs`` task runs as the decorator does: resolve inputs, then record."""
    repository = MongoProvenanceRepository(db)
    repository.ensure_indexes()
    qubits = [f"Q{i}" for i in range(64)]
    per_run: list[int] = []
    durations: list[float] = []
    agent = Agent(agent_type=AgentType.SYSTEM, name="prefect:bench")
    done = 0
    execution = 0
    started = time.perf_counter()
    while done < runs:
        execution += 1
        for task_name, inputs, outputs in CHAIN:
            for qid in qubits:
                if done >= runs:
                    break
                before = counter.count
                t0 = time.perf_counter()
                current = repository.current_inputs(PROJECT, "64Qv3", qid, inputs) if inputs else {}
                now = utc_now()
                record = TaskRecord(
                    project_id=PROJECT,
                    chip_id="64Qv3",
                    execution_id=f"exec{execution:05d}",
                    task_id=f"{task_name}-{qid}",
                    task_name=task_name,
                    qid=qid,
                    started_at=now,
                    ended_at=now,
                    status=ActivityStatus.COMPLETED,
                    agent=agent,
                    inputs=[InputUse.of(v) for v in current.values()],
                    outputs={
                        name: Measured(value=5e9 + execution + i, unit="Hz", error=1e3)
                        for i, name in enumerate(outputs)
                    },
                )
                repository.record(record)
                durations.append(time.perf_counter() - t0)
                per_run.append(counter.count - before)
                done += 1
    total = time.perf_counter() - started
    versions, count = repository.history(PROJECT, "qubit_frequency", "Q0", 100_000)
    assert sorted(v.version for v in versions) == list(range(1, count + 1)), "gap in versions"
    durations.sort()
    return {
        "runs": runs,
        "seconds": round(total, 2),
        "runs_per_second": round(runs / total, 1),
        "median_ms": round(statistics.median(durations) * 1000, 2),
        "p95_ms": round(durations[int(len(durations) * 0.95)] * 1000, 2),
        "commands_per_run_mean": round(statistics.mean(per_run), 2),
        "commands_per_run_max": max(per_run),
        "versions_of_Q0_frequency": count,
    }


def bench_journal(db: Database[Document], outbox_dir: Path, runs: int) -> dict[str, Any]:
    """Record ``runs`` one-output task runs straight and through the recorder's journal."""
    repository = MongoProvenanceRepository(db)
    repository.ensure_indexes()
    recorder = ProvenanceRecorder(lambda: repository, Outbox(outbox_dir / "outbox.sqlite"))
    agent = Agent(agent_type=AgentType.SYSTEM, name="prefect:bench")
    results: dict[str, Any] = {}
    for name, write in (("repository", repository.record), ("recorder", recorder.record)):
        durations: list[float] = []
        for run in range(runs):
            now = utc_now()
            record = TaskRecord(
                project_id=PROJECT,
                chip_id=name,
                execution_id=f"j{run:05d}",
                task_id="check-frequency",
                task_name="check-frequency",
                qid=f"Q{run % 64}",
                started_at=now,
                ended_at=now,
                status=ActivityStatus.COMPLETED,
                agent=agent,
                outputs={"qubit_frequency": Measured(value=5e9 + run, unit="Hz")},
            )
            t0 = time.perf_counter()
            write(record)
            durations.append(time.perf_counter() - t0)
        durations.sort()
        results[name] = {
            "runs": runs,
            "median_ms": round(statistics.median(durations) * 1000, 2),
            "p95_ms": round(durations[int(len(durations) * 0.95)] * 1000, 2),
        }
    return results


def documented_copy(db: Database[Document], target: Database[Document]) -> None:
    """Copy the graph into the documented collection format: ObjectId ``_id``, no
    ``previous_entity_id`` or ``write_count``, no ``agent`` or relation ``execution_id``."""
    MongoProvenanceRepository(target).ensure_indexes()
    dropped = {"_id", "previous_entity_id", "write_count", "agent", "execution_id"}
    for name, keep_execution in (
        ("parameter_versions", True),
        ("activities", True),
        ("provenance_relations", False),
    ):
        batch: list[Document] = []
        for doc in db[name].find({}):
            copy = {k: v for k, v in doc.items() if k not in dropped}
            if keep_execution and "execution_id" in doc:
                copy["execution_id"] = doc["execution_id"]
            batch.append(copy)
            if len(batch) >= 10_000:
                target[name].insert_many(batch, ordered=False)
                batch = []
        if batch:
            target[name].insert_many(batch, ordered=False)


def bench_reads(
    db: Database[Document], counter: Counter, layers: int, width: int, repeats: int = 20
) -> dict[str, Any]:
    """Median time and commands of the single-entity and many-entity reads on the graph."""
    repository = MongoProvenanceRepository(db)
    service = ProvenanceService(repository, PROJECT)
    middle = layers // 2
    ids = [entity_id("p", f"Q{i}", f"x{middle:04d}", f"t{i:05d}") for i in range(100)]
    activity_ids = [activity_id(f"x{middle:04d}", f"t{i:05d}") for i in range(100)]
    cases: dict[str, Callable[[], object]] = {
        "get_entity": lambda: service.entity(ids[0]),
        "entities_100": lambda: repository.entities(PROJECT, ids),
        "activities_100": lambda: repository.activities(PROJECT, activity_ids),
        "history_Q0_limit_50": lambda: service.history("p", "Q0", 50, chip_id="bench"),
        "changes_limit_100": lambda: service.changes(100, 24.0),
        "current_versions_chip": lambda: repository.current_versions(PROJECT, "bench"),
        "lineage_depth_3": lambda: service.lineage(ids[0], 3),
    }
    results: dict[str, Any] = {}
    for name, query in cases.items():
        durations: list[float] = []
        commands = 0
        try:
            for _ in range(repeats):
                before, t0 = counter.count, time.perf_counter()
                query()
                durations.append(time.perf_counter() - t0)
                commands = counter.count - before
        except QopsError as e:  # an older qops cannot read the documented format
            results[name] = {"error": f"{type(e).__name__}: {e}"}
            continue
        results[name] = {
            "median_ms": round(statistics.median(durations) * 1000, 2),
            "commands": commands,
        }
    return results


def _graph_documents(layers: int, width: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """A layered PROV graph: entity (l, i) was generated by activity (l, i), which used
    entities (l-1, i) and (l-1, i+1); the entity was derived from the same two."""
    now = utc_now()
    for layer in range(layers):
        execution = f"x{layer:04d}"
        for i in range(width):
            task = f"t{i:05d}"
            eid = entity_id("p", f"Q{i}", execution, task)
            aid = activity_id(execution, task)
            yield (
                "parameter_versions",
                {
                    "_id": eid,
                    "entity_id": eid,
                    "parameter_name": "p",
                    "qid": f"Q{i}",
                    "value": float(i),
                    "value_type": "float",
                    "unit": "",
                    "error": None,
                    "version": layer + 1,
                    "valid_from": now,
                    "valid_until": None,
                    "execution_id": execution,
                    "task_id": task,
                    "task_name": "bench",
                    "project_id": PROJECT,
                    "chip_id": "bench",
                },
            )
            yield (
                "activities",
                {
                    "_id": aid,
                    "activity_id": aid,
                    "execution_id": execution,
                    "task_id": task,
                    "task_name": "bench",
                    "task_type": "calibration",
                    "qid": f"Q{i}",
                    "started_at": now,
                    "ended_at": now,
                    "status": "completed",
                    "project_id": PROJECT,
                    "chip_id": "bench",
                    "agent": {"agent_type": "system", "name": "bench"},
                },
            )
            edges = [("wasGeneratedBy", eid, "entity", aid, "activity")]
            if layer > 0:
                previous = f"x{layer - 1:04d}"
                for j in (i, (i + 1) % width):
                    parent = entity_id("p", f"Q{j}", previous, f"t{j:05d}")
                    edges.append(("used", aid, "activity", parent, "entity"))
                    edges.append(("wasDerivedFrom", eid, "entity", parent, "entity"))
            for kind, source, source_type, target, target_type in edges:
                yield (
                    "provenance_relations",
                    {
                        "_id": f"{PROJECT}|{kind}|{source}|{target}",
                        "relation_type": kind,
                        "source_id": source,
                        "source_type": source_type,
                        "target_id": target,
                        "target_type": target_type,
                        "project_id": PROJECT,
                        "execution_id": execution,
                    },
                )


def build_graph(db: Database[Document], relations: int, width: int) -> dict[str, Any]:
    """Bulk-insert a graph of at least ``relations`` relations."""
    layers = max(12, -(-relations // (width * 5)) + 1)
    batches: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    inserted: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    for collection, document in _graph_documents(layers, width):
        batch = batches[collection]
        batch.append(document)
        if len(batch) >= 10_000:
            db[collection].insert_many(batch, ordered=False)
            inserted[collection] += len(batch)
            batch.clear()
            if inserted["provenance_relations"] % 100_000 == 0:
                print(
                    f"  ... {dict(inserted)} after {time.perf_counter() - started:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
    for collection, batch in batches.items():
        if batch:
            db[collection].insert_many(batch, ordered=False)
            inserted[collection] += len(batch)
    return {
        "layers": layers,
        "width": width,
        "inserted": dict(inserted),
        "build_seconds": round(time.perf_counter() - started, 1),
    }


def per_node_traversal(
    db: Database[Document], origin: str, max_depth: int, *, downstream: bool
) -> int:
    """The reference point: breadth-first, one query per node. Returns nodes reached."""
    field, other = ("target_id", "source_id") if downstream else ("source_id", "target_id")
    depths = {origin: 0}
    frontier = [origin]
    for depth in range(1, max_depth + 1):
        following: list[str] = []
        for node in frontier:
            query = {"project_id": {"$eq": PROJECT}, field: {"$eq": node}}
            for relation in db.provenance_relations.find(query):
                if relation[other] not in depths:
                    depths[relation[other]] = depth
                    following.append(relation[other])
        frontier = following
    # node details, one look-up per node as a per-node client would
    for node in depths:
        db.parameter_versions.find_one({"_id": node}) or db.activities.find_one({"_id": node})
    return len(depths) - 1


def bench_traversal(
    db: Database[Document], counter: Counter, layers: int, width: int, depth: int
) -> dict[str, Any]:
    service = ProvenanceService(MongoProvenanceRepository(db), PROJECT)
    middle = layers // 2
    origin = entity_id("p", f"Q{width // 2}", f"x{middle:04d}", f"t{width // 2:05d}")
    results: dict[str, Any] = {"origin": origin, "max_depth": depth}
    for name, downstream in (("lineage", False), ("impact", True)):
        before, t0 = counter.count, time.perf_counter()
        graph = service.impact(origin, depth) if downstream else service.lineage(origin, depth)
        batched = {
            "seconds": round(time.perf_counter() - t0, 2),
            "commands": counter.count - before,
            "nodes": len(graph.nodes),
            "edges": len(graph.edges),
        }
        before, t0 = counter.count, time.perf_counter()
        reached = per_node_traversal(db, origin, depth, downstream=downstream)
        reference = {
            "seconds": round(time.perf_counter() - t0, 2),
            "commands": counter.count - before,
            "nodes": reached,
        }
        assert reached == len(graph.nodes), (reached, len(graph.nodes))
        results[name] = {
            "batched": batched,
            "one_query_per_node": reference,
            "speed_ratio": round(reference["seconds"] / max(batched["seconds"], 1e-9), 1),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--relations", type=int, default=1_000_000)
    parser.add_argument("--width", type=int, default=4_000)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--skip-recording", action="store_true")
    parser.add_argument("--journal-runs", type=int, default=500)
    parser.add_argument("--skip-graph", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qops-bench-") as tmp:
        embedded = EmbeddedMongo(Path(tmp))
        server = embedded.ensure_running()
        counter = Counter()
        client: MongoClient[Document] = MongoClient(
            server.url, tz_aware=True, event_listeners=[counter]
        )
        try:
            report: dict[str, Any] = {}
            if not args.skip_recording:
                report["recording"] = bench_recording(client.bench_record, counter, args.runs)
                print(json.dumps(report["recording"]), file=sys.stderr, flush=True)
            if args.journal_runs:
                report["journal"] = bench_journal(
                    client.bench_journal, Path(tmp), args.journal_runs
                )
                print(json.dumps(report["journal"]), file=sys.stderr, flush=True)
            if args.skip_graph:
                print(json.dumps(report, indent=2))
                return
            db = client.bench_graph
            MongoProvenanceRepository(db).ensure_indexes()
            graph = build_graph(db, args.relations, args.width)
            report["graph"] = graph
            print(json.dumps(graph), file=sys.stderr, flush=True)
            report["traversal"] = bench_traversal(
                db, counter, graph["layers"], args.width, args.depth
            )
            report["reads"] = bench_reads(db, counter, graph["layers"], args.width)
            print(json.dumps(report["reads"]), file=sys.stderr, flush=True)
            documented_copy(db, client.bench_documented)
            report["reads_documented_format"] = bench_reads(
                client.bench_documented, counter, graph["layers"], args.width
            )
            print(json.dumps(report, indent=2))
        finally:
            client.close()
            embedded.stop()


if __name__ == "__main__":
    main()
