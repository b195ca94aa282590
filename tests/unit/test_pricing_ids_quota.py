"""Rate card and cost, usage record ids, quota rules."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import quota
from shared.ids import message_doc_id, usage_record_id
from shared.models import BundleTier, Customer, UsageEvent
from shared.pricing import default_rate_card, estimate_cost, load_rate_card
from shared.times import month_of, month_start, next_month_start
from shared.types import MAX_EVENT_COUNT

DOC_ID = re.compile(r"^(?!__.*__$)[^/]{1,1500}$")


def event(**over: object) -> UsageEvent:
    base: dict[str, object] = {
        "schema_version": 1,
        "customer_id": "lab_001",
        "scene_id": "scene_kitchen_v2",
        "action": "episodes_generated",
        "timestamp": "2025-01-10T14:30:00Z",
        "episodes_generated": 100,
        "compute_minutes": 45.5,
        "storage_gb": 2.3,
    }
    base.update(over)
    return UsageEvent.model_validate(base)


def test_schema_example_costs_exactly_15_50() -> None:
    estimate = estimate_cost(event(), BundleTier.PRO)
    assert estimate.amount == Decimal("15.50")
    assert estimate.billable
    assert estimate.rate_card_version == default_rate_card().version


# Hand-computed: 45.5 min, 2.3 GB, 100 episodes at each tier's rates (decisions.md).
@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        (BundleTier.STANDARD, "17.88"),  # 15.925 + 1.15 + 0.80 = 17.875, half-up
        (BundleTier.PRO, "15.50"),  # 13.65 + 1.15 + 0.70
        (BundleTier.ENTERPRISE, "13.92"),  # 12.285 + 1.035 + 0.60 = 13.92
        (BundleTier.FOUNDATION, "12.34"),  # 10.92 + 0.92 + 0.50 = 12.34
    ],
)
def test_cost_per_tier(tier: BundleTier, expected: str) -> None:
    assert estimate_cost(event(), tier).amount == Decimal(expected)


def test_rounding_is_half_up_to_cents() -> None:
    # 0.015 min at 0.30 = 0.0045 -> 0.00; 0.05 min -> 0.015 -> 0.02 (half-up, not banker's)
    assert estimate_cost(
        event(compute_minutes=0.05, storage_gb=0, episodes_generated=0), BundleTier.PRO
    ).amount == Decimal("0.02")


def test_unknown_action_is_not_billable() -> None:
    estimate = estimate_cost(event(action="coffee_break"), BundleTier.PRO)
    assert (estimate.amount, estimate.billable) == (Decimal("0.00"), False)


def test_rate_card_must_price_every_tier() -> None:
    with pytest.raises(ValueError, match="lacks tiers"):
        load_rate_card({"version": "x", "billable_actions": [], "rates": {}})


amounts = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@given(
    tier=st.sampled_from(list(BundleTier)),
    minutes=amounts,
    gb=amounts,
    episodes=st.integers(0, 10**7),
)
def test_cost_is_never_negative_and_has_cents_at_most(
    tier: BundleTier, minutes: float, gb: float, episodes: int
) -> None:
    amount = estimate_cost(
        event(compute_minutes=minutes, storage_gb=gb, episodes_generated=episodes), tier
    ).amount
    assert amount >= 0
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    assert exponent >= -2


@pytest.mark.parametrize("tier", list(BundleTier))
@given(
    minutes=st.floats(0, allow_nan=False, allow_infinity=False),
    gb=st.floats(0, allow_nan=False, allow_infinity=False),
    episodes=st.integers(0, MAX_EVENT_COUNT),
)
def test_every_valid_event_has_a_cost_whatever_its_size(
    tier: BundleTier, minutes: float, gb: float, episodes: int
) -> None:
    # A valid event must always price: an exception here is a message redelivered forever.
    rates = default_rate_card().rates[tier]
    amount = estimate_cost(
        event(compute_minutes=minutes, storage_gb=gb, episodes_generated=episodes), tier
    ).amount
    assert amount.as_tuple().exponent == -2
    with localcontext(prec=1000):  # exact for any float
        exact = (
            Decimal(repr(minutes)) * rates.compute_minute
            + Decimal(repr(gb)) * rates.storage_gb
            + Decimal(episodes) * rates.episode
        )
        # Half a cent of rounding, plus the 28-digit arithmetic's last place below 1e26.
        assert abs(amount - exact) <= Decimal("0.005") + exact.scaleb(-27).copy_abs()


def test_largest_amounts_price_exactly() -> None:
    huge = event(compute_minutes=1e27, storage_gb=1.7976931348623157e308, episodes_generated=0)
    amount = estimate_cost(huge, BundleTier.PRO).amount
    with localcontext(prec=1000):
        exact = Decimal("3e26") + Decimal("1.7976931348623157e308") * Decimal("0.50")
    assert amount == exact


def test_record_id_is_stable_and_valid() -> None:
    a = usage_record_id(event())
    assert a == usage_record_id(event())
    assert (
        a
        == "41ba4594037b6cd9e48576c9_lab_001_scene_kitchen_v2_episodes_generated_20250110T143000.000000Z"
    )
    # Same instant written another way: same id.
    assert usage_record_id(event(timestamp="2025-01-10T15:30:00+01:00")) == a
    assert usage_record_id(event(timestamp="2025-01-10T14:30:01Z")) != a


def test_record_ids_do_not_increase_with_time() -> None:
    # A collection whose ids increase monotonically tops out near 500 writes/s in production:
    # ids of consecutive events (time-ordered event ids, too) must not sort in time order.
    by_time = [usage_record_id(event(timestamp=f"2025-01-10T14:30:{s:02d}Z")) for s in range(60)]
    by_event_id = [usage_record_id(event(event_id=f"job-{n:06d}")) for n in range(60)]
    for ids in (by_time, by_event_id):
        assert ids != sorted(ids)
        assert len({i[:2] for i in ids}) > 20  # leading characters spread like a hash


def test_record_id_from_event_id_ignores_other_fields() -> None:
    a = usage_record_id(event(event_id="run-7/batch 3"))
    assert a == usage_record_id(event(event_id="run-7/batch 3", compute_minutes=1.0))
    assert "/" not in a
    # Sanitising maps '/' and ' ' alike; the hash still tells them apart.
    assert a != usage_record_id(event(event_id="run-7 batch/3"))


@given(st.text(min_size=1, max_size=256), st.text(min_size=1, max_size=40))
def test_record_id_is_always_a_valid_document_id(event_id: str, customer: str) -> None:
    try:
        e = event(event_id=event_id, customer_id=customer)
    except ValueError:
        return  # the customer id itself is invalid: the model refuses it
    doc_id = usage_record_id(e)
    assert DOC_ID.match(doc_id)
    assert doc_id not in {".", ".."}
    assert len(doc_id.encode()) <= 1500
    assert DOC_ID.match(message_doc_id(event_id))


# --- quota -------------------------------------------------------------------------------


@given(q=st.integers(0, 10_000), n=st.integers(1, 20_000))
def test_a_threshold_is_reached_from_its_count_on(q: int, n: int) -> None:
    for percent in quota.reached_thresholds(q, n):
        assert quota.threshold_count(q, percent) <= n
    assert quota.reached_thresholds(q, n) == [
        p for p in quota.THRESHOLDS if quota.threshold_count(q, p) <= n
    ]
    assert quota.reached_thresholds(-1, n) == quota.reached_thresholds(None, n) == []


NOW = datetime(2026, 11, 15, 12, tzinfo=UTC)


def customer(**over: object) -> Customer:
    return Customer.model_validate({"schema_version": 1, "bundle_tier": "pro", **over})


def test_a_counter_needs_a_reset_until_it_counts_the_period() -> None:
    assert quota.needs_reset(
        customer(quota_period="2026-10", scenes_generated_this_month=70), "2026-11"
    )
    assert not quota.needs_reset(customer(quota_period="2026-11"), "2026-11")
    assert not quota.needs_reset(customer(quota_period="2026-12"), "2026-11")
    assert quota.needs_reset(customer(), "2026-11")


def test_month_helpers() -> None:
    assert next_month_start("2026-12") == datetime(2027, 1, 1, tzinfo=UTC)
    assert month_start("2026-02") == datetime(2026, 2, 1, tzinfo=UTC)
    assert month_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC) + timedelta(minutes=1)) == "2027-01"


@pytest.mark.parametrize(
    ("compute", "storage", "episodes", "cost"),
    [
        (2.857142857142857e-18, 0.009999999999999998, 1250, "10.00"),
        (1e11, 0.009999999999999998, None, "35000000000.00"),
    ],
)
def test_a_cost_is_rounded_once_to_cents_from_its_exact_sum(
    compute: float, storage: float, episodes: int | None, cost: str
) -> None:
    # Summed in 28 digits, these were rounded before the cents and came out a cent high
    # (exactly: 10.00499999999999999999999999999999995 and 35000000000.004999...).
    priced = event(
        action="scene_generated",
        compute_minutes=compute,
        storage_gb=storage,
        episodes_generated=episodes,
    )
    assert estimate_cost(priced, BundleTier.STANDARD).amount == Decimal(cost)


def test_minus_zero_is_zero_so_a_redelivery_is_not_a_conflict() -> None:
    from shared.ids import payload_sha256

    zero, minus_zero = event(storage_gb=0.0), event(storage_gb=-0.0)
    assert str(minus_zero.storage_gb) == "0.0"
    assert payload_sha256(zero) == payload_sha256(minus_zero)
