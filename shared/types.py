"""Reusable constrained types: strict numbers, UTC timestamps, document ids, months."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BeforeValidator, Field, Strict

from shared.times import MONTH_RE, parse_rfc3339, timestamp_problem

_DOC_ID_FORBIDDEN = re.compile(r"^__.*__$")


def _timestamp(value: Any) -> datetime:
    # Parsed here, not by pydantic: pydantic reads 1700000000 or "20250110" as Unix seconds, and
    # its UTC conversion of 0001-01-01T00:30:00+01:00 raises OverflowError out of validation.
    if isinstance(value, datetime) and value.tzinfo is UTC:
        return value  # already normalised (the common case: Firestore's own datetimes)
    parsed = parse_rfc3339(value)
    if parsed is None:
        raise ValueError(timestamp_problem(value) or "expected an RFC 3339 timestamp")
    return parsed


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value + 0.0  # -0.0 is 0.0: the same amount must hash and sum the same


def _doc_id(value: str) -> str:
    if "/" in value:
        raise ValueError("expected a document id without '/'")
    if value in {".", ".."} or _DOC_ID_FORBIDDEN.match(value):
        raise ValueError("expected a document id that is not '.', '..' or '__...__'")
    if len(value.encode()) > 1500:
        raise ValueError("expected a document id of at most 1500 bytes")
    return value


def _month(value: str) -> str:
    if not MONTH_RE.match(value):
        raise ValueError("expected a month as YYYY-MM")
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_timestamp)]
"""RFC 3339 text with a time zone (or an aware datetime), normalised to UTC
(`shared.times.parse_rfc3339`). Naive times, numbers, digit strings and instants outside years
0001-9999 in UTC are refused."""

INT64_MAX = 2**63 - 1
"""Largest integer Firestore stores (its integers are signed 64-bit)."""

NonNegInt = Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)]
"""A whole count in [0, 2^63 - 1] (what Firestore stores); bools, floats, strings refused."""

MAX_EVENT_COUNT: Final = 10**12
"""Most one usage event may count (docs/usage.md): the customer's month and lifetime counters
(64-bit, saturating at 2^63 - 1) add events up, so one event must stay far below their limit."""


def _event_count(value: int) -> int:
    if value > MAX_EVENT_COUNT:
        raise ValueError(
            f"expected at most {MAX_EVENT_COUNT} (10^12) per event: the month and lifetime "
            "counters add events up and must stay below 2^63 - 1"
        )
    return value


EventCount = Annotated[
    int,
    Strict(),
    Field(ge=0, json_schema_extra={"maximum": MAX_EVENT_COUNT}),
    AfterValidator(_event_count),
]
"""A whole count carried by one event, in [0, 10^12]; bools, floats, strings refused."""

NonNegFloat = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False), AfterValidator(_finite)]
"""A finite amount >= 0 (ints accepted); NaN, infinities, bools and strings are refused."""

UnitFloat = Annotated[
    float, Strict(), Field(ge=0, le=1, allow_inf_nan=False), AfterValidator(_finite)
]
"""A finite number in [0, 1]."""

StrictBool = Annotated[bool, Strict()]
"""true or false only (no 0/1, no "yes")."""

DocumentId = Annotated[str, Strict(), Field(min_length=1), AfterValidator(_doc_id)]
"""A valid Firestore document id."""

Month = Annotated[str, Strict(), AfterValidator(_month)]
"""A calendar month `YYYY-MM` (UTC)."""
