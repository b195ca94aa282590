"""Issue 11's outage drill: the functions host killed for 8 s during a burst of 800 usage events.

With production's delivery policy (10 attempts, backoff scaled by LOCAL_BACKOFF_SCALE for the
emulator) every event ends up recorded in `usage_tracking` or, if Pub/Sub gave up on it,
stored as a `dead_letter` rejection (a replay delivers those later), or both (recorded, answer
lost, then dead-lettered): none lost, no record and no dead letter twice.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.models import UsageEvent
from shared.names import topic_path
from shared.publisher import usage_event_bytes

EVENTS = 800
OUTAGE_SECONDS = 8.0


def _by_customer(suite: Any, collection: str, customer_id: str) -> list[dict[str, Any]]:
    query = suite.firestore.collection(collection).where(
        filter=FieldFilter("customer_id", "==", customer_id)
    )
    return [d.to_dict() for d in query.stream(timeout=30)]


@pytest.mark.slow
def test_functions_host_killed_for_8_s_during_800_events(local_suite: Any) -> None:
    suite = local_suite
    settings = suite.settings
    cid = f"drill_{uuid.uuid4().hex[:8]}"
    suite.firestore.collection(settings.customers_collection).document(cid).set(
        {"schema_version": 1, "bundle_tier": "enterprise"}
    )
    now = datetime.now(UTC)
    bodies = [
        usage_event_bytes(
            UsageEvent(
                schema_version=1,
                customer_id=cid,
                scene_id=f"scene_{n % 7}",
                action="episodes_generated",
                timestamp=now,
                event_id=f"{cid}-{n}",
                episodes_generated=1,
            )
        )
        for n in range(EVENTS)
    ]
    path = topic_path(suite.project, settings.usage_events_topic)
    started = time.monotonic()
    futures = [suite.pubsub.publisher.publish(path, body) for body in bodies]
    for future in futures:
        future.result(timeout=60)

    # Kill the host mid-burst: once some events are in, most still to come.
    def recorded() -> list[dict[str, Any]]:
        return _by_customer(suite, settings.usage_tracking_collection, cid)

    deadline = time.monotonic() + 30
    while len(recorded()) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    before_kill = len(recorded())
    suite.kill_host()
    time.sleep(OUTAGE_SECONDS)
    suite.start_host()

    wanted = {f"{cid}-{n}" for n in range(EVENTS)}
    records: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        records = recorded()
        rejections = _by_customer(suite, settings.usage_rejections_collection, cid)
        dead = [r for r in rejections if r.get("kind") == "dead_letter"]
        if len({r["event_id"] for r in records} | {d["event_id"] for d in dead}) >= EVENTS:
            break
        time.sleep(0.5)
    time.sleep(1.0)  # a late redelivery must not add anything
    records = recorded()
    rejections = _by_customer(suite, settings.usage_rejections_collection, cid)
    dead = [r for r in rejections if r.get("kind") == "dead_letter"]
    print(
        json.dumps(
            {
                "events": EVENTS,
                "recorded_before_kill": before_kill,
                "recorded": len(records),
                "dead_lettered": len(dead),
                "other_rejections": len(rejections) - len(dead),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    )
    record_ids = [r["event_id"] for r in records]
    dead_ids = [d["event_id"] for d in dead]
    assert len(record_ids) == len(set(record_ids)), "an event was recorded twice"
    assert len(dead_ids) == len(set(dead_ids)), "a dead letter was stored twice"
    # Both is legitimate: committed just before the kill, its answer lost, then every later
    # attempt failed. A replay finds the record (same record id) and counts nothing again.
    both = set(record_ids) & set(dead_ids)
    print(json.dumps({"recorded_and_dead_lettered": len(both)}))
    assert set(record_ids) | set(dead_ids) == wanted, "events lost"
    assert len(rejections) == len(dead)  # nothing else went wrong with these valid events
    for doc in dead:
        assert doc["delivery_attempts"] == 10
        assert doc["source_subscription"] == "on-usage-event-push"
