"""Monthly scene-quota rules shared by the usage function and the monthly reset (pure).

The design (docs/counters.md): `scene_counts_by_month.{YYYY-MM}` counts scene_generated events by
the month of their own timestamp and is only ever incremented; `scenes_generated_this_month` is
the schema's counter for the period named by `quota_period` (on documents that predate this suite:
the month of `quota_reset_at`, else the month of the document's last write, which the first usage
commit then records as `quota_period`). The reset never writes a blind 0: it derives the new value
from the per-month count, so an event committed during the reset is neither lost nor counted in
the wrong month.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from shared.models import Customer
from shared.times import month_of, next_month_start

THRESHOLDS: Final[tuple[int, ...]] = (80, 100)
"""Percentages of the monthly quota that raise one alert each, once per month."""

BOUNDARY_GUARD: Final = timedelta(minutes=10)
"""Near a month boundary the reset may be running: guard the counter with a precondition."""

COUNTS_FIELD: Final = "scene_counts_by_month"
THIS_MONTH_FIELD: Final = "scenes_generated_this_month"
PERIOD_FIELD: Final = "quota_period"

BOOKKEEPING_FIELDS: Final = frozenset(
    {
        THIS_MONTH_FIELD,
        COUNTS_FIELD,
        "total_scenes_generated",
        "total_episodes_generated",
        PERIOD_FIELD,
        "quota_reset_at",
    }
)
"""Customer fields only the usage function and the monthly reset write: counters, not config.
A change confined to them is not a user-visible config change (no stamp, no invalidation)."""


def is_unlimited(quota: int | None) -> bool:
    """-1 or absent means no monthly limit."""
    return quota is None or quota < 0


def threshold_count(quota: int, percent: int) -> int:
    """Scenes at which `percent` % of `quota` is reached (at least 1)."""
    return max(1, math.ceil(quota * percent / 100))


def crossed_thresholds(quota: int | None, before: int, after: int) -> list[int]:
    """Thresholds (percent) that going from `before` to `after` scenes crosses."""
    if is_unlimited(quota):
        return []
    assert quota is not None
    return [p for p in THRESHOLDS if before < threshold_count(quota, p) <= after]


def reached_thresholds(quota: int | None, count: int) -> list[int]:
    """Thresholds (percent) a month count has reached."""
    if is_unlimited(quota):
        return []
    assert quota is not None
    return [p for p in THRESHOLDS if count >= threshold_count(quota, p)]


def counter_period(customer: Customer) -> str | None:
    """The month `scenes_generated_this_month` counts, or None if never reset and unmarked."""
    if customer.quota_period is not None:
        return customer.quota_period
    if customer.quota_reset_at is not None:
        return month_of(customer.quota_reset_at)
    return None


@dataclass(frozen=True, slots=True)
class ScenePlan:
    """How one scene_generated event changes a customer's counters."""

    month: str
    """Month of the event's own timestamp: the per-month counter it increments."""
    increment_this_month: bool
    """Whether `scenes_generated_this_month` counts it too (event in the counter's period)."""
    count_from: Literal["this_month", "by_month"]
    """Which transform result is the month count for quota checks."""
    guard: bool
    """Commit with an update-time precondition (a reset may move the period meanwhile)."""
    adopt_period: str | None = None
    """Set on a document without a known counter period (it predates the suite): the period its
    counter was taken to count, which the same commit writes as `quota_period` (once)."""


def legacy_period(last_write: datetime | None, now: datetime) -> str:
    """The month the counter of a document without bookkeeping counts: that of its last write
    (every writer of such a counter treated it as "this month" when it wrote), or `now`'s when
    the write time is unknown. The monthly reset reads such documents the same way."""
    return month_of(last_write if last_write is not None else now)


def plan_scene_count(
    customer: Customer,
    event_time: datetime,
    now: datetime,
    last_write: datetime | None = None,
) -> ScenePlan:
    """Decide the counter changes of a scene_generated event (see module doc).

    `last_write` is the document's last write time (Firestore's update time): it tells the
    period of a document that has neither `quota_period` nor `quota_reset_at`; the plan then
    adopts that period (`adopt_period`) in a guarded commit.
    """
    event_month = month_of(event_time)
    known = counter_period(customer)
    period = known if known is not None else legacy_period(last_write, now)
    adopt = None if known is not None else period
    if event_month == period:
        near_boundary = now >= next_month_start(period) - BOUNDARY_GUARD
        # Adopting the period is a one-time write on a document whose month the read decided:
        # guard it, so a reset (or another event's adoption) in between makes us plan again.
        guard = near_boundary or adopt is not None
        return ScenePlan(event_month, True, "this_month", guard=guard, adopt_period=adopt)
    # Event in a month the counter does not (yet, or any more) count: only its own month counts.
    # A later month means the reset for it is pending and may move the period between our read
    # and our commit (the event would then miss the new period's counter): guard the commit.
    guard = event_month > period or adopt is not None
    return ScenePlan(event_month, False, "by_month", guard=guard, adopt_period=adopt)


def needs_reset(customer: Customer, period: str) -> bool:
    """Whether the reset for `period` still has to touch this customer."""
    current = counter_period(customer)
    return current is None or current < period


def reset_value(customer: Customer, period: str) -> int:
    """The value `scenes_generated_this_month` takes when `period` starts: events already in it."""
    return (customer.scene_counts_by_month or {}).get(period, 0)


@dataclass(frozen=True, slots=True)
class ResetPlan:
    """What the reset for a period writes to one customer."""

    value: int
    """New `scenes_generated_this_month`."""
    kept: bool = False
    """A document without bookkeeping whose counter already counted the period: its count so
    far was kept (the larger of it and the period's per-month count)."""


def plan_reset(
    customer: Customer,
    period: str,
    *,
    last_write: datetime | None = None,
    as_of: datetime | None = None,
    keep: bool = False,
) -> ResetPlan | None:
    """The reset of `customer` for `period`, or None when it has nothing to do (docs/counters.md).

    A document with `quota_period` or `quota_reset_at` counts that month: before `period` it gets
    the derived value `scene_counts_by_month[period]` (never a blind 0). A document with neither
    (it predates the suite) counts the month of its last write (`last_write`, Firestore's update
    time): every writer of such a counter (the old pipeline, the seed, the migration, the usage
    function) treated it as "this month" when it wrote. So:
    - last written after `period`: it already counts a later month, nothing to do;
    - last written in `period` before the run was asked for (`as_of`), and the suite never
      counted a scene of an earlier month on it: its count so far is the period's count, kept
      (the larger of it and the derived value; `keep=True` repeats an earlier look's decision
      after a usage commit moved `last_write`);
    - otherwise (an earlier month, or written after the run was asked for, as on the first
      minutes of the month before the scheduled run reaches it): the derived value.
    """
    derived = reset_value(customer, period)
    known = counter_period(customer)
    if known is not None:
        return None if known >= period else ResetPlan(derived)
    if last_write is None:
        return ResetPlan(derived)
    written = month_of(last_write)
    if written > period:
        return None
    seed = customer.scenes_generated_this_month
    counted_before = any(
        month < period and count > 0
        for month, count in (customer.scene_counts_by_month or {}).items()
    )
    in_time = keep or (as_of is not None and last_write < as_of)
    if written == period and seed is not None and in_time and not counted_before:
        return ResetPlan(max(seed, derived), kept=True)
    return ResetPlan(derived)
