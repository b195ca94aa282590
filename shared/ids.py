"""Deterministic, valid Firestore document ids for usage records, and the payload hash that
tells a redelivery from another payload under the same id.

From the producer's `event_id` when present, else from (customer_id, scene_id, action, timestamp)
as the specification says. The id starts with a hash of the exact key, so ids do not increase with
time (a collection whose ids increase monotonically tops out near 500 writes/s in production);
the readable part after it helps people, and the hash keeps distinct keys distinct even when
the readable part had to be sanitised or cut.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from shared.models import UsageEvent
from shared.times import parse_rfc3339

_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
_PREFIX_MAX = 120


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def _readable(*parts: str) -> str:
    # One substitution over the joined text: "_" is safe, so no unsafe run spans two parts.
    text = _UNSAFE.sub("-", "_".join(parts))
    return text[:_PREFIX_MAX].strip(".") or "x"


def canonical_timestamp(ts: datetime) -> str:
    """UTC, microseconds, `Z`: the same instant always gives the same text."""
    return ts.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def usage_record_id(event: UsageEvent) -> str:
    """The `usage_tracking` document id of an event: same event, same id, always valid."""
    if event.event_id is not None:
        digest = _hash("event", event.customer_id, event.event_id)
        return f"{digest}_{_readable(event.customer_id, event.event_id)}"
    ts = canonical_timestamp(event.timestamp)
    digest = _hash("tuple", event.customer_id, event.scene_id, event.action, ts)
    return f"{digest}_{_readable(event.customer_id, event.scene_id, event.action, ts)}"


def payload_sha256(event: UsageEvent) -> str:
    """SHA-256 of the event's canonical JSON: its fields as validated (timestamps in UTC), keys
    sorted, no whitespace. Delivery metadata (message id, attributes, publish time) is not part
    of it, so a redelivery hashes the same and a different payload under one `event_id` does not.
    """
    plain = event.model_dump(mode="json", exclude_none=True)
    plain["timestamp"] = canonical_timestamp(event.timestamp)
    return hashlib.sha256(_CANONICAL_JSON.encode(plain).encode()).hexdigest()


def message_doc_id(message_id: str) -> str:
    """A valid document id for a Pub/Sub message id (rejections are keyed by it)."""
    return f"msg_{_readable(message_id)}_{_hash('message', message_id)[:12]}"


def dead_letter_doc_id(
    source_subscription: str,
    source_publish_time: str,
    data: bytes,
    attributes: Mapping[str, str],
) -> str:
    """The `usage_rejections` id of a dead-lettered message: the ORIGINAL message's identity.

    Pub/Sub republishes a dead letter under a new message id and does not carry the original
    one (measured on the emulator; the docs add that one message may be dead-lettered more
    than once), so the key is what the original was: its subscription, its publish time
    (`CloudPubSubDeadLetterSourceTopicPublishTime`), its bytes and its own attributes. The
    usage function can compute the same id from the message it failed on.
    """
    parsed = parse_rfc3339(source_publish_time, naive_is_utc=True)
    published = canonical_timestamp(parsed) if parsed is not None else source_publish_time
    attrs = "\x1e".join(f"{k}\x1d{v}" for k, v in sorted(attributes.items()))
    body = hashlib.sha256(data).hexdigest()
    digest = _hash("dead_letter", source_subscription, published, body, attrs)
    return f"dl_{_readable(source_subscription)[:60]}_{digest}"
