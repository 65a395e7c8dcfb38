"""Catalog search (qops.catalog.search) on the embedded MongoDB: filters, order, paging, facets."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError
from pymongo.database import Database

from qops.catalog.errors import DatasetNotFoundError, InvalidDatasetQueryError
from qops.catalog.models import DatasetRecord, DatasetStatus
from qops.catalog.repository import collected_key, dataset_document
from qops.catalog.search import CatalogQueryService, DatasetQuery, parse_attributes
from qops.mongo import Document
from qops.timeutil import as_utc
from tests.integration.catalog.catalog_records import T0, record, save


@pytest.fixture
def service(mongo_db: Database[Document]) -> CatalogQueryService:
    catalog = CatalogQueryService(mongo_db)
    catalog.ensure_indexes()
    return catalog


def _ids(records: list[DatasetRecord]) -> list[str]:
    return [r.uuid for r in records]


@pytest.fixture
def lab(mongo_db: Database[Document], service: CatalogQueryService) -> list[DatasetRecord]:
    return save(
        mongo_db,
        record(
            0,
            name="T1 of Q1",
            description="overnight",
            tags=["t1", "Q1"],
            attributes={"set-up": "fridge-1", "qh.qubit": "Q1", "sample": "chip-a"},
            ranking=1,
        ),
        record(
            1,
            name="Rabi Q1",
            description="after the T1 run",
            tags=["rabi", "Q1"],
            attributes={"set-up": "fridge-1", "qh.qubit": "Q1", "sample": "chip-a"},
        ),
        record(
            2,
            name="T1 of Q2",
            tags=["t1", "Q2"],
            attributes={"set-up": "fridge-2", "qh.qubit": "Q2", "sample": "chip-b"},
            ranking=-1,
            source="other",
        ),
        record(
            3,
            name="spectroscopy",
            tags=["spec"],
            attributes={"set-up": "fridge-2", "sample": "chip-b"},
            scope="scope-2",
            status=DatasetStatus.LIVE,
        ),
        record(4, name="undated", collected=None, tags=["t1"], attributes={"set-up": "fridge-1"}),
    )


def test_search_no_filter_lists_all_newest_first_undated_last(
    service: CatalogQueryService, lab: list[DatasetRecord]
) -> None:
    page = service.search(DatasetQuery())
    assert _ids(page.datasets) == _ids([lab[3], lab[2], lab[1], lab[0], lab[4]])
    assert page.total == 5
    assert page.next_cursor is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (DatasetQuery(text="t1"), [2, 1, 0]),  # name or description, case-insensitive
        (DatasetQuery(text="T1 OF"), [2, 0]),
        (DatasetQuery(text="(.*"), []),  # regex characters are literal
        (DatasetQuery(tags=["t1"]), [2, 0, 4]),
        (DatasetQuery(tags=["t1", "Q1"]), [0]),  # all of
        (DatasetQuery(attributes={"qh.qubit": "Q1"}), [1, 0]),  # dotted key
        (DatasetQuery(attributes={"qh.qubit": "Q1", "sample": "chip-b"}), []),
        (DatasetQuery(attributes={"sample": "chip-b"}), [3, 2]),
        (DatasetQuery(min_ranking=0), [3, 1, 0, 4]),
        (DatasetQuery(min_ranking=1), [0]),
        (DatasetQuery(collected_after=T0 + timedelta(hours=1)), [3, 2, 1]),  # inclusive
        (DatasetQuery(collected_before=T0 + timedelta(hours=1)), [0]),  # exclusive
        (
            DatasetQuery(
                collected_after=T0 + timedelta(hours=1), collected_before=T0 + timedelta(hours=3)
            ),
            [2, 1],
        ),
        (DatasetQuery(source="other"), [2]),
        (DatasetQuery(set_up="fridge-1"), [1, 0, 4]),
        (DatasetQuery(set_up="fridge-1", attributes={"set-up": "fridge-2"}), []),
        (DatasetQuery(scope="scope-2"), [3]),
        (DatasetQuery(status=DatasetStatus.LIVE), [3]),
        (
            DatasetQuery(tags=["t1"], set_up="fridge-1", collected_before=T0 + timedelta(hours=9)),
            [0],
        ),
    ],
)
def test_search_each_filter_matches_exactly(
    service: CatalogQueryService,
    lab: list[DatasetRecord],
    query: DatasetQuery,
    expected: list[int],
) -> None:
    page = service.search(query)
    assert _ids(page.datasets) == [lab[i].uuid for i in expected]
    assert page.total == len(expected)


def test_search_naive_times_are_utc(service: CatalogQueryService, lab: list[DatasetRecord]) -> None:
    naive = (T0 + timedelta(hours=2)).replace(tzinfo=None)
    assert _ids(service.search(DatasetQuery(collected_after=naive)).datasets) == _ids(
        [lab[3], lab[2]]
    )


@pytest.mark.parametrize("scan_limit", [0, 1000], ids=["page-finds", "one-scan"])
@pytest.mark.parametrize("tags", [[], ["t1"]], ids=["unfiltered", "tagged"])
@pytest.mark.parametrize("facets", [False, True], ids=["no-facets", "facets"])
def test_search_pages_stay_stable_while_datasets_arrive(
    mongo_db: Database[Document], scan_limit: int, tags: list[str], facets: bool
) -> None:
    service = CatalogQueryService(mongo_db, facet_scan_limit=scan_limit)
    service.ensure_indexes()
    # Ties on collected (three per hour) and undated ones: the order is (collected, id).
    save(
        mongo_db,
        *(record(i, tags=["t1"], collected=T0 + timedelta(hours=i // 3)) for i in range(20)),
    )
    save(mongo_db, *(record(100 + i, tags=["t1"], collected=None) for i in range(4)))
    save(mongo_db, *(record(150 + i, tags=["other"]) for i in range(3)))
    everything = service.search(DatasetQuery(tags=tags, limit=500), facets=False).datasets
    expected = [r.uuid for r in everything if "t1" in r.tags or not tags]
    assert len(expected) == (24 if tags else 27)
    seen: list[str] = []
    cursor = None
    arrived = 0
    while True:
        page = service.search(DatasetQuery(tags=tags, limit=5, cursor=cursor), facets=facets)
        seen += _ids(page.datasets)
        # A newer dataset and one inside the already-seen range arrive between pages.
        save(
            mongo_db,
            record(200 + arrived, tags=["t1"], collected=T0 + timedelta(days=30 + arrived)),
            record(
                300 + arrived, tags=["t1"], collected=T0 + timedelta(hours=3, minutes=arrived + 1)
            ),
        )
        arrived += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        assert page.total == len(expected) + 2 * (arrived - 1)
        assert (page.facets is not None) == facets
    assert len(seen) == len(set(seen))
    # Everything that was there at the start is seen once, in order; arrivals after the
    # cursor's position may show (those sorting after it), never before it.
    assert [i for i in seen if i in expected] == expected


def test_search_cursor_of_the_last_dated_page_reaches_undated(
    mongo_db: Database[Document], service: CatalogQueryService
) -> None:
    save(mongo_db, record(0), record(1), record(2, collected=None), record(3, collected=None))
    first = service.search(DatasetQuery(limit=2))
    assert first.next_cursor is not None
    second = service.search(DatasetQuery(limit=1, cursor=first.next_cursor))
    assert second.next_cursor is not None
    third = service.search(DatasetQuery(limit=5, cursor=second.next_cursor))
    assert third.next_cursor is None
    ids = _ids(first.datasets + second.datasets + third.datasets)
    assert len(set(ids)) == 4
    assert [d.collected for d in second.datasets + third.datasets] == [None, None]


def test_search_facets_count_the_whole_query(
    service: CatalogQueryService, lab: list[DatasetRecord]
) -> None:
    page = service.search(
        DatasetQuery(tags=["t1"], limit=1), facet_attributes=["qh.qubit", "sample"]
    )
    assert len(page.datasets) == 1
    assert page.total == 3
    assert page.facets is not None
    assert [(f.value, f.count) for f in page.facets.tags] == [("t1", 3), ("Q1", 1), ("Q2", 1)]
    assert [(f.value, f.count) for f in page.facets.set_ups] == [("fridge-1", 2), ("fridge-2", 1)]
    assert [(f.value, f.count) for f in page.facets.attributes["qh.qubit"]] == [
        ("Q1", 1),
        ("Q2", 1),
    ]
    assert [(f.value, f.count) for f in page.facets.attributes["sample"]] == [
        ("chip-a", 1),
        ("chip-b", 1),
    ]
    windowed = service.search(DatasetQuery(collected_after=T0 + timedelta(hours=2)))
    assert windowed.facets is not None
    assert [(f.value, f.count) for f in windowed.facets.set_ups] == [("fridge-2", 2)]
    assert service.search(DatasetQuery(), facets=False).facets is None


@pytest.mark.parametrize(
    "query",
    [
        DatasetQuery(limit=1),
        DatasetQuery(tags=["t1"], limit=1),
        DatasetQuery(collected_after=T0 + timedelta(hours=1), limit=2),
        DatasetQuery(set_up="fridge-1", limit=1),
    ],
)
def test_search_facets_counted_on_the_server_equal_those_counted_here(
    mongo_db: Database[Document], lab: list[DatasetRecord], query: DatasetQuery
) -> None:
    keys = ["qh.qubit", "sample"]
    here = CatalogQueryService(mongo_db).search(query, facet_attributes=keys)
    on_server = CatalogQueryService(mongo_db, facet_scan_limit=0).search(
        query, facet_attributes=keys
    )
    assert here.next_cursor is not None  # more than one page: facets need their own query
    assert on_server.total == here.total
    assert on_server.facets == here.facets
    assert here.facets is not None
    assert here.facets.tags


def test_get_and_get_by_alt_uid_return_the_record(
    service: CatalogQueryService, lab: list[DatasetRecord]
) -> None:
    assert service.get(lab[1].uuid) == lab[1]
    assert service.get_by_alt_uid("scope-2", lab[3].alt_uid) == lab[3]
    with pytest.raises(DatasetNotFoundError, match="scope 'scope-1'"):
        service.get_by_alt_uid("scope-1", lab[3].alt_uid)
    with pytest.raises(DatasetNotFoundError, match="no-such-id"):
        service.get("no-such-id")


def test_datasets_of_run_finds_the_run_in_every_scope(
    mongo_db: Database[Document], service: CatalogQueryService
) -> None:
    """The console knows a raw measurement by its GUID alone, not by its scope."""
    in_b = record(7, scope="scope-b")
    in_a = record(7, scope="scope-a")
    other = record(8, scope="scope-a")
    save(mongo_db, in_b, in_a, other)
    assert service.datasets_of_run(in_a.alt_uid) == [in_a, in_b]
    assert service.datasets_of_run("guid-unknown") == []


def test_search_bad_cursor_and_attributes_name_the_parameter(
    service: CatalogQueryService,
) -> None:
    with pytest.raises(InvalidDatasetQueryError, match=r"^cursor="):
        service.search(DatasetQuery(cursor="not-a-cursor"))
    with pytest.raises(InvalidDatasetQueryError, match=r"^attr='qubit' .*key=value"):
        parse_attributes(["qubit"])
    assert parse_attributes(["a.b=c=d"]) == {"a.b": "c=d"}
    with pytest.raises(ValidationError, match="limit"):
        DatasetQuery(limit=501)


def test_ensure_indexes_backfills_search_fields_of_older_records(
    mongo_db: Database[Document],
) -> None:
    older = record(0, attributes={"set-up": "fridge-9", "x.y": "1"})
    mongo_db.datasets.insert_one({"_id": older.uuid, **older.model_dump(mode="python")})
    # Saved with set_up and attribute_pairs but before collected_us (an undated one too).
    keyless = [record(1, attributes={"set-up": "fridge-9"}), record(2, collected=None)]
    for item in keyless:
        document = dataset_document(item)
        del document["collected_us"]
        mongo_db.datasets.insert_one(document)
    catalog = CatalogQueryService(mongo_db)
    assert catalog.search(DatasetQuery(set_up="fridge-9")).total == 1
    assert catalog.search(DatasetQuery(collected_after=T0)).total == 0
    catalog.ensure_indexes()
    assert _ids(catalog.search(DatasetQuery(attributes={"x.y": "1"})).datasets) == [older.uuid]
    window = DatasetQuery(
        set_up="fridge-9", collected_after=T0, collected_before=T0 + timedelta(hours=2)
    )
    assert _ids(catalog.search(window).datasets) == [keyless[0].uuid, older.uuid]
    assert _ids(catalog.search(DatasetQuery(limit=1)).datasets) == [keyless[0].uuid]
    keys = {d["_id"]: d.get("collected_us") for d in mongo_db.datasets.find()}
    assert keys == {
        older.uuid: collected_key(older.collected),
        keyless[0].uuid: collected_key(keyless[0].collected),
        keyless[1].uuid: None,
    }
    assert catalog.repository.backfill_search_fields() == 0


def _order(records: list[DatasetRecord]) -> list[str]:
    """The search order of ``records``: newest first (at MongoDB's millisecond precision), ties
    by uuid descending, undated last."""
    dated = [r for r in records if r.collected is not None]
    undated = [r for r in records if r.collected is None]
    key = collected_key
    dated.sort(key=lambda r: (key(r.collected), r.uuid), reverse=True)
    undated.sort(key=lambda r: r.uuid, reverse=True)
    return [r.uuid for r in dated + undated]


@pytest.mark.parametrize("scan_limit", [0, 1000], ids=["page-finds", "one-scan"])
@pytest.mark.parametrize("tags", [[], ["t1"]], ids=["unfiltered", "tagged"])
def test_search_pages_through_datasets_collected_within_one_second(
    mongo_db: Database[Document], scan_limit: int, tags: list[str]
) -> None:
    service = CatalogQueryService(mongo_db, facet_scan_limit=scan_limit)
    service.ensure_indexes()
    # Ten datasets 100 ms apart inside one second, two more on the same (sub-millisecond)
    # instant, the neighbouring seconds, and undated ones.
    initial = save(
        mongo_db,
        *(
            record(i, tags=["t1"], collected=T0 + timedelta(milliseconds=100 * i))
            for i in range(10)
        ),
        *(
            record(20 + i, tags=["t1"], collected=T0 + timedelta(microseconds=250_400))
            for i in (0, 1)
        ),
        record(30, tags=["t1"], collected=T0 - timedelta(milliseconds=1)),
        record(31, tags=["t1"], collected=T0 + timedelta(seconds=1)),
        record(40, tags=["t1"], collected=None),
        record(41, tags=["t1"], collected=None),
    )
    expected = _order(initial)
    present = list(initial)
    seen: list[str] = []
    must_show: list[str] = []
    cursor = None
    arrived = 0
    while True:
        page = service.search(DatasetQuery(tags=tags, limit=2, cursor=cursor), facets=False)
        seen += _ids(page.datasets)
        assert page.total == len(present)
        # Datasets arrive inside the same second (between those seen and ahead of them).
        arrivals = save(
            mongo_db,
            record(
                100 + arrived,
                tags=["t1"],
                collected=T0 + timedelta(milliseconds=(930 - 100 * arrived) % 1000 + 1),
            ),
            record(200 + arrived, tags=["t1"], collected=T0 + timedelta(milliseconds=50 + arrived)),
        )
        arrived += 1
        present += arrivals
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        # Those sorting after the last one shown must come on a later page.
        order = _order([*present])
        position = order.index(seen[-1])
        must_show += [a.uuid for a in arrivals if order.index(a.uuid) > position]
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in expected] == expected
    assert set(must_show) <= set(seen)
    assert seen == [i for i in _order(present) if i in seen]


@pytest.mark.parametrize("scan_limit", [0, 1000], ids=["page-finds", "one-scan"])
@pytest.mark.parametrize(
    ("after_us", "before_us", "expected"),
    [
        (300_000, 700_000, [6, 5, 4, 3]),  # after inclusive, before exclusive
        (300_001, 700_001, [7, 6, 5, 4]),  # bounds inside a millisecond
        (300_500, None, [10, 9, 8, 7, 6, 5, 4]),
        (None, 300_000, [2, 1, 0]),
        (None, 1, [0]),
        (0, 1_000_000, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
        (900_001, None, [10]),
    ],
)
def test_search_time_window_with_sub_second_bounds_is_exact(
    mongo_db: Database[Document],
    scan_limit: int,
    after_us: int | None,
    before_us: int | None,
    expected: list[int],
) -> None:
    service = CatalogQueryService(mongo_db, facet_scan_limit=scan_limit)
    service.ensure_indexes()
    lab = save(
        mongo_db,
        *(
            record(i, tags=["t1"], collected=T0 + timedelta(milliseconds=100 * i))
            for i in range(10)
        ),
        record(10, tags=["t1"], collected=T0 + timedelta(seconds=1)),
        record(11, tags=["t1"], collected=None),
    )

    def at(us: int | None) -> datetime | None:
        return None if us is None else T0 + timedelta(microseconds=us)

    for tags in ([], ["t1"]):
        query = DatasetQuery(
            tags=tags, collected_after=at(after_us), collected_before=at(before_us), limit=3
        )
        shown: list[str] = []
        page = service.search(query)
        shown += _ids(page.datasets)
        assert page.total == len(expected)
        while page.next_cursor is not None:
            page = service.search(query.model_copy(update={"cursor": page.next_cursor}))
            shown += _ids(page.datasets)
        assert shown == [lab[i].uuid for i in expected]


def test_saved_records_carry_the_exact_integer_key_of_collected(
    mongo_db: Database[Document],
) -> None:
    dated, undated = save(
        mongo_db,
        record(0, collected=T0 + timedelta(microseconds=123_456)),
        record(1, collected=None),
    )
    stored = mongo_db.datasets.find_one({"_id": dated.uuid})
    assert stored is not None
    # Milliseconds, as the datetime is stored: the key orders like the collected shown.
    assert stored["collected_us"] == int(T0.timestamp()) * 1_000_000 + 123_000
    assert as_utc(stored["collected"]) == T0 + timedelta(microseconds=123_000)
    plain = mongo_db.datasets.find_one({"_id": undated.uuid})
    assert plain is not None
    assert plain["collected_us"] is None
