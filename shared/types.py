"""Reusable constrained types: strict numbers, UTC timestamps, document ids, months."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, Strict

_DOC_ID_FORBIDDEN = re.compile(r"^__.*__$")
MONTH_RE = re.compile(r"^(?!0000)\d{4}-(0[1-9]|1[0-2])$")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:  # already normalised (the common case): skip the conversion
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("expected a timezone-aware timestamp (UTC), got a naive one")
    return value.astimezone(UTC)


def _no_numbers_as_time(value: Any) -> Any:
    # pydantic would read 1700000000 as a Unix time; a number in a timestamp field is a mistake.
    if isinstance(value, bool | int | float):
        raise ValueError("expected an RFC 3339 timestamp with a time zone, got a number")  # noqa: TRY004 - pydantic wants ValueError
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


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


UtcDatetime = Annotated[datetime, BeforeValidator(_no_numbers_as_time), AfterValidator(_utc)]
"""A timezone-aware timestamp, normalised to UTC. Naive times and numbers are refused."""

INT64_MAX = 2**63 - 1
"""Largest integer Firestore stores (its integers are signed 64-bit)."""

NonNegInt = Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)]
"""A whole count in [0, 2^63 - 1] (what Firestore stores); bools, floats, strings refused."""

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


def month_of(ts: datetime) -> str:
    """The calendar month (UTC) a timestamp falls in, as `YYYY-MM`."""
    utc = _utc(ts)
    return f"{utc.year:04d}-{utc.month:02d}"  # not strftime: this runs once per usage event
