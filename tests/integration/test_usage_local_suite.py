"""`on_usage_event` through the local suite: real publisher -> Pub/Sub push -> function -> record
and counter shards.

And the outage drill: Firestore paused (SIGSTOP of the emulator's process group) while events
flow, then resumed; Pub/Sub redelivers what the function did not acknowledge, and every event
ends up recorded exactly once.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from shared.publisher import publish_usage_event
from shared.times import month_of
from tests.usage_support import sum_shards


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


def _shards(suite: Any, customer_id: str) -> dict[str, Any]:
    month = month_of(datetime.now(UTC))
    return sum_shards(
        suite.firestore,
        customer_id,
        month,
        suite.settings.usage_counters_collection,
        suite.settings.usage_tracking_collection,
    )


def test_published_event_is_pushed_to_the_function_and_recorded(local_suite: Any) -> None:
    suite = local_suite
    cid = f"ls_{uuid.uuid4().hex[:8]}"
    _customer(suite, cid, monthly_scene_quota=2)
    message_ids = {_publish(suite, cid, n) for n in range(3)}

    records = _wait_records(suite, cid, 3, timeout=60)
    assert len(records) == 3
    assert {r["message_id"] for r in records} == message_ids
    for record in records:
        assert record["estimated_cost"] == 3.29  # pro: 10 min x 0.30 + 0.5 GB x 0.50 + 5 x 0.007
        assert record["billable"] is True
        assert record["pricing_tier"] == "pro"
        assert isinstance(record["recorded_at"], datetime)
    # Counted in the month's shards (the fold mirrors them onto the customer document).
    totals = _shards(suite, cid)
    assert (totals["records"], totals["scenes_generated"]) == (3, 3)
    assert totals["episodes_generated"] == 15
    assert totals["cost_cents"] == 3 * 329


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
    totals = _shards(suite, cid)
    assert (totals["records"], totals["scenes_generated"]) == (total, total)
    assert totals["episodes_generated"] == 5 * total
    failed = [
        i for i in suite.invocations(since=mark, function="on-usage-event") if i["status"] >= 500
    ]
    assert failed, "the outage never reached the function: nothing was redelivered"
