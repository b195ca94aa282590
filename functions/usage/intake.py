"""Check and parse one usage message (pure, no I/O): size, JSON, model, future timestamp, details.

-> `Prepared` (the event and its record id) or `Rejection` (kind + each bad field and value).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from functions.edge.pubsub import PUBSUB_PUBLISHED, Message
from functions.usage.ports import Limits, Prepared, Rejection
from shared.errors import FieldError
from shared.ids import usage_record_id
from shared.models import UsageEvent, field_errors

_MAX_DETAILS_DEPTH: Final = 20
_INT64: Final = 2**63
_MAX_KEY_BYTES: Final = 1500
_MAX_KEY_CHARS: Final = _MAX_KEY_BYTES // 4
"""A key of at most this many characters is within the byte limit whatever its characters."""

_EVENT_VALIDATOR: Final = UsageEvent.__pydantic_validator__
"""`UsageEvent.model_validate_json` without its Python wrapper (this runs once per event)."""

_PLAIN: Final = (str, bool, type(None))


def _storable_problems(value: Any, path: str, depth: int, in_array: bool) -> list[FieldError]:
    """What Firestore would refuse in a `details` value (or we do: non-finite numbers)."""
    kind = type(value)
    problem: FieldError | None = None
    if kind in _PLAIN:
        pass
    elif kind is int:
        if not -_INT64 <= value < _INT64:
            problem = FieldError(path, value, "a 64-bit integer")
    elif kind is float:
        if not math.isfinite(value):
            problem = FieldError(path, value, "a finite number")
    elif depth > _MAX_DETAILS_DEPTH:
        problem = FieldError(path, "...", f"at most {_MAX_DETAILS_DEPTH} levels of nesting")
    elif kind is dict or kind is list:
        return _container_problems(value, path, depth, in_array)
    else:
        problem = FieldError(path, value, "a JSON value")
    return [] if problem is None else [problem]


def _key_problem(path: str, key: str) -> FieldError | None:
    """What Firestore refuses in a map key: empty, over 1500 bytes, or reserved (__name__)."""
    if key == "":
        return FieldError(path, "", "map keys that are not empty")
    if len(key.encode()) > _MAX_KEY_BYTES:
        return FieldError(path, key, f"map keys of at most {_MAX_KEY_BYTES} bytes (Firestore)")
    if len(key) >= 4 and key.startswith("__") and key.endswith("__"):
        return FieldError(f"{path}.{key}", key, "a key not like __name__ (Firestore)")
    return None


def _container_problems(value: Any, path: str, depth: int, in_array: bool) -> list[FieldError]:
    out: list[FieldError] = []
    if isinstance(value, dict):
        for key, item in value.items():
            # The common key (not empty, short, no leading "_") needs no closer look.
            bad = (
                None
                if key and len(key) <= _MAX_KEY_CHARS and key[0] != "_"
                else _key_problem(path, key)
            )
            if bad is None:
                out += _storable_problems(item, f"{path}.{key}", depth + 1, False)
            else:
                out.append(bad)
        return out
    if in_array:
        return [FieldError(path, value, "no array directly inside an array (Firestore)")]
    for i, item in enumerate(value):
        out += _storable_problems(item, f"{path}.{i}", depth + 1, True)
    return out


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
        problems = _storable_problems(event.details, "details", 1, False)
        if problems:
            return Rejection("invalid_event", tuple(problems))
    return Prepared(event, usage_record_id(event))
