"""The recount: a customer-month counted again from its records, compared with its summary and
corrected; and the month close, which recounts every customer-month of a month that ended.

It counts the records at or before the summary's bound (aggregation queries): exactly what the
invariant promises, so a difference means a record became visible after the fold passed it, or
records were deleted by hand. It replaces the sums in one guarded commit with the customer's
counters (through `mirrored_*`) and logs an ERROR naming the customer, month and both values."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

from functions.fold import plan
from functions.fold.customer import Run, commit_customer, guarded
from functions.fold.ports import (
    AlertPublisher,
    CustomerState,
    FoldCounts,
    FoldRepository,
    Snapshot,
)
from shared import logs
from shared.counters import Sums, split_counter_doc_id
from shared.times import month_of, next_month, previous_month

PAGE: Final = 200
"""Summaries recounted per page (in parallel within a page)."""


@dataclass(frozen=True, slots=True)
class Recounted:
    """One customer-month's recount: its summary's sums and its records' sums."""

    customer_id: str
    month: str
    summary: Sums
    records: Sums
    corrected: bool

    @property
    def differs(self) -> bool:
        """The summary did not hold exactly its records."""
        return not self.summary.same_as(self.records)


def _changes(
    repo: FoldRepository, customer_id: str, month: str, close: bool, seen: list[Recounted]
) -> Callable[[CustomerState], Mapping[str, plan.MonthChange]]:
    def changes(state: CustomerState) -> Mapping[str, plan.MonthChange]:
        summary = state.summaries.get(month)
        bound = plan.bound_of(summary)
        if summary is None or bound is None:
            return {}
        found = repo.count_month(customer_id, month, bound)
        seen[:] = [Recounted(customer_id, month, Sums.from_fields(summary.data), found, False)]
        return {month: plan.MonthChange(recounted=found, close=close)}

    return changes


def recount_one(  # noqa: PLR0917 - one customer-month and its context
    repo: FoldRepository,
    publisher: AlertPublisher,
    customer_id: str,
    month: str,
    run: Run,
    counts: FoldCounts,
    *,
    dry_run: bool = False,
) -> Recounted | None:
    """Recount one customer-month (None: it has no summary, so nothing was counted to check).
    The month is marked closed when it has ended."""
    seen: list[Recounted] = []
    changes = _changes(repo, customer_id, month, month < month_of(run.now), seen)
    if dry_run:
        changes(repo.read_state(customer_id, [month]))
    else:
        commit_customer(
            repo, publisher, customer_id, [month, month_of(run.now)], changes, run, counts
        )
    if not seen:
        return None
    result = seen[0]
    counts.add("months_recounted")
    if result.differs:
        counts.add("recount_corrections")
        logs.error(
            f"recount of {customer_id} {month}: "
            + ", ".join(
                f"{name} {held} in the summary, {added} in its records"
                for name, (held, added) in result.summary.differences(result.records).items()
            )
            + ("" if dry_run else "; corrected"),
            customer=customer_id,
            month=month,
            decision="recount-differs",
            summary=result.summary.as_fields(),
            records=result.records.as_fields(),
        )
        return Recounted(customer_id, month, result.summary, result.records, not dry_run)
    return result


def summaries_of(repo: FoldRepository, month: str, after: str | None = None) -> Iterator[list[str]]:
    """Pages of the customer ids with a summary of `month`."""
    while True:
        ids = repo.month_summaries(month, after, PAGE)
        customers = [split[0] for i in ids if (split := split_counter_doc_id(i)) is not None]
        if customers:
            yield customers
        if len(ids) < PAGE:
            return
        after = ids[-1]


def recount_month(  # noqa: PLR0917 - the command's options
    repo: FoldRepository,
    publisher: AlertPublisher,
    month: str,
    run: Run,
    counts: FoldCounts,
    customer_id: str | None = None,
    *,
    dry_run: bool = False,
) -> list[Recounted]:
    """Recount `month` on demand (`blueprint usage recount`): every customer-month with a
    summary, or one customer's; each corrected unless `dry_run`."""
    pages = [[customer_id]] if customer_id is not None else summaries_of(repo, month)
    return [
        found
        for page in pages
        for cid in page
        if (found := recount_one(repo, publisher, cid, month, run, counts, dry_run=dry_run))
    ]


def close_months(  # noqa: PLR0917 - run_fold's context
    repo: FoldRepository,
    publisher: AlertPublisher,
    run: Run,
    counts: FoldCounts,
    stored: Snapshot | None,
    workers: int,
    deadline: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Close the oldest ended month not closed yet: recount each of its summaries, mark them
    closed, then record the month as closed. Resumable: a fold that runs out of time, or
    whose recount of a customer failed, leaves a cursor for the next fold. `stored`: the
    close state as the fold read it at its start (its writes are guarded by that read)."""
    data = dict(stored.data) if stored is not None else {}
    token = stored.update_time if stored is not None else None
    closed = data.get("closed_through")
    month = next_month(closed) if isinstance(closed, str) else previous_month(month_of(run.now))
    if month >= month_of(run.now):
        return
    after = data.get("after") if data.get("closing") == month else None
    for page in summaries_of(repo, month, after if isinstance(after, str) else None):
        if deadline is not None and clock() > deadline:
            counts.stopped_by_deadline = True
            return

        def one(customer_id: str) -> bool:
            return guarded(
                customer_id,
                "recount",
                run.run_id,
                counts,
                lambda: recount_one(repo, publisher, customer_id, month, run, counts),
                skip_refused=True,
            )

        with ThreadPoolExecutor(workers) as pool:
            if not all(pool.map(one, page)):
                return  # the next fold takes this page again
        cursor = {"closing": month, "after": f"{page[-1]}_{month}"}
        token = repo.set_close({**data, **cursor}, token)
        if token is None:
            return  # another fold is closing it too
    if repo.set_close({"closed_through": month, "closing": None, "after": None}, token):
        counts.closed_month = month
        logs.info(f"month {month} closed: every customer-month recounted", month=month)
