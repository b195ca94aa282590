"""Deterministic, valid Firestore document ids for usage records.

From the producer's `event_id` when present, else from (customer_id, scene_id, action, timestamp)
as schema.md says. The id starts with a hash of the exact key, so ids do not increase with
time (a collection whose ids increase monotonically tops out near 500 writes/s in production);
the readable part after it helps people, and the hash keeps distinct keys distinct even when
the readable part had to be sanitised or cut.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from shared.models import UsageEvent

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


def message_doc_id(message_id: str) -> str:
    """A valid document id for a Pub/Sub message id (rejections are keyed by it)."""
    return f"msg_{_readable(message_id)}_{_hash('message', message_id)[:12]}"
