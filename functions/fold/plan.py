"""Pure planning of one customer's commit: month summaries, customer counters, quota alerts.

The invariant (docs/counters.md): a month summary holds the sums of exactly the records of its
customer-month whose `recorded_at` is at or before its `bound`. So a record is added only when
it lies above the bound as read, and the bound moves in the same guarded commit as the sums.

- `seed_scenes`: a customer document from before the suite whose counter counts the month
  keeps its `scenes_generated_this_month` as the seed of that month, taken once, when the
  month's summary is created (the legacy rule);
- lifetime totals: `total_*` on the customer = its value before the first fold + every month's
  sums. Each summary records how much of its sums the customer already holds (`mirrored_*`);
  the commit adds the difference and moves `mirrored_*` with it, so each scene reaches the
  lifetime total exactly once, and a recount's correction reaches it too;
- quota alerts: a month's count reaching 80 % / 100 % creates its marker in the same commit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from functions.fold.ports import (
    Commit,
    CustomerState,
    CustomerWrite,
    NewRecord,
    Snapshot,
    SummaryWrite,
)
from shared import quota
from shared.counters import Sums
from shared.firestore_values import plain_value
from shared.times import MONTH_RE, month_of

SCHEMA_VERSION: Final = 1
THIS_MONTH: Final = quota.THIS_MONTH_FIELD
TOTAL_SCENES: Final = "total_scenes_generated"
TOTAL_EPISODES: Final = "total_episodes_generated"
_VOLATILE: Final = frozenset({"folded_at"})
"""Summary fields that change on every write and say nothing about the sums."""


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class MonthChange:
    """What one commit does to one month summary: add the sums of the month's records above
    its bound as read (`added`), move the bound (None: keep it); or replace the sums with a
    recount's (`recounted`, the records at or before the bound) and, once the month has
    ended, mark it `close`d. `month_closed`: the fold closed this month already, so what this
    commit adds came late."""

    added: Sums = field(default_factory=Sums)
    bound: datetime | None = None
    recounted: Sums | None = None
    close: bool = False
    month_closed: bool = False


def bound_of(summary: Snapshot | None) -> datetime | None:
    """The summary's bound as read (None: no summary, nothing counted yet)."""
    found = plain_value(summary.data.get("bound")) if summary is not None else None
    return found if isinstance(found, datetime) else None


def changes_from_records(
    state: CustomerState,
    records: Mapping[str, Sequence[NewRecord]],
    upto: Mapping[str, datetime],
    closed_through: str | None = None,
) -> dict[str, MonthChange]:
    """Per month: the scanned records above its summary's bound (as just read), up to the
    month's scan bound `upto[month]`. A record at or below the bound is in the summary already
    (an overlapping or earlier fold added it): this is what makes a rerun count nothing twice."""
    out: dict[str, MonthChange] = {}
    for month, found in records.items():
        bound = bound_of(state.summaries.get(month))
        fresh = [r for r in found if (bound is None or r.recorded_at > bound)]
        added = sum((r.sums for r in fresh if r.recorded_at <= upto[month]), Sums())
        new_bound = upto[month] if bound is None or upto[month] > bound else bound
        late = closed_through is not None and month <= closed_through
        out[month] = MonthChange(added, new_bound, month_closed=late)
    return out


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What the fold reads from a customer document (leniently: a bad field is ignored).
    `period`: the month `scenes_generated_this_month` counts (quota_period, else
    quota_reset_at's month, else the month of the document's last write)."""

    quota: int | None
    this_month: int | None
    total_scenes: int
    total_episodes: int
    period: str


def customer_facts(doc: Snapshot, now: datetime) -> CustomerFacts:
    """The facts of a customer document as read."""
    data = doc.data
    raw_period = data.get(quota.PERIOD_FIELD)
    reset_at = plain_value(data.get("quota_reset_at"))
    if isinstance(raw_period, str) and MONTH_RE.match(raw_period):
        period = raw_period
    elif isinstance(reset_at, datetime):
        period = month_of(reset_at)
    else:
        written = plain_value(doc.update_time)
        period = quota.legacy_period(written if isinstance(written, datetime) else None, now)
    return CustomerFacts(
        quota=_int(data.get("monthly_scene_quota")),
        this_month=_int(data.get(THIS_MONTH)),
        total_scenes=_int(data.get(TOTAL_SCENES)) or 0,
        total_episodes=_int(data.get(TOTAL_EPISODES)) or 0,
        period=period,
    )


@dataclass(frozen=True, slots=True)
class CustomerPlan:
    """What one customer's commit writes, the alerts to publish after it, and how many
    records it adds to closed months (`late`)."""

    commit: Commit
    alerts: tuple[Mapping[str, Any], ...]
    late: int = 0


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = (set(a) | set(b)) - _VOLATILE
    return all(plain_value(a.get(k)) == plain_value(b.get(k)) for k in keys)


def plan_customer(
    customer_id: str,
    state: CustomerState,
    changes: Mapping[str, MonthChange],
    *,
    now: datetime,
    run_id: str,
    server_time: Any,
    existing_markers: frozenset[str] = frozenset(),
) -> CustomerPlan:
    """Plan one customer's commit from what was read (pure; `server_time` is the sentinel the
    adapter turns into the commit time). `existing_markers`: alert ids found to exist already:
    listed in the summary, never created again."""
    facts = customer_facts(state.customer, now) if state.customer is not None else None
    late_records = 0
    writes: list[SummaryWrite] = []
    alerts: list[Mapping[str, Any]] = []
    markers: list[tuple[str, Mapping[str, Any]]] = []
    delta_scenes = delta_episodes = 0
    scenes_by_month: dict[str, int] = {}
    for month in sorted(changes):
        change = changes[month]
        stored = state.summaries.get(month)
        old = dict(stored.data) if stored is not None else {}
        sums = change.recounted if change.recounted is not None else Sums.from_fields(old)
        sums += change.added
        closed = bool(old.get("closed")) or change.month_closed
        late = change.added.records if closed else 0
        if stored is not None:
            seed = _int(old.get("seed_scenes")) or 0
        elif facts is not None and facts.period == month:  # the legacy rule, taken once
            seed = max(facts.this_month or 0, 0)
        else:
            seed = 0
        count = seed + sums.scenes_generated
        scenes_by_month[month] = count
        known = sorted(
            {p for p in old["alerts"] if isinstance(p, int)}
            if isinstance(old.get("alerts"), list)
            else ()
        )
        reached = quota.reached_thresholds(facts.quota, count) if facts is not None else []
        for percent in (p for p in reached if p not in known):
            known.append(percent)
            if quota.alert_id(customer_id, month, percent) in existing_markers:
                continue  # its own state says whether it still has to go out
            payload = quota.alert_message(
                customer_id, month, percent, facts.quota if facts else None, count, run_id, now
            )
            alerts.append(payload)
            claim = {"state": "pending", "claimed_by": run_id, "claimed_at": now}
            markers.append((str(payload["alert_id"]), {**payload, **claim}))
        mirrored_scenes = _int(old.get("mirrored_scenes")) or 0
        mirrored_episodes = _int(old.get("mirrored_episodes")) or 0
        if facts is not None:
            delta_scenes += sums.scenes_generated - mirrored_scenes
            delta_episodes += sums.episodes_generated - mirrored_episodes
            mirrored_scenes, mirrored_episodes = sums.scenes_generated, sums.episodes_generated
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "customer_id": customer_id,
            "month": month,
            **sums.as_fields(),
            "seed_scenes": seed,
            "scenes_total": count,
            "bound": change.bound or plain_value(old.get("bound")),
            "late_records": (_int(old.get("late_records")) or 0) + late,
            "closed": closed or change.close,
            "mirrored_scenes": mirrored_scenes,
            "mirrored_episodes": mirrored_episodes,
            "alerts": sorted(known),
            "folded_at": server_time,
        }
        if stored is None or not _same(old, data):
            writes.append(SummaryWrite(month, data, None if stored is None else stored.update_time))
        late_records += late
    customer_write = None
    if facts is not None and state.customer is not None:
        fields = _customer_fields(facts, state, scenes_by_month, now, delta_scenes, delta_episodes)
        changed = {k: v for k, v in fields.items() if state.customer.data.get(k) != v}
        if changed:
            rollover = facts.period < month_of(now)
            customer_write = CustomerWrite(changed, state.customer.update_time, rollover)
    commit = Commit(customer_id, tuple(writes), customer_write, tuple(markers))
    return CustomerPlan(commit, tuple(alerts), late_records)


def _customer_fields(  # noqa: PLR0917 - private helper of plan_customer
    facts: CustomerFacts,
    state: CustomerState,
    scenes_by_month: Mapping[str, int],
    now: datetime,
    delta_scenes: int,
    delta_episodes: int,
) -> dict[str, Any]:
    """The data model's three counters (+ the month the first one counts)."""
    fields: dict[str, Any] = {
        TOTAL_SCENES: facts.total_scenes + delta_scenes,
        TOTAL_EPISODES: facts.total_episodes + delta_episodes,
    }
    current = month_of(now)
    if facts.period > current:
        return fields  # the document already counts a later month: never move it back
    summary = state.summaries.get(current)
    if current in scenes_by_month:
        this_month = scenes_by_month[current]
    elif summary is not None:
        this_month = _int(summary.data.get("scenes_total")) or 0
    elif facts.period == current:
        this_month = max(facts.this_month or 0, 0)  # a seed whose summary does not exist yet
    else:
        this_month = 0  # the month rolled over and nothing is counted in it yet
    fields[THIS_MONTH] = this_month
    fields[quota.PERIOD_FIELD] = current
    return fields
