"""One fold: the records committed since the last fold -> month summaries, customer counters,
quota alerts; then, once a month has ended, its close (docs/counters.md).

1. Finish alert markers an earlier run left pending.
2. Read every bucket's watermark W_b; the read's server time is T, and U = T - lag.
3. Per bucket, in parallel: the records with `W_b < recorded_at <= U`, read at T.
4. Per customer, in parallel: read its document and summaries, add the records above each
   summary's bound, set the bound to U, and write summaries, counters and new alert markers in
   ONE commit guarded by the update times read (a failed guard: read again, plan again).
5. Move W_b to U when every customer of bucket b committed; otherwise leave it (the next fold
   scans the range again, and the bounds keep it from counting twice).
6. The first fold after a month ends recounts that month (`functions.fold.recount`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.fold import plan
from functions.fold.alerts import finish_pending_alerts
from functions.fold.customer import Run, commit_customer, guarded
from functions.fold.ports import AlertPublisher, FoldCounts, FoldRepository, NewRecord
from functions.fold.recount import close_months
from shared.errors import TransientError
from shared.times import month_of


@dataclass(frozen=True, slots=True)
class FoldConfig:
    """Knobs of a fold (from the settings)."""

    buckets: int = 16
    lag: timedelta = timedelta(seconds=5)  # a record stamped at or before T - lag is in by T
    page_size: int = 500
    max_records: int = 100_000
    workers: int = 8
    alert_lease: timedelta = timedelta(seconds=120)


def _whole_microseconds(value: datetime) -> datetime:
    """`value` at Firestore's precision (read times must be whole microseconds)."""
    return datetime(*value.utctimetuple()[:6], value.microsecond, tzinfo=UTC)


def _scan(  # noqa: PLR0917 - private, run_fold's state
    repo: FoldRepository,
    bucket: int,
    after: datetime | None,
    upto: datetime,
    read_time: Any,
    config: FoldConfig,
) -> tuple[list[NewRecord], datetime, bool]:
    """The bucket's records in (after, upto], and the bound they are complete up to: `upto`,
    or past the cap the last commit time read (all of its records, then stop)."""
    cap = max(1, config.max_records // config.buckets)
    got: list[NewRecord] = []
    pages = repo.scan_records(bucket, after, upto, config.page_size, read_time)
    for page in pages:
        got.extend(page)
        if len(got) >= cap:
            last = got[-1].recorded_at
            for more in pages:
                same = [r for r in more if r.recorded_at == last]
                got.extend(same)
                if len(same) < len(more):
                    break
            return got, last, True
    return got, upto, False


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
    """One fold (see module doc). `deadline` (a `clock()` value): no customer is started after
    it; what is left keeps its bucket's watermark back, so the next fold does it."""
    counts = FoldCounts(buckets=config.buckets)
    run = Run(now, run_id, server_time)
    finish_pending_alerts(
        repo, publisher, now=now, run_id=run_id, lease=config.alert_lease, counts=counts
    )
    close_state = repo.read_close()
    closed = close_state.data.get("closed_through") if close_state else None
    closed_through = closed if isinstance(closed, str) else None
    marks = repo.read_watermarks(range(config.buckets))
    read_time = next((w.read_time for w in marks if w.read_time is not None), None)
    if read_time is None:
        raise TransientError("the watermarks' read returned no server time; the next fold retries")
    upto = _whole_microseconds(read_time) - config.lag
    with ThreadPoolExecutor(config.workers) as pool:
        scans = list(
            pool.map(lambda w: _scan(repo, w.bucket, w.value, upto, read_time, config), marks)
        )
    records: dict[str, dict[str, list[NewRecord]]] = defaultdict(lambda: defaultdict(list))
    bounds: dict[str, dict[str, datetime]] = defaultdict(dict)
    buckets_of: dict[str, set[int]] = defaultdict(set)
    for mark, (found, bound, capped) in zip(marks, scans, strict=True):
        counts.records_scanned += len(found)
        counts.capped |= capped
        for record in found:
            records[record.customer_id][record.month].append(record)
            bounds[record.customer_id][record.month] = bound
            buckets_of[record.customer_id].add(mark.bucket)
    counts.customers = len(records)
    counts.customer_months = sum(len(m) for m in records.values())
    current = month_of(now)

    def fold_one(customer_id: str) -> bool:
        if deadline is not None and clock() > deadline:
            counts.stopped_by_deadline = True
            return False
        found, month_bounds = records[customer_id], bounds[customer_id]
        return guarded(
            customer_id,
            "fold",
            run_id,
            counts,
            lambda: commit_customer(
                repo,
                publisher,
                customer_id,
                sorted({*found, current}),
                lambda state: plan.changes_from_records(state, found, month_bounds, closed_through),
                run,
                counts,
            ),
        )

    with ThreadPoolExecutor(config.workers) as pool:
        done = dict(zip(records, pool.map(fold_one, list(records)), strict=True))
    held_back = {b for customer_id, ok in done.items() if not ok for b in buckets_of[customer_id]}
    for mark, (found, bound, _) in zip(marks, scans, strict=True):
        if not found or mark.bucket in held_back:
            continue  # an empty range needs no write: the next fold reads it again for free
        if repo.set_watermark(mark, bound):
            counts.add("watermarks_moved")
        # else: another fold moved it meanwhile, from the same or a later scan: it stands.
    close_months(repo, publisher, run, counts, close_state, config.workers, deadline, clock)
    return counts
