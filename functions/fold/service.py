"""One fold: find what changed per bucket, fold each changed customer once, publish alerts.

Steps (docs/counters.md):
1. finish alert markers an earlier run left pending (publish failed, or its run died);
2. per bucket b (in parallel): scan the shards with `fold_bucket == b` and `updated_at >
   watermark_b - overlap`, oldest first, in pages, up to a cap; and the flags of the months
   counted from the records (`fold_bucket == b`, `records_watermark_b < recorded_at <= T`),
   read at T, the server time of the watermarks' read (exact: no overlap needed); each held
   month with an alert ahead that owes a count gets its scenes counted (aggregation);
3. group the changed shards by customer; per customer (in parallel): read the customer and its
   summaries in one round trip, count its written months' records by aggregation after their
   summaries' bounds (`functions.fold.customer`), plan (`functions.fold.planner`), ONE atomic
   guarded commit
   (summaries + customer fields + new alert markers), re-read and re-plan on a conflict; then
   publish the new alerts (marker, publish, mark published);
4. move each bucket's watermarks (once per fold): to the newest shard seen and to T, or, where
   a customer failed, to just before its oldest shard and not at all for records, so the next
   fold retries it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from functions.fold import holding, planner
from functions.fold.alerts import claimable, finish_pending_alerts, publish_alert
from functions.fold.customer import fold_customer, scenes_since
from functions.fold.ports import (
    AlertPublisher,
    FoldCounts,
    FoldRepository,
    Shard,
    Tally,
    TallyRecord,
    Watermark,
)
from shared import logs
from shared.errors import is_permanent
from shared.firestore_values import plain_value

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TICK: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class FoldConfig:
    """Knobs of a fold (from the settings)."""

    buckets: int = 16
    overlap: timedelta = timedelta(seconds=5)
    page_size: int = 500
    max_shards: int = 100_000
    workers: int = 8
    alert_lease: timedelta = timedelta(seconds=120)
    records_lag: timedelta = timedelta(seconds=2)
    """Records are counted up to `upto` = this long before the read time T, and read at T.
    The emulator stamps commits in whole milliseconds, earlier than they really commit: a
    record stamped before `upto` may commit just after it, so a read at `upto` itself can miss
    it for good (seen: 1 of 300 under overlapping folds). Read at T, every record stamped up
    to `upto` is there (production stamps the commit time itself). It only delays a
    record's count by this long."""
    write_interval: timedelta = timedelta(0)
    """How long a quiet customer-month's new records may be held in its bucket's state
    before its summary and customer are written again (`functions.fold.holding`); 0: every
    fold writes every changed month."""
    held_max: int = 2000
    """Held customer-months per bucket at most (the state document stays far below 1 MiB)."""


@dataclass(slots=True)
class _Bucket:
    watermark: Watermark
    newest: datetime | None = None
    capped: bool = False
    records_upto: datetime | None = None
    """Every records-counted record of the bucket up to this is in this fold's scan."""
    records_seen: int = 0


def _microseconds(value: datetime) -> datetime:
    """`value` at Firestore's precision (read times must be whole microseconds)."""
    return datetime(*value.utctimetuple()[:6], value.microsecond, tzinfo=UTC)


def _cap(config: FoldConfig) -> int:
    """Shards (and records) one fold reads per bucket at most."""
    return max(1, config.max_shards // max(1, config.buckets))


def _scan_shards(repo: FoldRepository, bucket: _Bucket, config: FoldConfig) -> list[Shard]:
    """The bucket's shards changed since its watermark (minus the overlap), up to the cap."""
    since = (bucket.watermark.value or EPOCH) - config.overlap
    got: list[Shard] = []
    for page in repo.scan_bucket(bucket.watermark.bucket, since, config.page_size):
        got.extend(page)
        if len(got) >= _cap(config):
            bucket.capped = True
            break
    bucket.newest = max((s.updated_at for s in got), default=None)
    return got


def _scan_records(
    repo: FoldRepository, bucket: _Bucket, config: FoldConfig, upto: datetime | None
) -> list[TallyRecord]:
    """The bucket's records-counted records after its records watermark and up to `upto`;
    past the cap, up to the last commit time read (all of its records, then stop)."""
    if upto is None:
        return []
    got: list[TallyRecord] = []
    read_time = upto + config.records_lag
    pages = repo.scan_records(
        bucket.watermark.bucket, bucket.watermark.records, upto, config.page_size, read_time
    )
    bucket.records_upto = upto
    for page in pages:
        got.extend(page)
        if len(got) >= _cap(config):
            bucket.capped = True
            last = got[-1].recorded_at
            bucket.records_upto = last
            for more in pages:
                same = [r for r in more if r.recorded_at == last]
                got.extend(same)
                if len(same) < len(more):
                    break
            break
    bucket.records_seen = len(got)
    return got


def run_fold(
    repo: FoldRepository,
    publisher: AlertPublisher,
    *,
    now: datetime,
    run_id: str,
    config: FoldConfig = FoldConfig(),
    server_time: Any = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FoldCounts:
    """Fold every customer-month that changed since the watermarks (see module doc).

    `deadline` (a `clock()` value): no new customer is started after it; what is left keeps
    the watermark back, so the next fold does it.
    """
    counts = FoldCounts(buckets=config.buckets)
    finish_pending_alerts(
        repo, publisher, now=now, run_id=run_id, lease=config.alert_lease, counts=counts
    )
    marks = repo.read_watermarks(range(config.buckets))
    buckets = {w.bucket: _Bucket(w) for w in marks}

    read_time = next((w.read_time for w in marks if w.read_time is not None), None)
    upto = _microseconds(read_time) - config.records_lag if read_time is not None else None
    with ThreadPoolExecutor(config.workers) as pool:
        scanned = list(pool.map(lambda b: _scan_shards(repo, b, config), buckets.values()))
        tallied = list(pool.map(lambda b: _scan_records(repo, b, config, upto), buckets.values()))
    by_customer: dict[str, dict[str, dict[str, Shard]]] = defaultdict(lambda: defaultdict(dict))
    for shards in scanned:
        counts.shards_scanned += len(shards)
        for shard in shards:
            kept = by_customer[shard.customer_id][shard.month].get(shard.shard)
            if kept is None or shard.updated_at > kept.updated_at:
                by_customer[shard.customer_id][shard.month][shard.shard] = shard
    records: dict[int, dict[tuple[str, str], list[TallyRecord]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for found in tallied:
        counts.records_scanned += len(found)
        for record in found:
            records[record.bucket][record.customer_id, record.month].append(record)
    hot = set(by_customer)
    touched = _touched(by_customer)
    scenes = _headroom_scenes(repo, buckets, records, hot, now, config, counts)
    plans = {
        number: holding.plan_bucket(
            number,
            bucket.watermark.held,
            records.get(number, {}),
            bucket.records_upto,
            hot,
            now,
            config.write_interval,
            bucket.watermark.held_bytes,
            scenes,
            touched.get(number),
        )
        for number, bucket in buckets.items()
    }
    tallies: dict[str, dict[str, Tally]] = defaultdict(dict)
    for plan in plans.values():
        counts.months_held += plan.months_held
        for customer_id, months in plan.writes.items():
            tallies[customer_id].update(months)
            by_customer[customer_id]

    counts.capped = any(b.capped for b in buckets.values())
    counts.customers = len(by_customer)
    counts.customer_months = sum(
        len({*months, *tallies.get(cid, {})}) for cid, months in by_customer.items()
    )

    def fold_one(
        item: tuple[str, Mapping[str, Mapping[str, Shard]]],
    ) -> tuple[str, bool, planner.CustomerPlan | None]:
        customer_id, months = item
        if deadline is not None and clock() > deadline:
            counts.stopped_by_deadline = True
            return customer_id, False, None
        try:
            plan = fold_customer(
                repo,
                publisher,
                customer_id,
                {m: list(s.values()) for m, s in months.items()},
                tallies=tallies.get(customer_id, {}),
                now=now,
                run_id=run_id,
                server_time=server_time,
                counts=counts,
            )
        except Exception as exc:  # one customer's failure must not stop the others
            counts.add("failed_customers")
            counts.failures.append(f"{customer_id}: {type(exc).__name__}: {exc}"[:300])
            if is_permanent(exc):
                # A retry cannot fix it (Firestore refused the data): recorded in the log for a
                # person, and not allowed to hold its bucket's watermark back for ever.
                logs.error(
                    f"fold of customer {customer_id} refused for good, skipped: {exc}",
                    customer=customer_id,
                    run_id=run_id,
                    decision="fold-refused",
                )
                return customer_id, True, None
            logs.error(
                f"fold of customer {customer_id} failed; the next fold retries it: {exc}",
                customer=customer_id,
                run_id=run_id,
            )
            return customer_id, False, None
        return customer_id, True, plan

    with ThreadPoolExecutor(config.workers) as pool:
        folded = list(pool.map(fold_one, by_customer.items()))
    outcomes = {customer_id: ok for customer_id, ok, _ in folded}
    records_held: set[int] = set()
    for customer_id, ok, written in folded:
        for number, bucket_plan in plans.items():
            if customer_id in bucket_plan.writes:
                folds = (written.months if written is not None else ()) if ok else None
                if not holding.after_write(
                    bucket_plan, customer_id, folds, now, config.write_interval, config.held_max
                ):
                    records_held.add(number)
    _move_watermarks(repo, buckets, by_customer, plans, outcomes, records_held, counts)
    return counts


def _move_watermarks(  # noqa: PLR0917 - the fold's own state, private
    repo: FoldRepository,
    buckets: Mapping[int, _Bucket],
    by_customer: Mapping[str, Mapping[str, Mapping[str, Shard]]],
    plans: Mapping[int, holding.BucketPlan],
    outcomes: Mapping[str, bool],
    records_held: set[int],
    counts: FoldCounts,
) -> None:
    """Each bucket's new watermarks and held tallies, set once (one guarded write): every
    record up to the records watermark is in its summary or held. A bucket with a customer
    the fold left for later and no held entry to keep its records in (`records_held`) keeps
    its records watermark (the next fold reads them again; each summary's `shards.tally`
    stamp keeps them from counting twice), and moves its shard watermark only to just
    before that customer's oldest shard. When another fold wrote the state meanwhile, its
    records watermark and held tallies stand (it read the same state and scanned from the
    same watermark: what this fold held, it counted too) and only the shard watermark moves."""
    oldest_unfolded: dict[int, datetime] = {}
    for customer_id, months in by_customer.items():
        if outcomes.get(customer_id):
            continue
        for shards in months.values():
            for shard in shards.values():
                first = oldest_unfolded.get(shard.bucket)
                if first is None or shard.updated_at < first:
                    oldest_unfolded[shard.bucket] = shard.updated_at
    for number, bucket in buckets.items():
        target = bucket.newest
        if number in oldest_unfolded:
            target = oldest_unfolded[number] - _TICK
        target = _later(target, bucket.watermark.value)
        records_target = None
        if bucket.records_seen and number not in records_held:
            records_target = _later(
                _records_upto(bucket, plans.get(number)), bucket.watermark.records
            )
        # The held map moves with the records watermark: what this fold held is in it only if
        # the watermark passes those records (else the next fold reads them again).
        held = plans[number].held if number in plans and number not in records_held else None
        if held == dict(bucket.watermark.held):
            held = None
        if target is None and records_target is None and held is None:
            continue
        if not repo.set_watermark(bucket.watermark, target, records_target, held):
            # Another fold wrote it meanwhile: its records part stands; keep the later shard
            # watermark (read again, once).
            [fresh] = repo.read_watermarks([number])
            later = _later(target, fresh.value)
            if later is not None:
                repo.set_watermark(fresh, later)
        counts.add("watermarks_moved")


def _touched(
    by_customer: Mapping[str, Mapping[str, Mapping[str, Shard]]],
) -> dict[int, dict[tuple[str, str], datetime]]:
    """By bucket, by customer-month: the newest late record's shard touch this fold read."""
    out: dict[int, dict[tuple[str, str], datetime]] = defaultdict(dict)
    for customer_id, months in by_customer.items():
        for month, shards in months.items():
            for shard in (s for s in shards.values() if s.touched):
                newest = out[shard.bucket].get((customer_id, month))
                if newest is None or shard.updated_at > newest:
                    out[shard.bucket][customer_id, month] = shard.updated_at
    return out


def _headroom_scenes(  # noqa: PLR0917 - run_fold's state, private
    repo: FoldRepository,
    buckets: Mapping[int, _Bucket],
    records: Mapping[int, Mapping[tuple[str, str], Sequence[TallyRecord]]],
    hot: set[str],
    now: datetime,
    config: FoldConfig,
    counts: FoldCounts,
) -> dict[str, int]:
    """By held key: the scenes counted by aggregation since the month's last write, for the
    held months with an alert ahead that owe a count (`holding.headroom_checks`), in parallel."""
    checks = [
        (entry, bucket.records_upto)
        for number, bucket in buckets.items()
        if bucket.records_upto is not None
        for entry in holding.headroom_checks(
            bucket.watermark.held, records.get(number, {}), hot, now, config.write_interval
        )
    ]
    if not checks:
        return {}
    with ThreadPoolExecutor(config.workers) as pool:
        counted = list(pool.map(lambda check: scenes_since(repo, *check), checks))
    counts.headroom_counts += len(checks)
    return {entry.key: n for (entry, _), n in zip(checks, counted, strict=True)}


def _records_upto(bucket: _Bucket, plan: holding.BucketPlan | None) -> datetime | None:
    """How far the bucket's records watermark may move: up to the scan's bound, but before
    a flag whose cover a month owes and found no room to keep (`BucketPlan.pins`)."""
    upto = bucket.records_upto
    if plan is not None and plan.pins and upto is not None:
        upto = min(upto, min(plan.pins) - _TICK)
    return upto


def _later(mine: datetime | None, theirs: datetime | None) -> datetime | None:
    """`mine` when it is later than `theirs` (or theirs is unset), else None (keep theirs)."""
    if mine is None:
        return None
    return mine if theirs is None or plain_value(theirs) < mine else None


__all__ = ["FoldConfig", "claimable", "fold_customer", "publish_alert", "run_fold"]
