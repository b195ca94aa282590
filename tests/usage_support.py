"""Helpers for the usage tests: fakes of the two Protocols, message builders, malformed bodies."""

from __future__ import annotations

import base64
import copy
import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cloudevents.http import CloudEvent

from functions.usage import (
    AlertMarker,
    CommitConflictError,
    CustomerDocument,
    FieldPath,
    PubSubMessage,
)
from shared.pricing import to_decimal

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def event_body(**over: Any) -> dict[str, Any]:
    """A valid usage event body (schema.md's example), with overrides; None removes a key."""
    body: dict[str, Any] = {
        "schema_version": 1,
        "event_id": "evt-1",
        "customer_id": "lab_001",
        "scene_id": "scene_kitchen_v2",
        "action": "episodes_generated",
        "timestamp": "2025-01-10T14:30:00Z",
        "episodes_generated": 100,
        "compute_minutes": 45.5,
        "storage_gb": 2.3,
        "details": {"batch_size": 10, "quality_level": "high"},
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def message(body: Any, message_id: str = "m-1", **attributes: str) -> PubSubMessage:
    """A decoded Pub/Sub message carrying `body` (dict -> JSON, str/bytes as is)."""
    if isinstance(body, dict | list):
        data = json.dumps(body).encode()
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = bytes(body)
    return PubSubMessage(message_id, data, attributes, NOW.isoformat())


def cloud_event(data: bytes, message_id: str = "m-1", **attributes: str) -> CloudEvent:
    """A `messagePublished` CloudEvent as functions-framework builds it from a push request."""
    return CloudEvent(
        {
            "id": message_id,
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/projects/demo-x/topics/usage-events",
            "specversion": "1.0",
        },
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "attributes": attributes,
                "messageId": message_id,
                "publishTime": "2025-01-15T12:00:00.000Z",
            },
            "subscription": "projects/demo-x/subscriptions/usage",
        },
    )


def malformed_bodies() -> dict[str, bytes]:
    """At least 30 refused bodies, by a name saying what is wrong with each."""

    def j(**over: Any) -> bytes:
        return json.dumps(event_body(**over)).encode()

    def without(key: str) -> bytes:
        body = event_body()
        body.pop(key)
        return json.dumps(body).encode()

    return {
        "not_json": b"this is not json",
        "truncated_json": j()[:-5],
        "empty": b"",
        "json_array": b"[1, 2, 3]",
        "json_string": b'"scene_generated"',
        "json_null": b"null",
        "invalid_utf8": b"\xff\xfe\x00garbage",
        "missing_customer_id": without("customer_id"),
        "missing_scene_id": without("scene_id"),
        "missing_action": without("action"),
        "missing_timestamp": without("timestamp"),
        "missing_schema_version": without("schema_version"),
        "schema_version_2": j(schema_version=2),
        "schema_version_string": j(schema_version="1"),
        "episodes_string": j(episodes_generated="100"),
        "episodes_float": j(episodes_generated=1.5),
        "episodes_negative": j(episodes_generated=-1),
        "episodes_bool": j(episodes_generated=True),
        "episodes_beyond_int64": j(episodes_generated=2**63),
        "compute_negative": j(compute_minutes=-0.5),
        "storage_negative": j(storage_gb=-2.3),
        "compute_nan_literal": j().replace(b'"compute_minutes": 45.5', b'"compute_minutes": NaN'),
        "compute_infinity": j().replace(b'"compute_minutes": 45.5', b'"compute_minutes": Infinity'),
        "storage_huge_exponent": j().replace(b'"storage_gb": 2.3', b'"storage_gb": 1e400'),
        "storage_string": j(storage_gb="2.3"),
        "timestamp_naive": j(timestamp="2025-01-10T14:30:00"),
        "timestamp_garbage": j(timestamp="yesterday"),
        "timestamp_number": j(timestamp=1736519400),
        "timestamp_far_future": j(timestamp="2031-01-01T00:00:00Z"),
        "customer_id_slash": j(customer_id="a/b"),
        "customer_id_empty": j(customer_id=""),
        "customer_id_number": j(customer_id=42),
        "action_uppercase": j(action="Scene Generated"),
        "extra_field": j(colour="blue"),
        "details_not_a_map": j(details=[1, 2]),
        "details_nested_arrays": j(details={"grid": [[1, 2], [3, 4]]}),
        "details_int_too_big": j(details={"n": 2**70}),
        "details_reserved_key": j(details={"meta": {"__name__": "x"}}),
        "details_key_too_long": j(details={"k" * 1501: 1}),
        "event_id_empty": j(event_id=""),
        "unknown_customer": j(customer_id="no_such_customer_anywhere"),
        "oversized": j(details={"blob": "x" * 70_000}),
    }


def expected_cost(body: Mapping[str, Any], rates: Mapping[str, str]) -> float:
    """Independent cost of a body under one tier's rates (for assertions)."""
    from decimal import ROUND_HALF_UP, Decimal

    total = (
        to_decimal(body.get("compute_minutes")) * Decimal(rates["compute_minute"])
        + to_decimal(body.get("storage_gb")) * Decimal(rates["storage_gb"])
        + to_decimal(body.get("episodes_generated")) * Decimal(rates["episode"])
    )
    return float(total.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------------------------
# Fakes


def _set_path(doc: dict[str, Any], path: FieldPath, increment: int) -> int:
    node = doc
    for part in path[:-1]:
        node = node.setdefault(part, {})
    current = node.get(path[-1], 0)
    node[path[-1]] = (current if isinstance(current, int) else 0) + increment
    return int(node[path[-1]])


class FakeRepository:
    """In-memory UsageRepository with Firestore's create-once and precondition semantics."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.customers: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, Any] = {}
        """Update-time tokens: ints, or datetimes (as Firestore's) once a test wrote with a time."""
        self.clock: datetime | None = None
        """Time of the next writes to a customer whose token is a datetime (else +1 us)."""
        self.records: dict[str, dict[str, Any]] = {}
        self.rejections: dict[str, dict[str, Any]] = {}
        self.markers: dict[str, dict[str, Any]] = {}
        self.marker_versions: dict[str, int] = {}
        self.commits = 0
        self.conflicts = 0
        self.fail_commits = 0
        """Raise a transient error on this many next commits (before writing)."""
        self.on_read: Any = None
        """Called after each customer read (a test can change the customer in between)."""

    def _bump(self, customer_id: str, at: datetime | None = None) -> None:
        """A write: the customer's update-time token changes (to `at` when given)."""
        previous = self.versions.get(customer_id, 0)
        if at is not None:
            self.versions[customer_id] = at
        elif isinstance(previous, datetime):
            tick = previous + timedelta(microseconds=1)
            self.versions[customer_id] = max(tick, self.clock) if self.clock else tick
        else:
            self.versions[customer_id] = previous + 1

    def put_customer(
        self, customer_id: str, *, written_at: datetime | None = None, **fields: Any
    ) -> None:
        """Write a customer; `written_at` makes its update time a datetime (Firestore's)."""
        with self.lock:
            self.customers[customer_id] = {"schema_version": 1, **fields}
            self._bump(customer_id, written_at)

    def get_customer(self, customer_id: str) -> CustomerDocument | None:
        with self.lock:
            doc = self.customers.get(customer_id)
            snap = (
                None
                if doc is None
                else CustomerDocument(copy.deepcopy(doc), self.versions[customer_id])
            )
        if self.on_read is not None:
            self.on_read(customer_id)
        return snap

    def commit_usage(
        self,
        record_id: str,
        record: Mapping[str, Any],
        customer_id: str,
        increments: Mapping[FieldPath, int],
        precondition: Any | None,
        *,
        sets: Mapping[str, Any] | None = None,
    ) -> dict[FieldPath, int] | None:
        with self.lock:
            if self.fail_commits:
                self.fail_commits -= 1
                raise ConnectionError("fake: Firestore unreachable")
            if record_id in self.records:
                return None
            if (increments or sets) and customer_id not in self.customers:
                self.conflicts += 1
                raise CommitConflictError("customer gone")
            if precondition is not None and self.versions.get(customer_id) != precondition:
                self.conflicts += 1
                raise CommitConflictError("customer changed")
            self.records[record_id] = {**record, "recorded_at": "SERVER_TIMESTAMP"}
            out = {}
            if increments or sets:
                doc = self.customers[customer_id]
                doc.update(sets or {})
                for path in sorted(increments):
                    out[path] = _set_path(doc, path, increments[path])
                self._bump(customer_id)
            self.commits += 1
            return out

    def store_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        with self.lock:
            if doc_id in self.rejections:
                return False
            self.rejections[doc_id] = dict(data)
            return True

    def create_alert_marker(self, alert_id: str, data: Mapping[str, Any]) -> bool:
        with self.lock:
            if alert_id in self.markers:
                return False
            self.markers[alert_id] = dict(data)
            self.marker_versions[alert_id] = 1
            return True

    def get_alert_marker(self, alert_id: str) -> AlertMarker | None:
        with self.lock:
            if alert_id not in self.markers:
                return None
            return AlertMarker(dict(self.markers[alert_id]), self.marker_versions[alert_id])

    def take_over_alert_marker(self, alert_id: str, changes: Mapping[str, Any], token: Any) -> bool:
        with self.lock:
            if self.marker_versions.get(alert_id) != token:
                return False
            self.markers[alert_id].update(changes)
            self.marker_versions[alert_id] += 1
            return True

    def mark_alert_published(self, alert_id: str, changes: Mapping[str, Any]) -> None:
        with self.lock:
            self.markers[alert_id].update(changes)
            self.marker_versions[alert_id] += 1


class FakePublisher:
    """In-memory AlertPublisher; `fail_next` makes the next publishes raise (a crash)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.fail_next = 0

    def publish_alert(self, data: bytes, attributes: Mapping[str, str]) -> str:
        with self.lock:
            if self.fail_next:
                self.fail_next -= 1
                raise ConnectionError("fake: Pub/Sub unreachable")
            self.sent.append((json.loads(data), dict(attributes)))
            return f"alert-{len(self.sent)}"


# --------------------------------------------------------------------------------------------
# Counter shards in the agreed layout (shared.counters), written directly: the fold's tests do
# not depend on the usage function that writes them in production.


def write_shard(
    client: Any,
    customer_id: str,
    month: str,
    shard: int | str = 0,
    *,
    records: int = 1,
    scenes: int = 0,
    episodes: int = 0,
    cost_cents: int = 0,
    compute_minutes: float = 0.0,
    storage_gb: float = 0.0,
    buckets: int = 16,
    collection: str = "usage_counters",
) -> None:
    """Increment one shard `usage_counters/{customer}_{month}/shards/{shard}` as the usage
    commit does: Increment on every counter, `updated_at` = server time, the routing fields."""
    from google.cloud.firestore_v1 import SERVER_TIMESTAMP, Increment

    from shared.counters import counter_doc_id, fold_bucket

    ref = (
        client.collection(collection)
        .document(counter_doc_id(customer_id, month))
        .collection("shards")
        .document(str(shard))
    )
    ref.set(
        {
            "records": Increment(records),
            "scenes_generated": Increment(scenes),
            "episodes_generated": Increment(episodes),
            "cost_cents": Increment(cost_cents),
            "compute_minutes": Increment(compute_minutes),
            "storage_gb": Increment(storage_gb),
            "customer_id": customer_id,
            "month": month,
            "fold_bucket": fold_bucket(customer_id, month, buckets),
            "updated_at": SERVER_TIMESTAMP,
        },
        merge=True,
    )
