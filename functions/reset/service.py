"""The monthly quota reset run: pages of customers, each reset once per period, resumable.

Design (docs/reset.md, docs/counters.md): customers are read in pages ordered by document id.
Each customer still counting a month before the target period gets `quota_period`,
`quota_reset_at` and `scenes_generated_this_month` = the period's count so far: the scenes the
fold's month summary already holds for the customer (0 when it has none), so a scene of the new
month counted before the reset reached the customer is not lost. A document from before the
suite that already counted the period keeps its count (`quota.plan_reset`). Every write carries
the `update_time` precondition of its read: a commit landing in between fails only that
customer's write, which is read again (with its month summary) and retried. The audit document
`quota_resets/{YYYY-MM}` keeps a cursor after every fully handled page, so a run stopped by its
deadline (or killed) resumes where it stopped when the message is delivered again; customers
already reset are skipped, so nobody is reset twice.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Final

from functions.reset.plan import Page, plan_customer
from functions.reset.ports import (
    AuditState,
    CustomerDoc,
    ResetIncompleteError,
    ResetIssue,
    ResetRepository,
    ResetSummary,
    ResetWrite,
)
from shared import logs
from shared.times import MONTH_RE, month_of

PAGE_SIZE: Final = 500
"""Customers per page; also the writes per BatchWrite call (Firestore allows 500)."""
MAX_ATTEMPTS: Final = 6
"""Writes of one customer (first try included) before the page is given up for redelivery."""
ISSUE_SAMPLES: Final = 50
"""Issues (invalid documents, errors) listed in the audit document per pass; all are counted."""
DEADLINE_MARGIN_SECONDS: Final = 60.0
"""Stop this long before the function's timeout, so the last page and the audit finish."""

_OK: Final = 0


def _retry_one(
    repo: ResetRepository,
    write: ResetWrite,
    period: str,
    page: Page,
    *,
    dry_run: bool,
    as_of: datetime | None,
    month_count: int = 0,
) -> bool:
    """Read a customer whose write failed again and retry; False if it keeps failing."""
    for attempt in range(1, MAX_ATTEMPTS):
        page.counts["retried"] += 1
        if attempt > 1:  # the first retry goes at once: its read is fresh, the window short
            time.sleep(min(0.02 * 2**attempt, 1.0))
        doc = repo.get(write.customer_id)
        if doc is None:  # deleted since the read: nothing to reset
            page.counts["skipped"] += 1
            return True
        # A kept count stays kept: the write that moved the document since the run was asked
        # for does not make its counter count another month.
        again = plan_customer(
            doc,
            period,
            page,
            first_look=False,
            as_of=as_of,
            keep=write.kept,
            month_count=max(month_count, repo.month_counts([doc.id], period).get(doc.id, 0)),
        )
        if again is None:  # reset meanwhile (another run) or now unusable: counted by the plan
            return True
        if dry_run or repo.write_resets([again])[0] == _OK:
            page.counts["reset"] += 1
            return True
    return False


def _handle_page(
    repo: ResetRepository,
    docs: Sequence[CustomerDoc],
    period: str,
    *,
    dry_run: bool,
    as_of: datetime | None = None,
) -> tuple[Page, bool]:
    """Reset one page; returns its counts and whether every customer of it was handled (one
    whose write kept failing is listed as `busy`; the pages after it go on all the same)."""
    page = Page()
    counts = repo.month_counts([d.id for d in docs], period)
    for doc in docs:
        write = plan_customer(
            doc, period, page, first_look=True, as_of=as_of, month_count=counts.get(doc.id, 0)
        )
        if write is not None:
            page.writes.append(write)
    if dry_run:
        page.counts["reset"] += len(page.writes)
        return page, True
    statuses = repo.write_resets(page.writes) if page.writes else []
    handled = True
    for write, status in zip(page.writes, statuses, strict=True):
        if status == _OK:
            page.counts["reset"] += 1
        elif not _retry_one(
            repo,
            write,
            period,
            page,
            dry_run=dry_run,
            as_of=as_of,
            month_count=counts.get(write.customer_id, 0),
        ):
            handled = False
            detail = f"its write kept failing ({MAX_ATTEMPTS} attempts); the next delivery retries"
            page.issues.append(ResetIssue(write.customer_id, "busy", detail))
    return page, handled


def _record_page(
    repo: ResetRepository,
    summary: ResetSummary,
    page: Page,
    docs: Sequence[CustomerDoc],
    *,
    next_cursor: str | None,
    samples: int,
    dry_run: bool,
) -> ResetSummary:
    """Log the page's issues, add its counts to the audit (moving the cursor) and the summary."""
    kept = page.issues[: max(0, ISSUE_SAMPLES - samples)]
    _log_issues(summary.period, page.issues)
    if not dry_run:
        counts = {k: v for k, v in page.counts.items() if v}
        repo.record_progress(summary.period, counts, next_cursor, [i.as_dict() for i in kept])
    c = page.counts
    return replace(
        summary,
        seen=summary.seen + len(docs),
        cursor=next_cursor,
        pages=summary.pages + 1,
        reset=summary.reset + c["reset"],
        skipped=summary.skipped + c["skipped"],
        unlimited=summary.unlimited + c["unlimited"],
        invalid=summary.invalid + c["invalid"],
        kept=summary.kept + c["kept"],
        errors=summary.errors + c["errors"],
        retried=summary.retried + c["retried"],
        issues=summary.issues + tuple(kept),
    )


@contextlib.contextmanager
def _closing(stream: Iterator[CustomerDoc]) -> Iterator[None]:
    """End a query stream when the run ends, not whenever it is collected."""
    try:
        yield
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _check_arguments(period: str, as_of: datetime, page_size: int) -> None:
    if not MONTH_RE.match(period):
        raise ValueError(f"period={period!r}: expected a month as YYYY-MM")
    if period > month_of(as_of):
        raise ValueError(
            f"period={period!r}: expected a month not after {month_of(as_of)}; "
            "a future month cannot be reset"
        )
    if not 1 <= page_size <= PAGE_SIZE:
        raise ValueError(f"page_size={page_size}: expected 1..{PAGE_SIZE}")


def run_reset(
    repo: ResetRepository,
    period: str,
    now: datetime,
    *,
    dry_run: bool = False,
    deadline: float | None = None,
    progress: Callable[[ResetSummary], None] | None = None,
    page_size: int = PAGE_SIZE,
    run_id: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    as_of: datetime | None = None,
) -> ResetSummary:
    """Reset every customer not yet reset in `period` (YYYY-MM); see the module doc.

    `deadline` is a `clock()` (time.monotonic) value after which no new page starts: the run
    records its cursor and returns with `complete=False` (the function then raises so Pub/Sub
    delivers again and the next run continues). `dry_run` reads everything, writes nothing (not
    even the audit document) and counts what a run would reset. `progress` gets the running
    summary after each page. `as_of` is when the run was asked for (the schedule message's
    publish time; default `now`): a month after its month is refused, and a document from before
    the suite last written in `period` before it keeps its count so far (`quota.plan_reset`).
    Never raises for a bad customer document; raises TransientError subclasses when Firestore
    fails, after recording the progress made.
    """
    as_of = as_of or now
    _check_arguments(period, as_of, page_size)
    started = clock()
    run_info = {"run_id": run_id, "started_at": now, "dry_run": dry_run}
    state = (
        AuditState(None, finished=False, samples=0) if dry_run else repo.start_run(period, run_info)
    )
    summary = ResetSummary(period=period, dry_run=dry_run, resumed_from=state.cursor)
    cursor = state.cursor
    busy = False
    # One stream ordered by id, cut into pages; the next page is read while the current one is
    # written. (A query per page would do too, but the emulator answers each in time linear in
    # the collection: 100k customers would cost 200 full scans.)
    stream = repo.scan(cursor)

    def next_page() -> list[CustomerDoc]:
        return list(itertools.islice(stream, page_size))

    # The reader thread ends (exit order) before the stream is closed.
    with _closing(stream), ThreadPoolExecutor(1, thread_name_prefix="reset-read") as reader:
        ahead: Future[list[CustomerDoc]] | None = reader.submit(next_page)
        while ahead is not None:
            if deadline is not None and clock() >= deadline:
                ahead.cancel()
                summary = replace(summary, stopped_by_deadline=True)
                break
            docs = ahead.result()
            ahead = None
            if not docs:
                summary = replace(summary, complete=True)
                break
            if len(docs) == page_size:
                ahead = reader.submit(next_page)
            page, handled = _handle_page(repo, docs, period, dry_run=dry_run, as_of=as_of)
            busy = busy or not handled
            # A busy customer never stalls the pages after it: the cursor moves on, and the
            # pass ends by starting over (below), so the next delivery retries it.
            next_cursor = docs[-1].id
            listed = state.samples + len(summary.issues)
            summary = _record_page(
                repo, summary, page, docs, next_cursor=next_cursor, samples=listed, dry_run=dry_run
            )
            summary = replace(summary, elapsed_seconds=clock() - started)
            if progress is not None:
                progress(summary)
            cursor = next_cursor
            if ahead is None:  # a short page was the last one
                summary = replace(summary, complete=True)
    if busy:  # complete or stopped by the deadline: either way the next delivery starts over
        if not dry_run:
            repo.record_progress(period, {}, None, [])  # a new pass: skips the customers done
        summary = replace(summary, complete=False, cursor=None)
        _log_summary(summary)
        raise ResetIncompleteError(
            f"quota reset {period}: some customers kept failing to write ({MAX_ATTEMPTS} "
            "attempts each, listed as busy); deliver again to retry them"
        )
    summary = replace(summary, elapsed_seconds=clock() - started)
    if summary.complete and not dry_run:
        repo.finish(period, {**run_info, **summary.log_fields()})
    _log_summary(summary)
    return summary


def _log_issues(period: str, issues: list[ResetIssue]) -> None:
    for issue in issues:
        (logs.error if issue.kind == "error" else logs.warning)(
            f"quota reset {period}: customer {issue.customer_id}: {issue.detail}",
            customer=issue.customer_id,
            period=period,
            issue=issue.kind,
        )


def _log_summary(summary: ResetSummary) -> None:
    verb = "would reset" if summary.dry_run else "reset"
    state = "complete" if summary.complete else "incomplete (deliver again to continue)"
    logs.info(
        f"quota reset {summary.period}: {verb} {summary.reset} customers, skipped "
        f"{summary.skipped}, errors {summary.errors}, {state}",
        **summary.log_fields(),
    )


def raise_if_incomplete(summary: ResetSummary) -> None:
    """Make Pub/Sub deliver again when a run stopped before the end."""
    if not summary.complete:
        raise ResetIncompleteError(
            f"quota reset {summary.period}: stopped by the deadline after {summary.seen} "
            f"customers (cursor {summary.cursor!r}); the next delivery continues from there"
        )


def function_deadline(timeout_seconds: float, clock: Callable[[], float] = time.monotonic) -> float:
    """The deadline of a run inside a function with this timeout (a safety margin before it)."""
    return clock() + max(timeout_seconds - DEADLINE_MARGIN_SECONDS, timeout_seconds / 2)
