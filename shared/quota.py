"""Monthly scene-quota rules shared by the fold, the monthly reset and the alerts' readers (pure).

`scenes_generated_this_month` is the data model's counter for the month named by
`quota_period` (on documents that predate this suite: the month of `quota_reset_at`, else the
month of the document's last write). The fold mirrors each month summary onto it
(docs/counters.md); the monthly reset moves it to the new month (docs/reset.md). A month
count reaching 80 % and 100 % of the quota raises one alert each: `alert_message` is its body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from shared.models import Customer
from shared.times import month_of

THRESHOLDS: Final[tuple[int, ...]] = (80, 100)
"""Percentages of the monthly quota that raise one alert each, once per month."""

THIS_MONTH_FIELD: Final = "scenes_generated_this_month"
PERIOD_FIELD: Final = "quota_period"

BOOKKEEPING_FIELDS: Final = frozenset(
    {
        THIS_MONTH_FIELD,
        "total_scenes_generated",
        "total_episodes_generated",
        PERIOD_FIELD,
        "quota_reset_at",
    }
)
"""Customer fields only the fold and the monthly reset write: counters, not configuration.
A change confined to them is not a user-visible config change (no stamp, no invalidation)."""


def is_unlimited(quota: int | None) -> bool:
    """-1 or absent means no monthly limit."""
    return quota is None or quota < 0


def threshold_count(quota: int, percent: int) -> int:
    """Scenes at which `percent` % of `quota` is reached (at least 1)."""
    return max(1, math.ceil(quota * percent / 100))


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


def legacy_period(last_write: datetime | None, now: datetime) -> str:
    """The month the counter of a document without bookkeeping counts: that of its last write
    (every writer of such a counter treated it as "this month" when it wrote), or `now`'s when
    the write time is unknown. The monthly reset reads such documents the same way."""
    return month_of(last_write if last_write is not None else now)


def needs_reset(customer: Customer, period: str) -> bool:
    """Whether the reset for `period` still has to touch this customer."""
    current = counter_period(customer)
    return current is None or current < period


@dataclass(frozen=True, slots=True)
class ResetPlan:
    """What the reset for a period writes to one customer."""

    value: int
    """New `scenes_generated_this_month`."""
    kept: bool = False
    """A document from before the suite whose counter already counted the period: its count so
    far was kept (or the month summary's count, when that is larger)."""


def plan_reset(
    customer: Customer,
    period: str,
    *,
    month_count: int = 0,
    last_write: datetime | None = None,
    as_of: datetime | None = None,
    keep: bool = False,
) -> ResetPlan | None:
    """The reset of `customer` for `period`, or None when it has nothing to do (docs/reset.md).

    `month_count` is the scenes the fold has counted for `period` (its month summary's
    `scenes_total`, 0 when there is none): the new month's count so far, and the new value.

    A document with `quota_period` or `quota_reset_at` counts that month: before `period` it
    gets `month_count`. A document with neither (it predates the suite) counts the month of its
    last write (`last_write`, Firestore's update time), because every writer of such a counter
    (the old pipeline, the seed, the migration) treated it as "this month" when it wrote. So:
    - last written after `period`: it already counts a later month, nothing to do;
    - last written in `period` before the run was asked for (`as_of`): its counter is the
      period's count so far, and it is kept (or `month_count`, when larger). `keep=True` repeats
      an earlier look's decision after another write moved `last_write`;
    - otherwise (an earlier month, an unknown write time, or written after the run was asked
      for, as in the first minutes of a month before the scheduled run reaches it):
      `month_count`.
    """
    known = counter_period(customer)
    if known is not None:
        return None if known >= period else ResetPlan(month_count)
    if last_write is None:
        return ResetPlan(month_count)
    written = month_of(last_write)
    if written > period:
        return None
    count_so_far = customer.scenes_generated_this_month
    in_time = keep or (as_of is not None and last_write < as_of)
    if written == period and count_so_far is not None and in_time:
        return ResetPlan(max(count_so_far, month_count), kept=True)
    return ResetPlan(month_count)


def alert_id(customer_id: str, month: str, percent: int) -> str:
    """`quota_alerts` document id and the message's `alert_id`: one per customer, month and
    threshold (a consumer deduplicates on it)."""
    return f"{customer_id}_{month}_{percent}"


def alert_message(  # noqa: PLR0917 - the message's own fields, in its order
    customer_id: str,
    month: str,
    percent: int,
    quota: int | None,
    count: int,
    run_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The `quota-alerts` message body (docs/decisions.md)."""
    return {
        "schema_version": 1,
        "alert_id": alert_id(customer_id, month, percent),
        "customer_id": customer_id,
        "month": month,
        "threshold_percent": percent,
        "monthly_scene_quota": quota,
        "threshold_scenes": None if quota is None else threshold_count(quota, percent),
        "scenes_generated": count,
        "over_quota": quota is not None and count > quota,
        "event_id": None,
        "message_id": run_id,
        "detected_at": now.isoformat(),
    }


ALERT_FIELDS: Final = tuple(
    alert_message("c", "2000-01", 80, 1, 1, "m", datetime(2000, 1, 1, tzinfo=UTC))
)
"""The fields of an alert message (its marker in `quota_alerts` holds them too)."""
