"""Which quiet customer-months a fold writes now and which it holds in its bucket's state (pure).

A customer-month counted from its records costs each fold that writes it a summary write, a
customer write (and its `on-customer-written` invocation) and two reads, however few records
it brought: at a few events per customer-month per minute that is more than its records cost.
So, once its summary has been written, a month's new records are summed into its bucket's
state document (`usage_fold_state/{b}`.`held`: `held_format`; written by every fold anyway)
and its summary is written again only when one of these holds (docs/counters.md, "Held
tallies"):

- `write_interval` has passed since its last write (the customer document converges within
  that plus one fold interval);
- the held scenes reach its `headroom` (an alert threshold may be crossed: alerts keep their
  lag of one fold interval);
- its month is over (billing reads closed months), or the customer has shard changes in this
  fold (its customer write happens anyway);
- the month has no held entry (first sight, or the bucket's map is full: `held_max`).

Exactness: the held sums and the bucket's records watermark move in the same guarded write of
the state document; a held tally starts at its summary's bound (`HeldTally.base`), and the
planner adds it only while the summary is still at that bound (`tally.tally_shard`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from functions.fold.held_format import held_size
from functions.fold.planner import MonthFold
from functions.fold.ports import HeldTally, Tally, TallyRecord
from shared.counters import SHARD_FLOAT_FIELDS, SHARD_INT_FIELDS
from shared.times import month_of

SCENES = "scenes_generated"
HELD_MAX_BYTES = 800_000
"""Stored size of one bucket's held map at most (`held_format`; a Firestore value may hold
just under 1 MiB)."""


def add_values(
    base: Mapping[str, int | float], records: Iterable[TallyRecord]
) -> dict[str, int | float]:
    """`base` plus the records' counts (ints exact, floats summed with fsum)."""
    found = list(records)
    out: dict[str, int | float] = {}
    for name in SHARD_INT_FIELDS:
        out[name] = int(base.get(name, 0)) + sum(int(r.values.get(name, 0)) for r in found)
    for name in SHARD_FLOAT_FIELDS:
        out[name] = math.fsum(
            [float(base.get(name, 0.0)), *(float(r.values.get(name, 0.0)) for r in found)]
        )
    return out


ZERO: Mapping[str, int | float] = add_values({}, ())


@dataclass(slots=True)
class BucketPlan:
    """One bucket's records after the decision."""

    writes: dict[str, dict[str, Tally]] = field(default_factory=dict)
    """By customer, by month: the tallies to write into their summaries now."""
    held: dict[str, HeldTally] = field(default_factory=dict)
    """The bucket's held map without the months written now (they get a fresh entry after
    their write: `after_write`)."""
    months_held: int = 0
    size: int = 0
    """Stored size of `held` at most (from the stored text, plus each entry `after_write`
    adds)."""


def plan_bucket(  # noqa: PLR0917 - the decision's inputs, each needed
    bucket: int,
    held: Mapping[str, HeldTally],
    records: Mapping[tuple[str, str], Sequence[TallyRecord]],
    upto: datetime | None,
    hot_customers: Collection[str],
    now: datetime,
    write_interval: timedelta,
    held_bytes: int = 0,
) -> BucketPlan:
    """Decide, per customer-month with new records or a held entry, write now or hold.
    `held_bytes`: the stored size of `held` (the plan's size starts there: an upper bound,
    since the months written now leave it, cheap to keep)."""
    plan = BucketPlan()
    by_key = {f"{c}_{m}": (c, m) for c, m in records}
    by_key.update({key: (h.customer_id, h.month) for key, h in held.items()})
    current = month_of(now)
    for key, (customer_id, month) in sorted(by_key.items()):
        found = tuple(records.get((customer_id, month), ()))
        entry = held.get(key)
        pending = bool(found) or (entry is not None and not entry.empty)
        bound = upto if upto is not None else (entry.upto if entry is not None else None)
        if entry is None or write_interval <= timedelta(0) or month < current:
            due = pending
        elif customer_id in hot_customers or now - entry.written_at >= write_interval:
            due = pending
            if not pending:
                continue  # expired and nothing held: forget it (the next record writes)
        else:
            values = add_values(entry.values, found) if found else entry.values
            due = entry.headroom is not None and int(values[SCENES]) >= entry.headroom
            if not due:
                if found and bound is not None:
                    entry = replace(entry, values=values, upto=bound)
                    plan.months_held += 1
                plan.held[key] = entry
                continue
        if due and bound is not None:
            tally = Tally(found, bound, held=entry, bucket=bucket)
            plan.writes.setdefault(customer_id, {})[month] = tally
        elif entry is not None and month >= current and write_interval > timedelta(0):
            plan.held[key] = entry
    plan.size = held_bytes
    return plan


def after_write(  # noqa: PLR0917 - one customer's outcome, applied to its bucket
    plan: BucketPlan,
    customer_id: str,
    folds: Sequence[MonthFold] | None,
    now: datetime,
    write_interval: timedelta,
    held_max: int,
) -> bool:
    """Apply one customer's write to the bucket's held map: written months get a fresh, empty
    entry (so that their next records can be held); a failed write (`folds` None) holds its
    records instead when the month had an entry. False when a month of the customer had no
    entry to hold its records in: the bucket's records watermark must stay."""
    ok = True
    by_month = {f.month: f for f in folds or ()}
    for month, tally in plan.writes.get(customer_id, {}).items():
        key = f"{customer_id}_{month}"
        if folds is None:
            if tally.held is None:
                ok = False
                continue
            values = add_values(tally.held.values, tally.records)
            plan.held[key] = replace(tally.held, values=values, upto=tally.upto)
            continue
        fold = by_month.get(month)
        keep = write_interval > timedelta(0) and month >= month_of(now)
        if fold is None or fold.tally_upto is None or not keep or len(plan.held) >= held_max:
            continue
        fresh = HeldTally(
            customer_id,
            month,
            base=fold.tally_upto,
            upto=fold.tally_upto,
            values=ZERO,
            headroom=fold.headroom,
            written_at=now,
        )
        size = held_size(fresh)
        if plan.size + size > HELD_MAX_BYTES:
            continue  # the map is full: this month is written by every fold that changes it
        plan.size += size
        plan.held[key] = fresh
    return ok
