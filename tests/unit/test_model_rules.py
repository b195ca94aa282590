"""Timestamps and counts in the models: an in-range UTC value, or a field error; nothing else.

Regressions: "20250110" was read as Unix seconds (1970-08-23); an offset that
crosses year 1 or 9999 in UTC raised OverflowError out of validation (a 500, redelivered);
a count that saturates a 64-bit counter was accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import InvalidDocumentError
from shared.models import Customer, UsageEvent, UsageRecord, validate, validate_json
from shared.types import INT64_MAX, MAX_EVENT_COUNT

EVENT: dict[str, Any] = {
    "schema_version": 1,
    "customer_id": "lab_001",
    "scene_id": "scene_kitchen_v2",
    "action": "episodes_generated",
    "timestamp": "2025-01-10T14:30:00Z",
    "episodes_generated": 100,
}
CUSTOMER: dict[str, Any] = {"schema_version": 1, "bundle_tier": "pro"}
RECORD: dict[str, Any] = {**EVENT, "billable": True, "estimated_cost": 1.5}


def _outcome(check: Callable[[], Any]) -> tuple[Any, list[str]]:
    """(the validated model, []) or (None, the fields named); any other exception propagates."""
    try:
        return check(), []
    except InvalidDocumentError as exc:
        return None, [e.field for e in exc.errors]


def _refused(model: type[Any], doc: dict[str, Any]) -> InvalidDocumentError:
    with pytest.raises(InvalidDocumentError) as caught:
        validate(model, doc)
    return caught.value


@pytest.mark.parametrize("text", ["20250110", "1736519400", "1736519400.25", "-1"])
def test_a_digit_string_is_not_a_timestamp(text: str) -> None:
    error = _refused(UsageEvent, {**EVENT, "timestamp": text})
    assert [e.field for e in error.errors] == ["timestamp"]
    assert "digit string" in error.errors[0].expected
    assert text in str(error)
    with pytest.raises(InvalidDocumentError, match="digit string"):
        validate_json(UsageEvent, json.dumps({**EVENT, "timestamp": text}))
    customer = _refused(Customer, {**CUSTOMER, "contract_start": text})
    assert [e.field for e in customer.errors] == ["contract_start"]


@pytest.mark.parametrize("text", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_an_instant_outside_years_1_to_9999_in_utc_is_a_field_error(text: str) -> None:
    for model, doc, field in (
        (UsageEvent, {**EVENT, "timestamp": text}, "timestamp"),
        (UsageRecord, {**RECORD, "timestamp": text}, "timestamp"),
        (Customer, {**CUSTOMER, "contract_end": text}, "contract_end"),
    ):
        error = _refused(model, doc)
        assert [e.field for e in error.errors] == [field]
        assert "years 0001-9999" in error.errors[0].expected
    with pytest.raises(InvalidDocumentError, match="timestamp="):
        validate_json(UsageEvent, json.dumps({**EVENT, "timestamp": text}))
    aware = datetime.fromisoformat(text)
    error = _refused(UsageEvent, {**EVENT, "timestamp": aware})  # a datetime object alike
    assert [e.field for e in error.errors] == ["timestamp"]


def test_the_extreme_instants_themselves_are_valid() -> None:
    first = validate(UsageEvent, {**EVENT, "timestamp": "0001-01-01T00:30:00+00:30"})
    assert first.timestamp == datetime(1, 1, 1, tzinfo=UTC)
    last = validate(UsageEvent, {**EVENT, "timestamp": "9999-12-31T22:30:00-01:29"})
    assert last.timestamp == datetime(9999, 12, 31, 23, 59, tzinfo=UTC)


def test_an_event_count_above_the_per_event_maximum_is_refused_naming_the_field() -> None:
    assert validate(UsageEvent, {**EVENT, "episodes_generated": MAX_EVENT_COUNT})
    for count in (MAX_EVENT_COUNT + 1, INT64_MAX, 2**63, 2**70):
        error = _refused(UsageEvent, {**EVENT, "episodes_generated": count})
        assert [e.field for e in error.errors] == ["episodes_generated"]
        assert f"episodes_generated={count}" in str(error)
    record = _refused(UsageRecord, {**RECORD, "episodes_generated": MAX_EVENT_COUNT + 1})
    assert [e.field for e in record.errors] == ["episodes_generated"]
    assert "at most 1000000000000 (10^12) per event" in str(record)


def test_customer_counters_hold_what_firestore_holds() -> None:
    assert validate(Customer, {**CUSTOMER, "total_episodes_generated": INT64_MAX})
    error = _refused(Customer, {**CUSTOMER, "total_episodes_generated": INT64_MAX + 1})
    assert [e.field for e in error.errors] == ["total_episodes_generated"]


# ---- properties ----------------------------------------------------------------------------

OFFSETS = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60 - 59, 23 * 60 + 59)
)
AWARE = st.datetimes(timezones=OFFSETS)
NAIVE = st.datetimes()
DIGITS = st.from_regex(r"\A[+-]?[0-9]{1,20}(\.[0-9]{0,6})?\Z")
NUMBERS = st.one_of(
    st.integers(), st.floats(), st.booleans(), st.integers(-(2**70), 2**70).map(float)
)
# Text of the right shape with any digits: months 13, days 31 in February, hour 24, ...
SHAPED = st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?\Z"
)
TIMESTAMPS = st.one_of(
    AWARE,
    AWARE.map(datetime.isoformat),
    AWARE.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    NAIVE,
    NAIVE.map(datetime.isoformat),
    DIGITS,
    NUMBERS,
    SHAPED,
    st.text(max_size=40),
    st.none(),
)


# What the models accept as timestamp text, written out independently of shared.times: a full
# date, a time, and an offset (Z or +hh:mm / +hhmm).
TEXT_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})"
)


def _expected(value: object) -> datetime | None:
    """The UTC instant `value` names, or None when it must be refused."""
    if isinstance(value, str):
        if not TEXT_RE.fullmatch(value):
            return None
        try:
            value = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:  # a date or time that does not exist
            return None
    if not isinstance(value, datetime):
        return None
    offset = value.utcoffset()
    if offset is None:
        return None
    try:
        return (value.replace(tzinfo=None) - offset).replace(tzinfo=UTC)
    except OverflowError:  # before year 1 or after 9999 once in UTC
        return None


def _check_timestamp(model: type[Any], doc: dict[str, Any], field: str, value: object) -> None:
    parsed, fields = _outcome(lambda: validate(model, {**doc, field: value}))
    expected = _expected(value)
    if expected is None:
        assert fields == [field]
    else:
        assert fields == []
        accepted = getattr(parsed, field)
        assert accepted.tzinfo is UTC
        assert accepted == expected


@given(TIMESTAMPS)
def test_any_event_timestamp_is_utc_in_range_or_a_timestamp_error(value: object) -> None:
    _check_timestamp(UsageEvent, EVENT, "timestamp", value)


@given(TIMESTAMPS.filter(lambda v: v is not None))  # absent is valid there
def test_any_customer_timestamp_is_utc_in_range_or_a_field_error(value: object) -> None:
    _check_timestamp(Customer, CUSTOMER, "quota_reset_at", value)


@given(st.one_of(AWARE.map(datetime.isoformat), DIGITS, SHAPED, st.text(max_size=40)))
def test_json_bodies_follow_the_same_rule(text: str) -> None:
    body = json.dumps({**EVENT, "timestamp": text})
    event, fields = _outcome(lambda: validate_json(UsageEvent, body))
    expected = _expected(text)
    assert fields == ([] if expected is not None else ["timestamp"])
    assert (event.timestamp if event is not None else None) == expected


def _around(*limits: int) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(), *(st.integers(n - 3, n + 3) for n in limits))


COUNTS = _around(0, MAX_EVENT_COUNT, INT64_MAX, 2**64)


@given(st.one_of(COUNTS, st.floats(), st.booleans(), COUNTS.map(str)))
def test_an_event_count_is_in_range_or_an_episodes_error(count: object) -> None:
    in_range = type(count) is int and 0 <= count <= MAX_EVENT_COUNT
    for check in (
        lambda: validate(UsageEvent, {**EVENT, "episodes_generated": count}),
        lambda: validate_json(UsageEvent, json.dumps({**EVENT, "episodes_generated": count})),
    ):
        event, fields = _outcome(check)
        assert fields == ([] if in_range else ["episodes_generated"])
        if in_range:
            assert event.episodes_generated == count


@given(COUNTS, st.sampled_from(["total_episodes_generated", "scenes_generated_this_month"]))
def test_a_customer_counter_is_in_range_or_a_field_error(count: int, field: str) -> None:
    in_range = 0 <= count <= INT64_MAX
    customer, fields = _outcome(lambda: validate(Customer, {**CUSTOMER, field: count}))
    assert fields == ([] if in_range else [field])
    if in_range:
        assert getattr(customer, field) == count
