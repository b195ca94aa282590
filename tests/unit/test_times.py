"""shared.times: the one RFC 3339 parser and the one set of month helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shared.times import (
    MONTH_RE,
    month_bounds,
    month_of,
    month_start,
    next_month,
    next_month_start,
    parse_month,
    parse_rfc3339,
    previous_month,
    timestamp_problem,
)

PLUS_ONE = timezone(timedelta(hours=1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-10T14:30:00Z", datetime(2025, 1, 10, 14, 30, tzinfo=UTC)),
        ("2025-01-10t14:30:00z", datetime(2025, 1, 10, 14, 30, tzinfo=UTC)),
        ("2025-01-10 14:30:00+05:30", datetime(2025, 1, 10, 9, 0, tzinfo=UTC)),
        ("2025-01-10T14:30:00+0530", datetime(2025, 1, 10, 9, 0, tzinfo=UTC)),
        ("2025-01-10T14:30Z", datetime(2025, 1, 10, 14, 30, tzinfo=UTC)),
        ("2025-01-10T14:30:00.123456789Z", datetime(2025, 1, 10, 14, 30, 0, 123456, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_rfc3339_text_is_parsed_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.tzinfo is UTC
    assert timestamp_problem(text) is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("20250110", "digit string"),
        ("1736519400", "digit string"),
        ("1736519400.5", "digit string"),
        (1736519400, "a number"),
        (1.5, "a number"),
        (True, "a number"),
        ("2025-01-10T14:30:00", "naive"),
        (datetime(2025, 1, 10), "naive"),  # noqa: DTZ001 - the point of the test
        ("2025-01-10", "a date without a time"),
        ("2025-13-10T14:30:00Z", "does not exist"),
        ("0001-01-01T00:30:00+01:00", "years 0001-9999"),
        ("9999-12-31T23:30:00-01:00", "years 0001-9999"),
        (datetime(1, 1, 1, 0, 30, tzinfo=PLUS_ONE), "years 0001-9999"),
        ("2025-01-10T14:30:00+05", "other text"),  # an offset of hours only is not RFC 3339
        ("2025-01-10T14:30:00 Z", "other text"),
        ("2025-01-10T14:30:00+00:00:30", "other text"),
        ("２０２５-01-10T14:30:00Z", "other text"),  # non-ASCII digits
        ("yesterday", "other text"),
        (None, "null"),
        ([2025, 1, 10], "list"),
    ],
)
def test_what_is_not_a_timestamp_is_refused_and_said_why(value: object, why: str) -> None:
    assert parse_rfc3339(value) is None
    problem = timestamp_problem(value)
    assert problem is not None
    assert why in problem


def test_naive_time_is_utc_only_when_asked() -> None:
    assert parse_rfc3339("2025-01-10T14:30:00", naive_is_utc=True) == datetime(
        2025, 1, 10, 14, 30, tzinfo=UTC
    )
    assert timestamp_problem("2025-01-10T14:30:00", naive_is_utc=True) is None


OFFSETS = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60 - 59, 23 * 60 + 59)
)


@given(st.datetimes(timezones=OFFSETS))
def test_any_aware_datetime_parses_or_is_out_of_range(value: datetime) -> None:
    offset = value.utcoffset()
    assert offset is not None
    naive_utc = value.replace(tzinfo=None)
    try:
        expected: datetime | None = (naive_utc - offset).replace(tzinfo=UTC)
    except OverflowError:
        expected = None
    for form in (value, value.isoformat()):
        assert parse_rfc3339(form) == expected
        problem = timestamp_problem(form)
        assert (problem is None) is (expected is not None)
        if expected is None:
            assert problem is not None
            assert "years 0001-9999" in problem


@given(st.from_regex(r"\A[+-]?[0-9]{1,20}(\.[0-9]{0,6})?\Z"))
def test_a_digit_string_is_never_a_timestamp(text: str) -> None:
    assert parse_rfc3339(text) is None
    assert "digit string" in (timestamp_problem(text) or "")


@given(st.text(max_size=40))
def test_any_text_gives_a_utc_datetime_or_a_reason(text: str) -> None:
    parsed = parse_rfc3339(text)
    problem = timestamp_problem(text)
    assert (parsed is None) is (problem is not None)
    if parsed is not None:
        assert parsed.tzinfo is UTC


def test_month_helpers() -> None:
    assert month_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC) + timedelta(minutes=1)) == "2027-01"
    assert month_of(datetime(2025, 1, 1, 0, 30, tzinfo=PLUS_ONE)) == "2024-12"
    assert month_start("2026-02") == datetime(2026, 2, 1, tzinfo=UTC)
    assert next_month_start("2026-12") == datetime(2027, 1, 1, tzinfo=UTC)
    assert month_bounds("2024-12") == (
        datetime(2024, 12, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert next_month("2025-12") == "2026-01"
    assert previous_month("2025-01") == "2024-12"
    for bad in ("2025-13", "2025-1", "25-01", "2025-00", "0000-01", "", "２０２５-01", "2025-01\n"):
        assert not MONTH_RE.match(bad)
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)
        with pytest.raises(ValueError, match="YYYY-MM"):
            month_bounds(bad)


@given(st.datetimes(timezones=OFFSETS))
def test_an_instant_lies_within_its_months_bounds(value: datetime) -> None:
    utc = parse_rfc3339(value)
    assume(utc is not None and month_of(utc) < "9999-12")  # December 9999 has no next month
    assert utc is not None
    start, end = month_bounds(month_of(utc))
    assert start <= utc < end
    assert next_month(month_of(start)) == month_of(end)
    assert previous_month(month_of(end)) == month_of(start)
