"""A console page load reads one page of documents, not the collection: every document the
Firestore client returns is counted, by collection, while the page is served."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud.firestore_v1.client import Client
from google.cloud.firestore_v1.document import DocumentReference
from google.cloud.firestore_v1.query import Query

from ops import inspect
from ops.console.app import create_app
from shared.settings import get_settings
from shared.times import month_of

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


def test_a_customer_page_reads_that_customers_month_only(
    firestore_client: Any, reads: Counter[str]
) -> None:
    month = _seed(firestore_client)
    now = datetime.now(UTC)
    batch = firestore_client.batch()
    for i in range(120):  # two customers' records: the page sums one of them
        batch.set(
            firestore_client.collection("usage_tracking").document(f"rec_{i:04d}"),
            {
                "schema_version": 1,
                "customer_id": "cust_0001" if i % 2 else "cust_0002",
                "scene_id": "s",
                "action": "scene_generated",
                "timestamp": now - timedelta(seconds=i),
                "billable": True,
                "estimated_cost": 0.25,
            },
        )
    batch.commit()
    app = create_app(lambda: firestore_client, settings=get_settings()).test_client()
    reads.clear()
    page = app.get(f"/customers/cust_0001?month={month}")
    assert page.status_code == 200
    assert 'data-records="60"' in page.get_data(as_text=True)
    # The month's 60 records summed (the report's query) plus one page of 50 (+1) listed;
    # none of the other customer's 60.
    assert reads["usage_tracking"] == 60 + 50 + 1


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
