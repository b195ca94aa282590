"""Helpers for the usage tests: a fake repository, message builders, malformed bodies, the sums
of the records (what the fold must reach)."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent

from functions.edge.pubsub import Message
from functions.usage.ports import UnstorableRecordError
from shared import logs
from shared.counters import Sums, record_sums
from shared.errors import TransientError
from shared.pricing import to_decimal
from shared.times import month_of

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


def event_body(**over: Any) -> dict[str, Any]:
    """A valid usage event body (the specification's example), with overrides; None removes a key."""
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


def message(body: Any, message_id: str = "m-1", **attributes: str) -> Message:
    """A decoded Pub/Sub message carrying `body` (dict -> JSON, str/bytes as is)."""
    if isinstance(body, dict | list):
        data = json.dumps(body).encode()
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = bytes(body)
    return Message(message_id, data, attributes, NOW.isoformat())


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
        # Valid UTF-8 and JSON text, but "\ud800" has no UTF-8 form: Firestore cannot store it.
        "lone_surrogate_customer": j().replace(b'"lab_001"', b'"\\ud800"', 1),
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
# The records' sums (what the fold must reach), read independently of the fold


def sum_records(
    client: Any, customer_id: str, month: str, collection: str = "usage_tracking"
) -> Sums:
    """The customer-month's records summed from the records themselves, grouped by the month of
    each event's own timestamp (not by the fold's month key)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = client.collection(collection).where(
        filter=FieldFilter("customer_id", "==", customer_id)
    )
    total = Sums()
    for snap in query.stream(timeout=30):
        data = snap.to_dict() or {}
        if month_of(data["timestamp"]) == month:
            total += record_sums(data)
    return total


# --------------------------------------------------------------------------------------------
# Fake


def _refuse_beyond_int64(value: Any) -> None:
    """UnstorableRecordError for an integer Firestore cannot hold, anywhere in `value`."""
    if isinstance(value, dict):
        for item in value.values():
            _refuse_beyond_int64(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_beyond_int64(item)
    elif isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise UnstorableRecordError(f"Value out of range: {value}")


class FakeRepository:
    """In-memory UsageRepository with Firestore's create-once semantics."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.customers: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.rejections: dict[str, dict[str, Any]] = {}
        self.reads = 0
        self.commits = 0
        self.fail_commits = 0
        """Raise a transient error on this many next commits (before writing)."""
        self.commit_delay = 0.0
        """Seconds each commit takes (lets concurrent events overlap)."""
        self.fail_calls: dict[str, int] = {}
        """Raise TransientError on this many next calls of a method, by name."""

    def put_customer(self, customer_id: str, **fields: Any) -> None:
        with self.lock:
            self.customers[customer_id] = {"schema_version": 1, **fields}

    def get_customer(self, customer_id: str) -> Mapping[str, Any] | None:
        with self.lock:
            self._maybe_fail("get_customer")
            self.reads += 1
            doc = self.customers.get(customer_id)
            return None if doc is None else dict(doc)

    def create_record(self, record_id: str, record: Mapping[str, Any]) -> bool:
        if self.commit_delay:
            time.sleep(self.commit_delay)
        with self.lock:
            self._maybe_fail("create_record")
            if self.fail_commits:
                self.fail_commits -= 1
                raise ConnectionError("fake: Firestore unreachable")
            if record_id in self.records:
                return False
            for value in record.values():  # as Firestore: integers are 64-bit
                _refuse_beyond_int64(value)
            self.records[record_id] = {**record, "recorded_at": datetime.now(UTC)}
            self.commits += 1
            return True

    def get_stored_sha256(self, record_id: str) -> str | None:
        with self.lock:
            self._maybe_fail("get_stored_sha256")
            digest = self.records.get(record_id, {}).get("payload_sha256")
            return digest if isinstance(digest, str) else None

    def _maybe_fail(self, call: str) -> None:
        """Raise the transient error injected for `call` (under the lock)."""
        if self.fail_calls.get(call, 0) > 0:
            self.fail_calls[call] -= 1
            raise TransientError(f"fake: {call} unavailable")

    def store_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        with self.lock:
            self._maybe_fail("store_rejection")
            if doc_id in self.rejections:
                return False
            self.rejections[doc_id] = dict(data)
            return True

    def totals(self, customer_id: str, month: str) -> Sums:
        """The customer-month's records summed (what the fold adds up)."""
        with self.lock:
            return sum(
                (
                    record_sums(r)
                    for r in self.records.values()
                    if r["customer_id"] == customer_id and month_of(r["timestamp"]) == month
                ),
                Sums(),
            )


@contextlib.contextmanager
def log_lines() -> Iterator[list[logging.LogRecord]]:
    """Every line the suite's logger emits meanwhile, DEBUG included (its level restored)."""
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Collect(level=logging.DEBUG)
    logger = logs.get_logger()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
