"""Catalog search benchmark: 100 000 datasets, a tag + attribute + time-range query.

Starts its own embedded MongoDB (nx-27017) in a temporary directory, inserts ``--datasets``
documents shaped as the sync writes them (``DatasetRecord`` plus the search fields) with
``insert_many`` under the catalog's indexes, then times :meth:`CatalogQueryService.search`
with and without facets, and each of its commands alone, and prints the embedded server's
plan of the page query.

    .venv/bin/python bench/catalog_search.py [--datasets 100000] [--repeat 21]

Data: datasets collected every 5.256 minutes over 365 days; 10 measurement kinds (a tag
each: t1, rabi, ...), 8 set-ups, 5 qubits, 4 samples, parameter-label tags. The query
"t1 runs on fridge-3 in the last 45 days" matches 1 in 120 of the 12 329 datasets of the
window: 103.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from qops.catalog.models import DatasetRecord, DatasetStatus, FileVersion, dataset_uuid
from qops.catalog.repository import COLLECTED_KEY, dataset_document
from qops.catalog.search import CatalogQueryService, DatasetQuery, build_filter
from qops.mongo import Document, EmbeddedMongo

KINDS = [
    "t1",
    "rabi",
    "ramsey",
    "echo",
    "spectroscopy",
    "resonator",
    "chevron",
    "flux",
    "iq",
    "noise",
]
START = datetime(2025, 12, 1, tzinfo=UTC)
SPAN = timedelta(days=365)
WINDOW_DAYS = 45


def documents(count: int) -> list[dict[str, Any]]:
    """``count`` dataset documents as the sync writes them."""
    step = SPAN / count
    out = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        qubit = f"Q{(i // 10) % 5}"
        attributes = {
            "set-up": f"fridge-{(i // 3) % 8}",
            "sample": f"chip-{(i // 7) % 4}",
            "qh.qubit": qubit,
            "qh.project": "coherence" if i % 3 else "spectra",
            "mw_source.frequency": f"{4.5 + (i % 100) / 100:.2f} GHz",
            "mw_source.power": f"{-20 - i % 10} dBm",
            "dac.ch1": f"{(i % 50) / 10:.1f} V",
        }
        alt_uid = f"bench-{i:08d}"
        collected = START + step * i
        record = DatasetRecord(
            name=f"{kind} {qubit} #{i}",
            description=f"{kind} measurement\nlab.db run {i}, guid {alt_uid}",
            collected=collected.replace(microsecond=collected.microsecond // 1000 * 1000),
            tags=sorted({kind, qubit, "Gate voltage", "Current", "qh_meta"}),
            attributes=attributes,
            ranking=(i % 5) - 2,
            uuid=dataset_uuid("bench", alt_uid),
            alt_uid=alt_uid,
            scope="bench",
            source="lab",
            status=DatasetStatus.COMPLETE,
            synced_at=collected,
            files=[
                FileVersion(
                    name=f"{alt_uid}.h5",
                    version=1,
                    location=f"/data/datasets/bench/{alt_uid}/{alt_uid}.h5",
                    size=40_000,
                    md5="0" * 32,
                    rows=100,
                    complete=True,
                    created=collected,
                )
            ],
        )
        out.append(dataset_document(record))
    return out


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """p50 and p90 in milliseconds of ``repeat`` calls (after one warm-up), and a result."""
    result = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))], result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--profile", action="store_true", help="cProfile one full search")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qops-bench-catalog-") as tmp:
        embedded = EmbeddedMongo(Path(tmp))
        server = embedded.ensure_running()
        try:
            client: MongoClient[Document] = MongoClient(server.url, tz_aware=True)
            db = client["bench"]
            service = CatalogQueryService(db)
            service.ensure_indexes()
            start = time.perf_counter()
            batch = 5_000
            all_docs = documents(args.datasets)
            built = time.perf_counter() - start
            start = time.perf_counter()
            for first in range(0, len(all_docs), batch):
                db.datasets.insert_many(all_docs[first : first + batch], ordered=False)
            inserted = time.perf_counter() - start
            del all_docs
            print(f"datasets: {args.datasets} (built {built:.1f} s, inserted {inserted:.1f} s)")

            end = START + SPAN
            query = DatasetQuery(
                tags=["t1"],
                attributes={"set-up": "fridge-3"},
                collected_after=end - timedelta(days=WINDOW_DAYS),
                collected_before=end,
            )
            rows: list[tuple[str, float, float, str]] = []

            def row(label: str, fn: Callable[[], object], show: Callable[[Any], str]) -> None:
                p50, p90, result = timed(fn, args.repeat)
                rows.append((label, p50, p90, show(result)))

            row(
                "search, total and facets",
                lambda: service.search(query),
                lambda p: f"{len(p.datasets)} shown of {p.total}",
            )
            row(
                "search and total, no facets",
                lambda: service.search(query, facets=False),
                lambda p: f"{len(p.datasets)} shown of {p.total}",
            )
            base = build_filter(query)
            sort = [(COLLECTED_KEY, -1), ("_id", -1)]
            row(
                "  page alone (find, limit 51)",
                lambda: list(db.datasets.find(base).sort(sort).limit(51)),
                lambda r: f"{len(r)} documents",
            )
            page_ids = [d["_id"] for d in (service._scan(base, False) or [])][:51]
            row(
                "  fetch of 51 by _id alone",
                lambda: service._by_ids(page_ids),
                lambda r: f"{len(r)} documents",
            )
            row(
                "  total alone (count command)",
                lambda: db.command("count", "datasets", query=base)["n"],
                str,
            )
            row(
                "  scan alone (keys, tags, attributes)",
                lambda: service._scan(base, True),
                lambda r: f"{len(r or [])} documents",
            )
            second = service.search(query, facets=False)
            if second.next_cursor:
                cursor_query = query.model_copy(update={"cursor": second.next_cursor})
                row(
                    "next page (cursor), no facets",
                    lambda: service.search(cursor_query, facets=False),
                    lambda p: f"{len(p.datasets)} shown",
                )
            text_query = DatasetQuery(text="t1 Q3", set_up="fridge-3")
            row(
                "free text 't1 Q3' + set-up, facets",
                lambda: service.search(text_query),
                lambda p: f"{len(p.datasets)} shown of {p.total}",
            )
            text_tag_query = DatasetQuery(text="Q3", tags=["t1"])
            row(
                "free text 'Q3' + tag t1, facets",
                lambda: service.search(text_tag_query),
                lambda p: f"{len(p.datasets)} shown of {p.total}",
            )
            text_alone = DatasetQuery(text="t1 Q3")
            row(
                "free text 't1 Q3' alone, facets",
                lambda: service.search(text_alone),
                lambda p: f"{len(p.datasets)} shown of {p.total}",
            )
            row(
                "unfiltered first page, no facets",
                lambda: service.search(DatasetQuery(), facets=False),
                lambda p: f"{len(p.datasets)} shown of {p.total}",
            )
            print(f"query: {base}")
            print(f"{'what':36} {'p50 ms':>8} {'p90 ms':>8}  result")
            for label, p50, p90, shown in rows:
                print(f"{label:36} {p50:8.1f} {p90:8.1f}  {shown}")
            plan = db.command(
                "explain", {"find": "datasets", "filter": base, "sort": dict(sort), "limit": 51}
            )
            print("embedded server plan of the page query:")
            for step in plan.get("queryPlanner", {}).get("winningPlan", []):
                print(f"  {step}")
            fetch_plan = db.command(
                "explain", {"find": "datasets", "filter": {"_id": {"$in": page_ids}}}
            )
            print("embedded server plan of the fetch by _id:")
            for step in fetch_plan.get("queryPlanner", {}).get("winningPlan", []):
                print(f"  {step}")
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(5):
                    service.search(query)
                profiler.disable()
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(12)
                print(out.getvalue())
        finally:
            embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
