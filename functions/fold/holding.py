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
planner adds it only while the summary is still at that bound (`tally.tally_shard`). Records
counted by aggregation are never summed here: an entry only says what the month owes (`owed`:
its flags' cover, a late record's touch) until a write has counted past it.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from functions.fold.held_format import held_size
from functions.fold.planner import MonthFold
from functions.fold.ports import HeldTally, Tally, TallyRecord
from shared.counters import FLAG_COVER, SHARD_FLOAT_FIELDS, SHARD_INT_FIELDS
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
    pins: list[datetime] = field(default_factory=list)
    """Flags whose cover a written month still owes and that found no room in the map: the
    bucket's records watermark stays before them (the next fold reads them again)."""


def owed_by(
    entry: HeldTally | None, found: Iterable[TallyRecord], touch: datetime | None = None
) -> datetime | None:
    """What the month owes: the latest of its entry's `owed`, its new flags' cover and a late
    record's shard `touch`."""
    covers = [r.recorded_at + FLAG_COVER for r in found if r.flag]
    covers += [t for t in (entry.owed if entry is not None else None, touch) if t is not None]
    return max(covers, default=None)


def _holds(
    entry: HeldTally,
    *,
    hot_customers: Collection[str],
    now: datetime,
    write_interval: timedelta,
) -> bool:
    """Whether a month with this entry may be held by this fold (its summary not written),
    headroom aside."""
    return not (
        write_interval <= timedelta(0)
        or entry.month < month_of(now)
        or entry.customer_id in hot_customers
        or now - entry.written_at >= write_interval
    )


def headroom_checks(
    held: Mapping[str, HeldTally],
    records: Mapping[tuple[str, str], Sequence[TallyRecord]],
    hot_customers: Collection[str],
    now: datetime,
    write_interval: timedelta,
) -> list[HeldTally]:
    """The held entries whose scenes counted by aggregation since their last write
    (`base`) `plan_bucket` needs: the ones it may hold, with a headroom, that owe a count."""
    out = []
    for entry in held.values():
        found = records.get((entry.customer_id, entry.month), ())
        if entry.headroom is None or owed_by(entry, found) is None:
            continue
        if _holds(entry, hot_customers=hot_customers, now=now, write_interval=write_interval):
            out.append(entry)
    return out


def plan_bucket(  # noqa: PLR0917 - the decision's inputs, each needed
    bucket: int,
    held: Mapping[str, HeldTally],
    records: Mapping[tuple[str, str], Sequence[TallyRecord]],
    upto: datetime | None,
    hot_customers: Collection[str],
    now: datetime,
    write_interval: timedelta,
    held_bytes: int = 0,
    scenes: Mapping[str, int] | None = None,
    touched: Mapping[tuple[str, str], datetime] | None = None,
) -> BucketPlan:
    """Decide, per customer-month with new records or a held entry, write now or hold.
    `held_bytes`: the stored size of `held` (the plan's size starts there: an upper bound,
    since the months written now leave it, cheap to keep). `scenes`: by key, the scenes
    counted by aggregation since each `headroom_checks` entry's last write. `touched`: the
    newest shard change of each month of the bucket the fold is writing anyway (its records
    are counted with it, up to that change at least: a late record touches a shard)."""
    plan = BucketPlan()
    touched = touched or {}
    by_key = {f"{c}_{m}": (c, m) for c, m in (*records, *touched)}
    by_key.update({key: (h.customer_id, h.month) for key, h in held.items()})
    for key, (customer_id, month) in sorted(by_key.items()):
        found = tuple(records.get((customer_id, month), ()))
        entry = held.get(key)
        owed = owed_by(entry, found, touched.get((customer_id, month)))
        pending = bool(found) or (entry is not None and not entry.empty) or owed is not None
        bound = upto if upto is not None else (entry.upto if entry is not None else None)
        if entry is not None and _holds(
            entry, hot_customers=hot_customers, now=now, write_interval=write_interval
        ):
            values = add_values(entry.values, found) if found else entry.values
            counted = int(values[SCENES]) + (scenes or {}).get(key, 0)
            if entry.headroom is None or counted < entry.headroom:
                if (found or owed is not None) and bound is not None:
                    entry = replace(entry, values=values, upto=bound, owed=owed)
                    plan.months_held += 1
                plan.held[key] = entry
                continue
        elif not pending:
            continue  # nothing held, nothing owed: forget it (the next record writes)
        if bound is not None:
            tally = Tally(found, bound, held=entry, bucket=bucket, owed=owed)
            plan.writes.setdefault(customer_id, {})[month] = tally
        elif entry is not None:
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
            plan.held[key] = replace(tally.held, values=values, upto=tally.upto, owed=tally.owed)
            continue
        fold = by_month.get(month)
        # Counted up to the tally's bound: a flag's cover beyond it is still owed.
        owed = tally.owed if tally.owed is not None and tally.owed > tally.upto else None
        keep = (write_interval > timedelta(0) and month >= month_of(now)) or owed is not None
        if not keep:
            continue
        base = fold.tally_upto if fold is not None else None
        fresh = HeldTally(
            customer_id,
            month,
            base=base,
            upto=base if base is not None else tally.upto,
            values=ZERO,
            headroom=fold.headroom if fold is not None else None,
            written_at=now,
            owed=owed,
        )
        size = held_size(fresh)
        if len(plan.held) >= held_max or plan.size + size > HELD_MAX_BYTES:
            # The map is full: this month is written by every fold that changes it, and what it
            # still owes keeps the bucket's records watermark before its flags.
            if owed is None:
                continue
            still = [
                r.recorded_at
                for r in tally.records
                if r.flag and r.recorded_at + FLAG_COVER > tally.upto
            ]
            if still:
                plan.pins.append(min(still))
                continue
            # Owed from an earlier fold's flags, which no scan reads again: the entry stays,
            # past the cap (the size cap leaves a fifth of a document's 1 MiB for this).
        plan.size += size
        plan.held[key] = fresh
    return ok
