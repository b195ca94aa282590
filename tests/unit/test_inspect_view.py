"""The cells of `blueprint inspect`'s tables (ops.cli.inspect_view), without Firestore."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.cli.inspect_view import (
    MISSING,
    as_amount,
    as_time,
    cents_of,
    contract_status,
    dollars,
    rows,
    short_id,
)

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("cents", "shown"),
    [(0, "$0.00"), (5, "$0.05"), (123, "$1.23"), (123456, "$1,234.56"), (-250, "-$2.50")],
)
def test_dollars_to_the_cent(cents: int, shown: str) -> None:
    assert dollars(cents) == shown


@given(st.integers(min_value=0, max_value=10**12))
def test_a_stored_cost_reads_back_as_the_cents_it_was_written_from(cents: int) -> None:
    # functions.usage.records stores float(Decimal amount): 0.29 * 100 is 28.999... in floats.
    assert cents_of(float(f"{cents // 100}.{cents % 100:02d}")) == cents


@pytest.mark.parametrize("value", [None, "1.23", True, float("nan"), float("inf")])
def test_what_is_not_an_amount_has_no_cents(value: object) -> None:
    assert cents_of(value) is None


def test_amounts_times_and_ids() -> None:
    assert [as_amount(v) for v in (45.5, 2.3, 0.125, 0.0, 12000.0, None)] == [
        "45.5",
        "2.3",
        "0.125",
        "0",
        "12,000",
        MISSING,
    ]
    when = dt.datetime(2025, 1, 10, 14, 30, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert as_time(when) == "2025-01-10 12:30:00Z"
    assert as_time("not a time") == "not a time"
    assert short_id("short_id") == "short_id"
    assert short_id("x" * 20 + "0123456789ab") == "…0123456789ab"


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        (None, None, MISSING),
        (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), None, "active"),
        (dt.datetime(2026, 7, 1, tzinfo=dt.UTC), None, "not started"),
        (None, dt.datetime(2026, 6, 1, tzinfo=dt.UTC), "ended"),
        (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, tzinfo=dt.UTC), "active"),
    ],
)
def test_contract_status(start: object, end: object, status: str) -> None:
    assert contract_status({"contract_start": start, "contract_end": end}, NOW) == status


def test_optional_columns_show_only_when_a_row_has_a_value() -> None:
    plain = SimpleNamespace(id="a", data={"kind": "invalid_event"})
    replayed = SimpleNamespace(id="b", data={"kind": "dead_letter", "replay_outcome": "recorded"})
    headers, _ = rows("rejections", [plain])
    assert "replay outcome" not in [c.header for c in headers]
    headers, cells = rows("rejections", [plain, replayed])
    at = [c.header for c in headers].index("replay outcome")
    assert [r[at] for r in cells] == [MISSING, "recorded"]
