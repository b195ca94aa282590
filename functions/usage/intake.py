"""Check and parse one usage message (pure, no I/O): size, JSON, model, future timestamp, details.

-> `Prepared` (the event and its record id) or `Rejection` (kind + each bad field and value).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import ValidationError

from functions.edge.pubsub import PUBSUB_PUBLISHED, Message
from functions.usage.ports import Limits, Prepared, Rejection
from shared.errors import FieldError
from shared.ids import usage_record_id
from shared.models import UsageEvent, field_errors
from shared.storable import storable_problems

_EVENT_VALIDATOR: Final = UsageEvent.__pydantic_validator__
"""`UsageEvent.model_validate_json` without its Python wrapper (this runs once per event)."""


def wrong_type(message: Message) -> Rejection | None:
    """A CloudEvent of another type (a trigger wired here by mistake) is not a usage event."""
    if message.event_type == PUBSUB_PUBLISHED:
        return None
    wrong = FieldError("(ce-type)", message.event_type[:200], f"the type {PUBSUB_PUBLISHED}")
    return Rejection("wrong_event_type", (wrong,))


def prepare(message: Message, now: datetime, limits: Limits) -> Prepared | Rejection:
    """Check and parse one message body (pure; no I/O)."""
    if message.problem is not None:
        return Rejection("bad_envelope", (message.problem,))
    size = len(message.data)
    if size > limits.max_body_bytes:
        expected = f"a body of at most {limits.max_body_bytes} bytes"
        return Rejection("oversized", (FieldError("(body)", f"{size} bytes", expected),))
    try:
        event = _EVENT_VALIDATOR.validate_json(message.data)
    except ValidationError as exc:
        errors = field_errors(exc)
        kinds = {e.field for e in errors}
        kind = "unknown_schema_version" if kinds == {"schema_version"} else "invalid_event"
        if any(e.expected.startswith("Invalid JSON") for e in errors):
            kind = "not_json"
        return Rejection(kind, tuple(errors))
    if event.timestamp > now + limits.max_future:
        expected = f"a time at most {limits.max_future.total_seconds():g} s after {now.isoformat()}"
        return Rejection(
            "future_timestamp", (FieldError("timestamp", event.timestamp.isoformat(), expected),)
        )
    if event.details:
        problems = storable_problems(event.details, "details")
        if problems:
            return Rejection("invalid_event", tuple(problems))
    return Prepared(event, usage_record_id(event))
