"""A console page load reads one page of documents, not the collection: every document the
Firestore client returns is counted, by collection, while the page is served."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from google.cloud.firestore_v1.aggregation import AggregationQuery
from google.cloud.firestore_v1.client import Client
from google.cloud.firestore_v1.document import DocumentReference
from google.cloud.firestore_v1.query import Query

from ops import inspect
from ops.console.app import create_app
from ops.console.reads import RECORDS_PAGE_SIZE
from shared.counters import record_fields
from shared.settings import get_settings
from shared.times import month_bounds, month_of
from tests.console_support import blueprint

pytestmark = pytest.mark.usefixtures("clean_firestore")

CUSTOMERS = 130
REJECTIONS = 230
PAGE = 50


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Documents returned by the client while the test runs, by collection id."""
    counted: Counter[str] = Counter()
    stream, get_all, get = Query.stream, Client.get_all, DocumentReference.get

    def counting_stream(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for snap in stream(self, *args, **kwargs):
            counted[snap.reference.parent.id] += 1
            yield snap

    def counting_get_all(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for snap in get_all(self, *args, **kwargs):
            counted[snap.reference.parent.id] += 1
            yield snap

    def counting_get(self: Any, *args: Any, **kwargs: Any) -> Any:
        counted[self.parent.id] += 1
        return get(self, *args, **kwargs)

    monkeypatch.setattr(Query, "stream", counting_stream)
    monkeypatch.setattr(Client, "get_all", counting_get_all)
    monkeypatch.setattr(DocumentReference, "get", counting_get)
    return counted


@pytest.fixture
def aggregations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Aggregation requests (count, sum) made while the test runs, by collection id: each is
    billed one read per 1,000 index entries it matches, and reads no document."""
    made: list[str] = []
    stream = AggregationQuery.stream

    def counting_stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(self._nested_query._parent.id)
        return stream(self, *args, **kwargs)

    monkeypatch.setattr(AggregationQuery, "stream", counting_stream)
    return made


def _seed(db: Any) -> str:
    month = month_of(datetime.now(UTC))
    now = datetime.now(UTC)
    batch = db.batch()
    for i in range(CUSTOMERS):
        cid = f"cust_{i:04d}"
        batch.set(
            db.collection("customers").document(cid),
            {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 100},
        )
        batch.set(
            db.collection("usage_counters").document(f"{cid}_{month}"),
            {"records": i, "scenes_total": i % 100, "cost_cents": 100 * i, "folded_at": now},
        )
    batch.commit()
    batch = db.batch()
    for i in range(REJECTIONS):
        batch.set(
            db.collection("usage_rejections").document(f"rej_{i:04d}"),
            {
                "kind": "dead_letter" if i % 2 else "unknown_customer",
                "reason": "test",
                "customer_id": f"cust_{i % CUSTOMERS:04d}",
                "rejected_at": now - timedelta(seconds=i),
            },
        )
    batch.commit()
    return month


def _next(page: str) -> str:
    found = re.search(r'id="next" href="[^"]*cursor=([^"&]+)', page)
    assert found, "no next page link"
    return found.group(1)


def test_each_page_load_reads_one_page(firestore_client: Any, reads: Counter[str]) -> None:
    month = _seed(firestore_client)
    app = create_app(lambda: firestore_client, settings=get_settings()).test_client()
    reads.clear()

    first = app.get("/")
    assert first.status_code == 200
    # One page of customers (and the one more that says a next page exists), their month
    # summaries in one batched read, and the reachability probe: never the 130 customers.
    assert reads == Counter({"customers": PAGE + 1 + 1, "usage_counters": PAGE})
    reads.clear()
    second = app.get(f"/?cursor={_next(first.get_data(as_text=True))}")
    assert second.status_code == 200
    assert reads == Counter({"customers": PAGE + 1 + 1, "usage_counters": PAGE})
    assert "cust_0050" in second.get_data(as_text=True)
    assert "cust_0049" not in second.get_data(as_text=True)

    reads.clear()
    assert app.get("/?q=cust_012").status_code == 200  # 10 ids start so: that many read
    assert reads == Counter({"customers": 10 + 1, "usage_counters": 10})

    reads.clear()
    assert app.get(f"/months/{month}").status_code == 200
    assert reads == Counter({"customers": PAGE + 1 + 1, "usage_counters": PAGE})

    reads.clear()
    assert app.get("/problems").status_code == 200
    assert reads == Counter({"usage_rejections": 100 + 1, "customers": 1})


ACTIONS = ("episodes_generated", "scene_generated", "upsell_applied")
MONTH_RECORDS = 3 * RECORDS_PAGE_SIZE + 7
"""A month of clearly more records than one page (three pages and some)."""
PLACES = Decimal("0.01")
"""The places the page shows compute minutes and storage GB to."""


def _usage_record(customer_id: str, i: int, when: datetime) -> dict[str, Any]:
    """Record number `i`, as the usage function writes one: the data model's fields (null where
    the event had nothing) and the fold's (`record_fields`)."""
    action = ACTIONS[i % len(ACTIONS)]
    amount = Decimal("0.25") + Decimal(i % 7) / 100
    return {
        "schema_version": 1,
        "customer_id": customer_id,
        "scene_id": f"scene_{i % 4}",
        "action": action,
        "timestamp": when,
        "billable": i % 5 != 0,
        "estimated_cost": float(amount),
        "rate_card_version": "test",
        "pricing_tier": "pro",
        "message_id": f"m{i}",
        "episodes_generated": 3 if action == "episodes_generated" else None,
        # 0.1 * (i + 1) is not exact in binary: a float sum of these differs from the exact
        # (Decimal) sum in its last digits, which the page's rounding hides.
        "compute_minutes": 0.1 * (i + 1),
        "storage_gb": 0.3 * (i % 3) if i % 2 else None,
        "details": None,
        **record_fields(customer_id, month_of(when), action, amount, 16),
    }


def _seed_month(db: Any, month: str, now: datetime) -> dict[str, dict[str, Any]]:
    """MONTH_RECORDS records of cust_0001 over the month so far, 60 of cust_0002; the exact
    sums of cust_0001's, by action and in total, summed here from what was written."""
    start = month_bounds(month)[0]
    span = now - start
    records = [
        ("cust_0001", _usage_record("cust_0001", i, start + span * i / MONTH_RECORDS))
        for i in range(MONTH_RECORDS)
    ] + [("cust_0002", _usage_record("cust_0002", i, now - span / (i + 2))) for i in range(60)]
    sums: dict[str, dict[str, Any]] = {}
    for index in range(0, len(records), 400):
        batch = db.batch()
        for n, (_cid, data) in enumerate(records[index : index + 400], start=index):
            batch.set(db.collection("usage_tracking").document(f"rec_{n:04d}"), data)
        batch.commit()
    for cid, data in records:
        if cid != "cust_0001":
            continue
        for key in (data["action"], "total"):
            s = sums.setdefault(key, Counter())
            s["records"] += 1
            s["billable"] += data["billable"]
            s["episodes"] += data["episodes_generated"] or 0
            s["compute"] += Decimal(str(data["compute_minutes"]))
            s["storage"] += Decimal(str(data["storage_gb"] or 0))
            s["cost"] += Decimal(str(data["estimated_cost"]))
    return sums


def _totals_rows(page: str) -> dict[str, list[str]]:
    """The totals table: action (and `total`) -> its cells, as shown."""
    rows = {}
    for action, cells in re.findall(r'<tr data-action="([^"]+)">(.*?)</tr>', page):
        rows[action] = re.findall(r'<td class="num">([^<]*)</td>', cells)
    found = re.search(r'<tr id="total"[^>]*>(.*?)</tr>', page, re.S)
    assert found, "no total row"
    rows["total"] = re.findall(r'<td class="num">([^<]*)</td>', found.group(1))
    return rows


def _shown(sums: Counter[str]) -> list[str]:
    """A totals line as the page shows exact sums: counts, amounts to PLACES, dollars."""

    def amount(value: Decimal) -> str:
        text = format(value.quantize(PLACES, rounding=ROUND_HALF_UP).normalize(), "f")
        return "0" if text == "-0" else text

    return [
        str(sums["records"]),
        str(sums["billable"]),
        str(sums["episodes"]),
        amount(sums["compute"]),
        amount(sums["storage"]),
        f"${sums['cost'].quantize(PLACES)}",
    ]


def test_a_customer_page_reads_one_page_of_that_customers_records(
    firestore_client: Any, reads: Counter[str], aggregations: list[str]
) -> None:
    month = _seed(firestore_client)
    now = datetime.now(UTC)
    sums = _seed_month(firestore_client, month, now)
    app = create_app(lambda: firestore_client, settings=get_settings()).test_client()
    reads.clear()
    aggregations.clear()
    page = app.get(f"/customers/cust_0001?month={month}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    # One page of records (+1 that says a next page exists) and one record per action the
    # customer has used (to learn its name): never the month's MONTH_RECORDS records, and none
    # of the other customer's.
    assert reads["usage_tracking"] == RECORDS_PAGE_SIZE + 1 + len(ACTIONS)
    assert reads["usage_tracking"] < MONTH_RECORDS
    # The customer document once for the page (its report, tier and status), once for the
    # config service's decisions, once for the reachability probe.
    assert reads["customers"] == 3
    # The sums are aggregation requests: per action its totals, its billable count and one per
    # day of the month so far; none reads a document.
    days = (now.date() - month_bounds(month)[0].date()).days + 1
    assert len(aggregations) == len(ACTIONS) * (2 + days)
    # The totals are the exact sums of the records written, per action and in total.
    rows = _totals_rows(text)
    assert rows == {key: _shown(s) for key, s in sums.items()}
    assert f'data-records="{MONTH_RECORDS}"' in text
    records_shown = re.findall(r'<td class="mono">(rec_\d+)</td>', text)
    assert len(records_shown) == RECORDS_PAGE_SIZE
    assert 'id="next-records"' in text

    # ... and they are the export's (`blueprint usage export`, which sums every record).
    exported = {
        r["customer_id"]: r
        for r in map(
            json.loads,
            blueprint(
                ["usage", "export", "--month", month, "--format", "jsonl"], firestore_client
            ).splitlines(),
        )
    }
    want = exported["cust_0001"]
    assert want["records"] == MONTH_RECORDS
    assert Decimal(want["cost_usd"]) == sums["total"]["cost"]
    assert Decimal(want["compute_minutes"]) == sums["total"]["compute"]
    assert rows["total"] == _shown(
        Counter(
            records=want["records"],
            billable=want["billable_records"],
            episodes=want["episodes"],
            compute=Decimal(want["compute_minutes"]),
            storage=Decimal(want["storage_gb"]),
            cost=Decimal(want["cost_usd"]),
        )
    )


def test_an_id_prefix_pages_through_exactly_its_customers(firestore_client: Any) -> None:
    _seed(firestore_client)
    ids = [
        c.id
        for c in inspect.iter_all(
            lambda cursor: inspect.customers(
                firestore_client, page_size=7, cursor=cursor, prefix="cust_01"
            )
        )
    ]
    assert ids == [f"cust_{i:04d}" for i in range(100, CUSTOMERS)]
    # A cursor of the whole listing is not one of the prefix's.
    whole = inspect.customers(firestore_client, page_size=7)
    with pytest.raises(inspect.CursorError):
        inspect.customers(firestore_client, cursor=whole.next_cursor, prefix="cust_01")
