"""Helpers for the usage tests: a fake repository, message builders, malformed bodies, shard sums."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent

from functions.edge.pubsub import Message
from functions.usage.ports import (
    CustomerDocument,
    ShardIncrement,
    StoredRecord,
    UnstorableRecordError,
)
from shared import logs
from shared.counters import (
    FLAG_AT_FIELD,
    FOLD_KEY_FIELD,
    SHARD_FLOAT_FIELDS,
    SHARD_INT_FIELDS,
    TALLY_FIELD,
    counter_doc_id,
    record_counts,
)
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
# Shard sums (what the fold will add up)


def sum_shards(
    client: Any,
    customer_id: str,
    month: str,
    collection: str = "usage_counters",
    records: str | None = "usage_tracking",
) -> dict[str, Any]:
    """The customer-month's counters summed over its shards (every int and float field), plus,
    from the `records` collection (usage_tracking; None: shards only), its records counted from the records
    (`tallied`: how many): what the fold adds up."""
    shards = (
        client.collection(collection)
        .document(counter_doc_id(customer_id, month))
        .collection("shards")
    )
    totals: dict[str, Any] = dict.fromkeys(SHARD_INT_FIELDS, 0)
    totals.update(dict.fromkeys(SHARD_FLOAT_FIELDS, 0.0))
    totals["shards"] = 0
    for snap in shards.stream(timeout=30):
        data = snap.to_dict() or {}
        totals["shards"] += 1
        for name in (*SHARD_INT_FIELDS, *SHARD_FLOAT_FIELDS):
            totals[name] += data.get(name, 0)
    totals["tallied"] = 0
    if records is None:
        return totals
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = client.collection(records).where(filter=FieldFilter("customer_id", "==", customer_id))
    for snap in query.stream(timeout=30):
        data = snap.to_dict() or {}
        counted = TALLY_FIELD in data or FOLD_KEY_FIELD in data  # a flag, or covered by one
        if not counted or month_of(data["timestamp"]) != month:
            continue
        totals["tallied"] += 1
        ints, floats = record_counts(data)
        for name, amount in [*ints.items(), *floats.items()]:
            totals[name] += amount
    return totals


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
        self.shards: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.rejections: dict[str, dict[str, Any]] = {}
        self.reads = 0
        self.commits = 0
        self.fail_commits = 0
        """Raise a transient error on this many next commits (before writing)."""
        self.commit_delay = 0.0
        """Seconds each commit takes (lets concurrent events queue up behind it)."""
        self.batch_sizes: list[int] = []
        self.fail_calls: dict[str, int] = {}
        """Raise TransientError on this many next calls of a method, by name."""
        self.touches: list[ShardIncrement] = []
        """Zero increments of late records (`touch_shard`)."""
        self.clock_ticks = 0
        self.commit_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        """The commit time of each `commit_record` (server time in Firestore)."""

    def put_customer(self, customer_id: str, **fields: Any) -> None:
        with self.lock:
            self.customers[customer_id] = {"schema_version": 1, **fields}

    def get_customer(self, customer_id: str) -> CustomerDocument | None:
        with self.lock:
            self._maybe_fail("get_customer")
            self.reads += 1
            doc = self.customers.get(customer_id)
            return None if doc is None else CustomerDocument(dict(doc))

    def commit_usage(
        self, record_id: str, record: Mapping[str, Any], counter: ShardIncrement | None
    ) -> bool:
        with self.lock:
            self._maybe_fail("commit_usage")
        return self.commit_batch([(record_id, record)], counter)

    def commit_batch(
        self, records: Sequence[tuple[str, Mapping[str, Any]]], counter: ShardIncrement | None
    ) -> bool:
        if self.commit_delay:
            time.sleep(self.commit_delay)
        with self.lock:
            if self.fail_commits:
                self.fail_commits -= 1
                raise ConnectionError("fake: Firestore unreachable")
            if any(record_id in self.records for record_id, _ in records):
                return False
            # As Firestore (and the real adapter's protobufs): integers are 64-bit.
            increments = counter.ints.values() if counter is not None else ()
            for value in [*(v for _, r in records for v in r.values()), *increments]:
                _refuse_beyond_int64(value)
            for record_id, record in records:
                self.records[record_id] = {**record, "recorded_at": "SERVER_TIMESTAMP"}
            self.commits += 1
            self.batch_sizes.append(len(records))
            if counter is None:  # counted from the record by the fold
                return True
            key = (counter.customer_id, counter.month, counter.shard)
            shard = self.shards.setdefault(key, {})
            shard.update(
                customer_id=counter.customer_id,
                month=counter.month,
                fold_bucket=counter.fold_bucket,
                updated_at="SERVER_TIMESTAMP",
            )
            for name, amount in [*counter.ints.items(), *counter.floats.items()]:
                shard[name] = shard.get(name, 0) + amount
            return True

    def commit_record(self, record_id: str, record: Mapping[str, Any]) -> datetime | None:
        with self.lock:
            self._maybe_fail("commit_record")
        if not self.commit_batch([(record_id, record)], None):
            return None
        with self.lock:
            self.clock_ticks += 1
            stamp = self.commit_clock()
            self.records[record_id]["recorded_at"] = stamp
            return stamp

    def touch_shard(self, counter: ShardIncrement) -> None:
        with self.lock:
            self._maybe_fail("touch_shard")
            self.touches.append(counter)
        self.commit_batch([], counter)

    def get_stored_record(self, record_id: str) -> StoredRecord | None:
        with self.lock:
            self._maybe_fail("get_stored_record")
            if record_id not in self.records:
                return None
            stored = self.records[record_id]
            digest, at, flag_at = (
                stored.get(k) for k in ("payload_sha256", "recorded_at", FLAG_AT_FIELD)
            )
            return StoredRecord(
                digest if isinstance(digest, str) else None,
                at if isinstance(at, datetime) else None,
                flag_at if isinstance(flag_at, datetime) else None,
            )

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

    def totals(self, customer_id: str, month: str) -> dict[str, Any]:
        """The customer-month's counters: its shards + its records counted from the records
        (what the fold adds up)."""
        out: dict[str, Any] = {}
        with self.lock:
            for (cid, m, _), shard in self.shards.items():
                if (cid, m) == (customer_id, month):
                    for name in (*SHARD_INT_FIELDS, *SHARD_FLOAT_FIELDS):
                        out[name] = out.get(name, 0) + shard.get(name, 0)
            for record in self.records.values():
                counted = TALLY_FIELD in record or FOLD_KEY_FIELD in record
                if not counted or record["customer_id"] != customer_id:
                    continue
                if month_of(record["timestamp"]) != month:
                    continue
                ints, floats = record_counts(record)
                for name, amount in [*ints.items(), *floats.items()]:
                    out[name] = out.get(name, 0) + amount
        return out

    def tallied(self) -> int:
        """Records written without a shard increment (counted from the records)."""
        with self.lock:
            return sum(TALLY_FIELD in r or FOLD_KEY_FIELD in r for r in self.records.values())


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
