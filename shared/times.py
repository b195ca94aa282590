"""Times and months: the one RFC 3339 parser and the one set of calendar-month helpers (UTC)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Final

MONTH_RE: Final = re.compile(r"^(?!0000)([0-9]{4})-(0[1-9]|1[0-2])\Z")
"""A calendar month as `YYYY-MM` (years 0001-9999, as datetime has them). It ends in
`\\Z`, not `$`, which also matches before a trailing newline (and `2026-02` + newline is not
a month)."""

_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMBER_TEXT_RE: Final = re.compile(r"[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")

_DATE_TIME_RE: Final = re.compile(
    # Non-capturing groups: this runs once per usage event, and capturing doubles its cost.
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?"
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?"
)
"""RFC 3339 date-time text (ASCII digits; seconds, a fraction or the offset may be left out, as
the parsers this replaced allowed): a bare number or digit string is not one, nor is an offset
of hours only or with seconds."""


def _iso(text: str) -> str:
    # datetime.fromisoformat (3.11) reads "Z" but not "z".
    return text[:-1] + "Z" if text.endswith("z") else text


def to_utc(value: datetime) -> datetime | None:
    """An aware datetime in UTC, or None when it is naive or falls outside datetime's range."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        return None
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def parse_rfc3339(value: object, *, naive_is_utc: bool = False) -> datetime | None:
    """RFC 3339 text (or an aware datetime) -> aware UTC datetime; None when it is not one.

    A number, a digit string, a date without a time or an out-of-range instant is not a
    timestamp. A time without an offset is refused unless `naive_is_utc` (for sources that
    document their times as UTC, such as a Pub/Sub `publishTime` written without `Z`).
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _DATE_TIME_RE.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(_iso(value))
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC) if naive_is_utc else None
    return to_utc(parsed)


def timestamp_problem(value: object, *, naive_is_utc: bool = False) -> str | None:
    """Why `parse_rfc3339` refuses `value` ("expected ..., got ..."), None when it accepts it."""
    if parse_rfc3339(value, naive_is_utc=naive_is_utc) is not None:
        return None
    got = "null"
    if isinstance(value, str) and _DATE_TIME_RE.fullmatch(value):
        try:
            value = datetime.fromisoformat(_iso(value))
        except ValueError:
            value = None  # the text's shape is right, its date or time does not exist
            got = "a date or time that does not exist"
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            return "expected a timezone-aware timestamp (UTC), got a naive one"
        return "expected a timestamp within years 0001-9999 once converted to UTC"
    if isinstance(value, bool | int | float):
        got = "a number"
    elif isinstance(value, str):
        if _NUMBER_TEXT_RE.fullmatch(value.strip()):
            got = "a digit string (a number is not a timestamp)"
        else:
            got = "a date without a time" if _DATE_RE.fullmatch(value) else "other text"
    elif value is not None:
        got = type(value).__name__
    return f"expected an RFC 3339 datetime with a time zone (like 2025-01-10T14:30:00Z), got {got}"


def parse_month(value: str) -> str:
    """`value` if it is a month `YYYY-MM`; ValueError naming the value otherwise."""
    if not isinstance(value, str) or not MONTH_RE.match(value):
        raise ValueError(f"month={value!r}: expected YYYY-MM, for example 2025-01")
    return value


def month_of(ts: datetime) -> str:
    """The calendar month (UTC) a timestamp falls in, as `YYYY-MM`."""
    utc = ts.astimezone(UTC) if ts.tzinfo is not None else ts
    return f"{utc.year:04d}-{utc.month:02d}"  # not strftime: this runs once per usage event


def month_start(month: str) -> datetime:
    """First instant (UTC) of `month` (YYYY-MM)."""
    parse_month(month)
    return datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=UTC)


@functools.lru_cache(maxsize=64)
def next_month_start(month: str) -> datetime:
    """First instant (UTC) of the month after `month` (YYYY-MM)."""
    parse_month(month)
    year, mon = int(month[:4]), int(month[5:7])
    year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return datetime(year, mon, 1, tzinfo=UTC)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """`YYYY-MM` -> [first instant of the month, first instant of the next month), UTC."""
    return month_start(month), next_month_start(month)


def next_month(month: str) -> str:
    """The month after `month`."""
    return month_of(next_month_start(month))


def previous_month(month: str) -> str:
    """The month before `month`."""
    parse_month(month)
    year, mon = int(month[:4]), int(month[5:7])
    year, mon = (year - 1, 12) if mon == 1 else (year, mon - 1)
    return f"{year:04d}-{mon:02d}"
