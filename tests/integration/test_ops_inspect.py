"""ops.inspect on the real emulator: every listing pages exactly (none repeated, none missed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from ops import inspect
from ops.inspect import CursorError, InspectError, Page
from shared.settings import load_settings

T = TypeVar("T")
SETTINGS = load_settings({})
T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)

pytestmark = pytest.mark.usefixtures("clean_firestore")


def _pages(fetch: Callable[[str | None], Page[T]]) -> list[Page[T]]:
    pages, cursor = [], None
    while True:
        page = fetch(cursor)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _ids(pages: list[Page[Any]]) -> list[str]:
    return [getattr(i, "id", None) or i.period for p in pages for i in p.items]


def _write(db: Any, collection: str, docs: dict[str, dict[str, Any]]) -> None:
    batch = db.batch()
    for doc_id, data in docs.items():
        batch.set(db.collection(collection).document(doc_id), data)
    batch.commit()


def _record(customer: str, i: int, action: str = "scene_generated", **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "customer_id": customer,
        "scene_id": f"scene_{i % 3}",
        "action": action,
        # Several records share a timestamp: the document id must break the tie.
        "timestamp": T0 + dt.timedelta(hours=i // 2),
        "billable": True,
        "estimated_cost": 0.1,
        **extra,
    }


def test_25_customers_in_pages_of_10_make_3_pages_none_repeated_none_missed(
    firestore_client: Any,
) -> None:
    wanted = {f"cust_{i:02d}": {"schema_version": 1, "bundle_tier": "pro"} for i in range(25)}
    wanted["cust_bad"] = {"schema_version": 1, "bundle_tier": "platinum"}
    _write(firestore_client, "customers", wanted)
    pages = _pages(lambda c: inspect.customers(firestore_client, page_size=10, cursor=c))
    assert [len(p.items) for p in pages] == [10, 10, 6]
    ids = _ids(pages)
    assert ids == sorted(wanted)
    bad = next(i for p in pages for i in p.items if i.id == "cust_bad")
    assert bad.customer is None
    assert bad.tier == "platinum"
    assert bad.problems[0].field == "bundle_tier"
    good = inspect.customer(firestore_client, "cust_03")
    assert good is not None
    assert good.customer is not None
    assert good.tier == "pro"
    assert inspect.customer(firestore_client, "nobody") is None


def test_exactly_a_page_full_has_no_empty_last_page(firestore_client: Any) -> None:
    _write(
        firestore_client,
        "customers",
        {f"c{i}": {"schema_version": 1, "bundle_tier": "pro"} for i in range(20)},
    )
    pages = _pages(lambda c: inspect.customers(firestore_client, page_size=10, cursor=c))
    assert [len(p.items) for p in pages] == [10, 10]


def test_usage_of_a_customer_and_month_pages_by_time_then_id(firestore_client: Any) -> None:
    records = {f"r{i:02d}": _record("c1", i) for i in range(25)}
    records.update({f"e{i}": _record("c1", i, action="episodes_generated") for i in range(4)})
    records["other_customer"] = _record("c2", 1)
    records["next_month"] = {
        **_record("c1", 1),
        "timestamp": dt.datetime(2025, 4, 1, tzinfo=dt.UTC),
    }
    _write(firestore_client, "usage_tracking", records)

    pages = _pages(
        lambda c: inspect.usage(
            firestore_client, "c1", "2025-03", action="scene_generated", page_size=10, cursor=c
        )
    )
    assert [len(p.items) for p in pages] == [10, 10, 5]
    ids = _ids(pages)
    assert sorted(ids) == sorted(f"r{i:02d}" for i in range(25))
    assert len(set(ids)) == 25
    times = [i.record.timestamp for p in pages for i in p.items if i.record is not None]
    assert times == sorted(times)
    assert len(times) == 25

    every = list(
        inspect.iter_all(
            lambda c: inspect.usage(firestore_client, "c1", "2025-03", page_size=7, cursor=c)
        )
    )
    assert len(every) == 29
    assert {i.id for i in every} >= {"e0", "r00"}


def test_rejections_filters_and_dead_letters_newest_first(firestore_client: Any) -> None:
    docs = {}
    for i in range(25):
        docs[f"dl_{i:02d}"] = {
            "kind": "dead_letter",
            "customer_id": "c1" if i % 2 else "c2",
            "reason": "delivery kept failing",
            "rejected_at": T0 + dt.timedelta(minutes=i // 3),
        }
    for i in range(5):
        docs[f"bad_{i}"] = {
            "kind": "invalid_event",
            "customer_id": "c1",
            "reason": "bad field",
            "rejected_at": T0 + dt.timedelta(days=1, minutes=i),
        }
    _write(firestore_client, "usage_rejections", docs)

    pages = _pages(lambda c: inspect.dead_letters(firestore_client, page_size=10, cursor=c))
    assert [len(p.items) for p in pages] == [10, 10, 5]
    ids = _ids(pages)
    assert sorted(ids) == sorted(k for k in docs if k.startswith("dl_"))
    assert len(set(ids)) == 25
    times = [i.rejected_at for p in pages for i in p.items]
    assert times == sorted(times, reverse=True)  # type: ignore[type-var]

    c1 = list(
        inspect.iter_all(
            lambda c: inspect.rejections(firestore_client, customer_id="c1", page_size=4, cursor=c)
        )
    )
    assert len(c1) == 12 + 5
    assert {i.customer_id for i in c1} == {"c1"}
    both = inspect.rejections(firestore_client, kind="invalid_event", customer_id="c1")
    assert {i.id for i in both.items} == {f"bad_{i}" for i in range(5)}
    assert both.next_cursor is None
    recent = inspect.rejections(firestore_client, since=T0 + dt.timedelta(hours=1))
    assert {i.kind for i in recent.items} == {"invalid_event"}
    assert len(recent.items) == 5


def test_alerts_and_resets(firestore_client: Any) -> None:
    alerts = {
        f"c{i:02d}_2025-03_{pct}": {
            "customer_id": f"c{i:02d}",
            "month": "2025-03",
            "threshold_percent": pct,
            "state": "published",
        }
        for i in range(10)
        for pct in (80, 100)
    }
    alerts.update(
        {"c01_2025-02_80": {"customer_id": "c01", "month": "2025-02", "threshold_percent": 80}}
    )
    _write(firestore_client, "quota_alerts", alerts)
    pages = _pages(lambda c: inspect.alerts(firestore_client, page_size=10, cursor=c))
    assert [len(p.items) for p in pages] == [10, 10, 1]
    assert _ids(pages) == sorted(alerts)
    march = list(
        inspect.iter_all(
            lambda c: inspect.alerts(firestore_client, month="2025-03", page_size=6, cursor=c)
        )
    )
    assert len(march) == 20
    c01 = inspect.alerts(firestore_client, customer_id="c01", month="2025-02").items
    assert [(a.id, a.threshold_percent) for a in c01] == [("c01_2025-02_80", 80)]

    months = [f"2024-{m:02d}" for m in range(1, 13)] + ["2025-01"]
    _write(
        firestore_client, "quota_resets", {m: {"period": m, "customers_reset": 3} for m in months}
    )
    resets = _pages(lambda c: inspect.resets(firestore_client, page_size=5, cursor=c))
    assert [len(p.items) for p in resets] == [5, 5, 3]
    assert [i.period for p in resets for i in p.items] == sorted(months, reverse=True)
    assert resets[0].items[0].customers_reset == 3


def test_a_cursor_works_only_for_its_own_listing_and_filters(firestore_client: Any) -> None:
    _write(
        firestore_client,
        "usage_tracking",
        {f"r{i}": _record("c1", i) for i in range(3)},
    )
    first = inspect.usage(firestore_client, "c1", "2025-03", page_size=1)
    assert first.next_cursor is not None
    with pytest.raises(CursorError, match="another listing"):
        inspect.usage(firestore_client, "c2", "2025-03", cursor=first.next_cursor)
    with pytest.raises(CursorError, match="another listing"):
        inspect.customers(firestore_client, cursor=first.next_cursor)
    with pytest.raises(CursorError, match="not a cursor"):
        inspect.customers(firestore_client, cursor="garbage!")
    second = inspect.usage(firestore_client, "c1", "2025-03", page_size=1, cursor=first.next_cursor)
    assert [i.id for i in second.items] == ["r1"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda db: inspect.customers(db, page_size=0), "page_size=0"),
        (lambda db: inspect.customers(db, page_size=5000), "page_size=5000"),
        (lambda db: inspect.usage(db, "c1", "2025-13"), "month='2025-13'"),
        (lambda db: inspect.usage(db, "a/b", "2025-01"), "customer_id='a/b'"),
        (lambda db: inspect.rejections(db, since=dt.datetime(2025, 1, 1)), "since="),  # noqa: DTZ001
        (lambda db: inspect.alerts(db, month="March"), "month='March'"),
    ],
)
def test_bad_arguments_name_the_value(
    firestore_client: Any, call: Callable[[Any], Any], message: str
) -> None:
    with pytest.raises(InspectError, match=message.replace("(", r"\(")):
        call(firestore_client)
    assert issubclass(InspectError, ValueError)
