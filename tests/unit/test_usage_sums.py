"""A customer-month from aggregation answers (`ops.usage_sums.report_from_sums`): the same
lines as `build_report` sums from the records themselves, counts and cents exactly, amounts as
float sums (equal once shown rounded), the charts' days and the customer's quota."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ops.console.models import shown_amount
from ops.usage_report import UsageReport, build_report, month_days
from ops.usage_sums import ActionSums, report_from_sums
from shared.counters import Sums, record_fields, record_sums

MONTH = "2025-02"
START = datetime(2025, 2, 1, tzinfo=UTC)
CUSTOMER = {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 10}


def _record(i: int, action: str, when: datetime, cents: int, **amounts: Any) -> dict[str, Any]:
    """A record as the usage function writes it (amounts null when not given)."""
    amount = Decimal(cents).scaleb(-2)
    return {
        "schema_version": 1,
        "customer_id": "c1",
        "scene_id": f"s{i % 3}",
        "action": action,
        "timestamp": when,
        "billable": cents > 0,
        "estimated_cost": float(amount),
        "episodes_generated": amounts.get("episodes_generated"),
        "compute_minutes": amounts.get("compute_minutes"),
        "storage_gb": amounts.get("storage_gb"),
        **record_fields("c1", MONTH, action, amount, 16),
    }


def _answers(records: Iterable[dict[str, Any]], month_only: bool = True) -> list[ActionSums]:
    """What the aggregation requests answer for these records: per action, the month's count
    and sums (floats added one by one, as a server does), the billable count, and per day."""
    months: dict[str, Sums] = {}
    billable: dict[str, int] = {}
    days: dict[str, dict[date, Sums]] = {}
    for data in records:
        if month_only and data["timestamp"].strftime("%Y-%m") != MONTH:
            continue
        action, day = data["action"], data["timestamp"].date()
        months[action] = months.get(action, Sums()) + record_sums(data)
        billable[action] = billable.get(action, 0) + data["billable"]
        by_day = days.setdefault(action, {})
        by_day[day] = by_day.get(day, Sums()) + Sums(1, cost_cents=data["cost_cents"])
    return [ActionSums(a, months[a], billable[a], days[a]) for a in months]


def _same(exact: UsageReport, summed: UsageReport) -> None:
    """The lines agree: counts and money exactly, amounts once rounded as a page shows them."""
    assert list(summed.actions) == list(exact.actions)
    for want, got in zip(
        [*exact.actions.values(), exact.total],
        [*summed.actions.values(), summed.total],
        strict=True,
    ):
        assert (got.label, got.records, got.billable, got.episodes, got.cost) == (
            want.label,
            want.records,
            want.billable,
            want.episodes,
            want.cost,
        )
        assert shown_amount(got.compute_minutes) == shown_amount(want.compute_minutes)
        assert shown_amount(got.storage_gb) == shown_amount(want.storage_gb)
    assert summed.daily_cost == exact.daily_cost
    assert {
        d: {a: (t.records, t.cost) for a, t in acts.items()}
        for d, acts in summed.daily_actions.items()
    } == {
        d: {a: (t.records, t.cost) for a, t in acts.items()}
        for d, acts in exact.daily_actions.items()
    }
    assert summed.scenes_generated == exact.scenes_generated


def test_the_sums_make_the_report_the_records_make() -> None:
    records = [
        _record(
            i,
            ("scene_generated", "episodes_generated", "upsell_applied")[i % 3],
            START + timedelta(hours=4 * i),
            25 + i % 7,
            compute_minutes=0.1 * (i + 1),
            episodes_generated=3 if i % 3 == 1 else None,
            storage_gb=0.3 if i % 2 else None,
        )
        for i in range(157)
    ]
    exact = build_report("c1", MONTH, [(str(i), r) for i, r in enumerate(records)], CUSTOMER)
    summed = report_from_sums("c1", MONTH, _answers(records), CUSTOMER)
    _same(exact, summed)
    # The float sum differs from the exact one in its last digits; shown, they are the same.
    assert summed.total.compute_minutes != exact.total.compute_minutes
    assert shown_amount(summed.total.compute_minutes) == Decimal("1240.30")
    assert summed.total.cost == Decimal("43.90")
    assert summed.scenes_generated == 53
    assert (summed.quota, summed.customer_exists) == (10, True)


def test_an_action_without_records_in_the_month_has_no_line() -> None:
    idle = ActionSums("upsell_applied", Sums(), 0, {})
    used = ActionSums(
        "scene_generated",
        Sums(2, 2, cost_cents=150),
        2,
        {date(2025, 2, 3): Sums(2, cost_cents=150)},
    )
    report = report_from_sums("c1", MONTH, [idle, used], None)
    assert list(report.actions) == ["scene_generated"]
    assert (report.total.records, report.total.cost) == (2, Decimal("1.50"))
    assert report.daily_cost[date(2025, 2, 3)] == Decimal("1.50")
    day = report.daily_actions[date(2025, 2, 3)]["scene_generated"]
    assert list(report.daily_actions) == [date(2025, 2, 3)]
    assert (day.records, day.cost) == (2, Decimal("1.50"))
    assert not report.customer_exists


def test_every_day_of_the_month_is_charted_and_other_days_are_not() -> None:
    stray = ActionSums(
        "scene_generated", Sums(1, cost_cents=5), 1, {date(2025, 3, 1): Sums(1, cost_cents=5)}
    )
    report = report_from_sums("c1", MONTH, [stray])
    assert list(report.daily_cost) == month_days(MONTH)
    assert len(month_days(MONTH)) == 28
    assert sum(report.daily_cost.values()) == 0
    assert report.daily_actions == {}
    assert report.total.cost == Decimal("0.05")  # the month's total counts it


def test_nothing_at_all_is_an_empty_report_with_every_day() -> None:
    report = report_from_sums("c1", MONTH, [], None)
    assert (report.total.records, report.total.cost, report.actions) == (0, Decimal(0), {})
    assert len(report.daily_cost) == 28


def test_the_customer_part_is_build_reports() -> None:
    customer = {**CUSTOMER, "quota_period": MONTH, "scenes_generated_this_month": 7}
    summed = report_from_sums("c1", MONTH, [], customer)
    exact = build_report("c1", MONTH, [], customer)
    assert (summed.quota, summed.counter, summed.quota_text) == (
        exact.quota,
        exact.counter,
        exact.quota_text,
    )
    assert summed.counter == 7


ACTIONS = st.sampled_from(["scene_generated", "episodes_generated", "other"])
AMOUNT = st.none() | st.floats(min_value=0, max_value=1e4, allow_nan=False)


@st.composite
def _records(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(min_value=0, max_value=40))
    out = []
    for i in range(n):
        when = START + timedelta(minutes=draw(st.integers(min_value=-600, max_value=29 * 1440)))
        out.append(
            _record(
                i,
                draw(ACTIONS),
                when,
                draw(st.integers(min_value=0, max_value=10**6)),
                episodes_generated=draw(st.none() | st.integers(min_value=0, max_value=10**6)),
                compute_minutes=draw(AMOUNT),
                storage_gb=draw(AMOUNT),
            )
        )
    return out


@given(_records())
def test_any_records_sum_to_the_same_counts_money_and_days(records: list[dict[str, Any]]) -> None:
    exact = build_report("c1", MONTH, [(str(i), r) for i, r in enumerate(records)], None)
    summed = report_from_sums("c1", MONTH, _answers(records), None)
    assert list(summed.actions) == list(exact.actions)
    for want, got in zip(
        [*exact.actions.values(), exact.total],
        [*summed.actions.values(), summed.total],
        strict=True,
    ):
        assert (got.records, got.billable, got.episodes, got.cost) == (
            want.records,
            want.billable,
            want.episodes,
            want.cost,
        )
        # Float sums: within the float error of the exact sum (rounding is tested above).
        for a, b in (
            (got.compute_minutes, want.compute_minutes),
            (got.storage_gb, want.storage_gb),
        ):
            assert abs(a - b) <= Decimal("1e-9") * max(1, abs(b))
    assert summed.daily_cost == exact.daily_cost
    assert summed.scenes_generated == exact.scenes_generated
