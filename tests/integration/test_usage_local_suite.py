"""`on_usage_event` through the local suite: real publisher -> Pub/Sub push -> function -> record
-> fold -> month summary and customer counters.

And the outage drill: Firestore paused (SIGSTOP of the emulator's process group) while events
flow, then resumed; Pub/Sub redelivers what the function did not acknowledge, and every event
ends up recorded exactly once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from shared.counters import Sums, counter_doc_id, fold_bucket
from shared.publisher import publish_usage_event
from shared.times import month_of
from tests.usage_support import sum_records

FOLD = "fold-usage-counters"


def _records(suite: Any, customer_id: str) -> list[dict[str, Any]]:
    query = suite.firestore.collection(suite.settings.usage_tracking_collection).where(
        filter=FieldFilter("customer_id", "==", customer_id)
    )
    return [d.to_dict() for d in query.stream(timeout=10)]


def _wait_records(suite: Any, customer_id: str, count: int, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    records: list[Any] = []
    while time.monotonic() < deadline:
        records = _records(suite, customer_id)
        if len(records) >= count:
            return records
        time.sleep(0.3)
    return records


def _customer(suite: Any, customer_id: str, **fields: Any) -> None:
    suite.firestore.collection(suite.settings.customers_collection).document(customer_id).set(
        {"schema_version": 1, "bundle_tier": "pro", **fields}
    )


def _publish(suite: Any, customer_id: str, n: int) -> str:
    return publish_usage_event(
        customer_id=customer_id,
        scene_id=f"scene_{n % 3}",
        action="scene_generated",
        timestamp=datetime.now(UTC),
        event_id=f"{customer_id}-{n}",
        episodes_generated=5,
        compute_minutes=10.0,
        storage_gb=0.5,
        client=suite.pubsub.publisher,
        settings=suite.settings,
    )


def fold_until(suite: Any, done: Callable[[], bool], timeout: float = 120.0) -> bool:
    """Fire folds on the local suite, one at a time, until `done()` holds (True) or the deadline
    passes (False).

    A fold runs asynchronously (Pub/Sub push) and counts the records committed at least
    `usage_fold_lag_seconds` before it reads: the first fold fired after the lag normally
    counts every record already written; another is fired only when it did not."""
    lag = suite.settings.usage_fold_lag_seconds
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(lag + 0.5)  # the records written so far are now old enough to be counted
        since = suite.mark()
        suite.fire_fold()
        suite.wait_for(
            lambda items: any(i["function"] == FOLD and i["status"] < 300 for i in items),
            since,
            timeout=max(deadline - time.monotonic(), 1.0),
        )
        if done():
            return True
    return False


def summary_doc(suite: Any, customer_id: str, month: str) -> dict[str, Any]:
    """The customer-month's summary, {} when the fold has not written it."""
    ref = suite.firestore.collection(suite.settings.usage_counters_collection).document(
        counter_doc_id(customer_id, month)
    )
    snap = ref.get(timeout=30)
    return (snap.to_dict() or {}) if snap.exists else {}


def fold_until_counted(
    suite: Any, customer_id: str, month: str, records: int, timeout: float = 120.0
) -> dict[str, Any]:
    """Fire folds until the customer-month's summary counts at least `records` records (or the
    deadline passes); return the summary ({} if none)."""
    fold_until(
        suite,
        lambda: summary_doc(suite, customer_id, month).get("records", 0) >= records,
        timeout,
    )
    return summary_doc(suite, customer_id, month)


def customer_doc(suite: Any, customer_id: str) -> dict[str, Any]:
    ref = suite.firestore.collection(suite.settings.customers_collection).document(customer_id)
    return ref.get(timeout=30).to_dict() or {}


def test_published_event_is_pushed_to_the_function_recorded_and_folded(local_suite: Any) -> None:
    suite = local_suite
    cid = f"ls_{uuid.uuid4().hex[:8]}"
    _customer(suite, cid, monthly_scene_quota=2)
    message_ids = {_publish(suite, cid, n) for n in range(3)}

    records = _wait_records(suite, cid, 3, timeout=60)
    assert len(records) == 3
    assert {r["message_id"] for r in records} == message_ids
    month = month_of(records[0]["timestamp"])
    buckets = suite.settings.usage_fold_buckets
    for record in records:
        assert record["estimated_cost"] == 3.29  # pro: 10 min x 0.30 + 0.5 GB x 0.50 + 5 x 0.007
        assert record["billable"] is True
        assert record["pricing_tier"] == "pro"
        assert isinstance(record["recorded_at"], datetime)
        # What the fold finds and sums each record by.
        assert record["fold_key"] == counter_doc_id(cid, month)
        assert record["fold_bucket"] == fold_bucket(cid, month, buckets)
        assert (record["scenes_generated"], record["cost_cents"]) == (1, 329)
    assert sum_records(suite.firestore, cid, month) == Sums(
        records=3,
        scenes_generated=3,
        episodes_generated=15,
        cost_cents=3 * 329,
        compute_minutes=30.0,
        storage_gb=1.5,
    )
    # The fold sums them into the month summary and the customer's counters.
    summary = fold_until_counted(suite, cid, month, 3)
    assert (summary["records"], summary["scenes_generated"], summary["scenes_total"]) == (3, 3, 3)
    assert (summary["episodes_generated"], summary["cost_cents"]) == (15, 3 * 329)
    assert summary["alerts"] == [80, 100]  # a quota of 2
    customer = customer_doc(suite, cid)
    assert customer["scenes_generated_this_month"] == 3
    assert customer["quota_period"] == month
    assert (customer["total_scenes_generated"], customer["total_episodes_generated"]) == (3, 15)


def test_firestore_paused_while_events_flow_every_event_recorded_once(local_suite: Any) -> None:
    suite = local_suite
    cid = f"outage_{uuid.uuid4().hex[:8]}"
    _customer(suite, cid)
    total = 30
    mark = suite.mark()
    for n in range(10):
        _publish(suite, cid, n)
    # Longer than the function's Firestore deadline: calls in flight fail, Pub/Sub redelivers.
    outage = suite.settings.firestore_timeout_seconds + 2
    suite.emulators.pause_firestore()
    try:
        for n in range(10, 25):
            _publish(suite, cid, n)
        time.sleep(outage)
    finally:
        suite.emulators.resume_firestore()
    for n in range(25, total):
        _publish(suite, cid, n)

    records = _wait_records(suite, cid, total, timeout=120)
    assert sorted(r["event_id"] for r in records) == sorted(f"{cid}-{n}" for n in range(total))
    time.sleep(2)  # late redeliveries must not add anything
    assert len(_records(suite, cid)) == total
    month = month_of(records[0]["timestamp"])
    totals = sum_records(suite.firestore, cid, month)
    assert (totals.records, totals.scenes_generated, totals.episodes_generated) == (
        total,
        total,
        5 * total,
    )
    # Each event counted once by the fold, redeliveries or not.
    summary = fold_until_counted(suite, cid, month, total)
    assert (summary["records"], summary["scenes_total"]) == (total, total)
    assert summary["episodes_generated"] == 5 * total
    customer = customer_doc(suite, cid)
    assert customer["scenes_generated_this_month"] == total
    assert customer["total_episodes_generated"] == 5 * total
    failed = [
        i for i in suite.invocations(since=mark, function="on-usage-event") if i["status"] >= 500
    ]
    assert failed, "the outage never reached the function: nothing was redelivered"
