"""Pub/Sub `MessagePublishedData` -> one `Message`, for every Pub/Sub-triggered function."""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from shared.errors import FieldError
from shared.times import parse_rfc3339

PUBSUB_PUBLISHED: Final = "google.cloud.pubsub.topic.v1.messagePublished"
"""The CloudEvent type Eventarc (and functions-framework's push adapter) delivers."""


@dataclass(frozen=True, slots=True)
class Message:
    """One Pub/Sub message as delivered; `problem` is set when the envelope is unusable."""

    message_id: str
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    publish_time_text: str | None = None
    """RFC 3339 text as delivered."""
    problem: FieldError | None = None
    """Set when the envelope itself is unusable (not JSON, no message, data not base64)."""
    event_type: str = PUBSUB_PUBLISHED
    """The CloudEvent's `type`."""
    event_time_text: str | None = None
    """The CloudEvent's `time`, when it carries one (RFC 3339 text)."""
    delivery_attempt: int | None = None
    """Pub/Sub's delivery attempt counter, when the subscription has a dead-letter policy."""
    subscription: str | None = None

    @property
    def event_time(self) -> datetime | None:
        """The CloudEvent's time (UTC), or None when absent or not RFC 3339."""
        return parse_rfc3339(self.event_time_text, naive_is_utc=True)

    @property
    def publish_time(self) -> datetime | None:
        """The publish time (UTC), or None when absent or not RFC 3339."""
        return parse_rfc3339(self.publish_time_text, naive_is_utc=True)


def _problem(raw: bytes, event_id: str, problem: FieldError, **extra: Any) -> Message:
    return Message(event_id or "unknown", raw, problem=problem, **extra)


def decode_envelope(data: Any, event_id: str = "", **extra: Any) -> Message:
    """`MessagePublishedData` (dict, JSON text or bytes) -> Message; never raises."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            raw = data.encode(errors="replace") if isinstance(data, str) else data
            not_json = FieldError("(envelope)", raw[:80], "MessagePublishedData JSON")
            return _problem(raw, event_id, not_json, **extra)
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict):
        no_message = FieldError("message", _preview(message), "a Pub/Sub message object")
        return _problem(_dump(data), event_id, no_message, **extra)
    message_id = str(message.get("messageId") or message.get("message_id") or event_id or "unknown")
    publish_time = message.get("publishTime") or message.get("publish_time")
    attributes = message.get("attributes")
    if not isinstance(attributes, dict):
        attributes = {}
    attributes = {str(k): str(v) for k, v in attributes.items()}
    subscription = data.get("subscription")
    attempt = data.get("deliveryAttempt", message.get("deliveryAttempt"))
    encoded = message.get("data") or ""
    problem: FieldError | None = None
    if isinstance(encoded, str):
        try:
            # Strict: stray characters are an error, not silently skipped.
            body = binascii.a2b_base64(encoded, strict_mode=True)
        except (binascii.Error, ValueError):
            problem = FieldError("message.data", encoded[:80], "base64 text")
            body = encoded.encode(errors="replace")
    else:
        problem = FieldError("message.data", _preview(encoded), "base64 text")
        body = _dump(encoded)
    return Message(
        message_id,
        body,
        attributes,
        publish_time if isinstance(publish_time, str) else None,
        problem,
        subscription=subscription if isinstance(subscription, str) else None,
        delivery_attempt=attempt
        if isinstance(attempt, int) and not isinstance(attempt, bool)
        else None,
        **extra,
    )


def decode_message(event: Any) -> Message:
    """A CloudEvent from Eventarc or functions-framework -> Message; never raises."""
    get = getattr(event, "get", None)
    event_id = str(event["id"]) if get is not None and get("id") is not None else ""
    event_type = str(get("type")) if get is not None and get("type") else PUBSUB_PUBLISHED
    time = get("time") if get is not None else None
    if isinstance(time, datetime):  # an SDK that parsed it already: kept, parsed when read
        time = time.isoformat()
    return decode_envelope(
        getattr(event, "data", None),
        event_id,
        event_type=event_type,
        event_time_text=time if isinstance(time, str) else None,
    )


def _preview(value: Any) -> str:
    try:
        text = repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} nested too deeply>"
    return text[:80]


def _dump(value: Any) -> bytes:
    try:
        return json.dumps(value, default=str).encode()
    except (ValueError, RecursionError):
        return _preview(value).encode()
