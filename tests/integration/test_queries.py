"""The queries of shared/queries.py return the right documents on the real emulator."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from shared import queries, times
from shared.settings import load_settings

pytestmark = pytest.mark.integration

SETTINGS = load_settings({})


def at(day: int, month: int = 1, hour: int = 0) -> dt.datetime:
    return dt.datetime(2025, month, day, hour, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def client(emulators: Any) -> Iterator[Any]:
    db = firestore.Client(project=emulators.project, credentials=AnonymousCredentials())
    yield db
    db.close()


@pytest.fixture(scope="module")
def ids() -> dict[str, str]:
    """Ids of this module only (the project is shared with other tests)."""
    tag = uuid.uuid4().hex[:8]
    return {key: f"q{tag}_{key}" for key in ("a", "b", "s1", "s2")}


@pytest.fixture(scope="module")
def usage(client: Any, ids: dict[str, str]) -> Iterator[list[str]]:
    """Usage records around the January 2025 boundaries, for two customers and two scenes."""
    rows = [
        # (record, customer, scene, action, timestamp)
        ("r1", "a", "s1", "scene_generated", at(1)),  # first instant of January
        ("r2", "a", "s1", "episodes_generated", at(15)),
        ("r3", "a", "s2", "scene_generated", at(31, hour=23)),
        ("r4", "a", "s2", "scene_generated", at(1, month=2)),  # February: outside January
        ("r5", "b", "s1", "scene_generated", at(10)),
        ("r0", "a", "s1", "scene_generated", dt.datetime(2024, 12, 31, 23, 59, tzinfo=dt.UTC)),
    ]
    collection = client.collection(SETTINGS.usage_tracking_collection)
    batch = client.batch()
    made = []
    for record, customer, scene, action, timestamp in rows:
        doc_id = f"{ids['a']}_{record}"
        made.append(doc_id)
        batch.set(
            collection.document(doc_id),
            {
                "schema_version": 1,
                "customer_id": ids[customer],
                "scene_id": ids[scene],
                "action": action,
                "timestamp": timestamp,
                "record": record,
            },
        )
    batch.commit()
    yield made
    for doc_id in made:
        collection.document(doc_id).delete()


def records(query: Any) -> list[str]:
    return [snap.get("record") for snap in query.stream()]


def test_usage_by_customer_is_half_open_and_ordered(
    client: Any, ids: dict[str, str], usage: list[str]
) -> None:
    jan, feb = times.month_bounds("2025-01")
    query = queries.usage_by_customer(client, ids["a"], jan, feb, settings=SETTINGS)
    assert records(query) == ["r1", "r2", "r3"]


def test_usage_by_scene(client: Any, ids: dict[str, str], usage: list[str]) -> None:
    query = queries.usage_by_scene(client, ids["s1"], at(1), at(1, month=3), settings=SETTINGS)
    assert records(query) == ["r1", "r5", "r2"]


def test_usage_report_by_month_and_action(
    client: Any, ids: dict[str, str], usage: list[str]
) -> None:
    all_actions = queries.usage_report(client, ids["a"], "2025-01", settings=SETTINGS)
    assert records(all_actions) == ["r1", "r2", "r3"]
    generated = queries.usage_report(
        client, ids["a"], "2025-01", "scene_generated", settings=SETTINGS
    )
    assert records(generated) == ["r1", "r3"]
    december = queries.usage_report(client, ids["a"], "2024-12", settings=SETTINGS)
    assert records(december) == ["r0"]


def test_customers_by_id_visits_every_customer_once(client: Any, ids: dict[str, str]) -> None:
    own = f"{ids['a']}_customers"  # a collection of its own, as the reset's tests use
    collection = client.collection(own)
    # A customer without quota_reset_at must be visited too.
    mine = sorted(f"{ids['a']}_c{i:02d}" for i in range(7))
    for customer_id in mine:
        collection.document(customer_id).set({"schema_version": 1, "bundle_tier": "standard"})
    try:
        seen: list[str] = []
        after: str | None = None
        while True:
            query = queries.customers_by_id(client, after, limit=3, collection=own)
            page = [s.id for s in query.stream()]
            assert len(page) <= 3
            seen += page
            if len(page) < 3:
                break
            after = page[-1]
        assert seen == mine, "pages come in document-id order, each customer once"
        streamed = queries.customers_by_id(client, mine[1], collection=own)
        assert [s.id for s in streamed.stream()] == mine[2:], "no limit: the rest, in order"
    finally:
        for customer_id in mine:
            collection.document(customer_id).delete()


def test_customers_reset_for_period(client: Any, ids: dict[str, str]) -> None:
    collection = client.collection(SETTINGS.customers_collection)
    period = "1999-04"  # a month no other test writes
    mine = {f"{ids['b']}_p{i}": ("1999-04" if i < 3 else "1999-03") for i in range(5)}
    for customer_id, quota_period in mine.items():
        collection.document(customer_id).set({"schema_version": 1, "quota_period": quota_period})
    try:
        query = queries.customers_reset_for_period(client, period, settings=SETTINGS)
        found = sorted(s.id for s in query.stream())
        assert found == sorted(c for c, p in mine.items() if p == period)
        assert int(query.count().get()[0][0].value) == 3
    finally:
        for customer_id in mine:
            collection.document(customer_id).delete()
