"""The monthly quota reset: decode the schedule message, reset each customer once per period.

Design (docs/reset.md, docs/counters.md): customers are read in pages ordered by document id;
each customer whose counter period is before the target period gets
`scenes_generated_this_month = quota.reset_value(...)` (the events of the period already counted
in `scene_counts_by_month`, never a blind 0), `quota_period` and `quota_reset_at`, in a
non-atomic BatchWrite where every write carries the `update_time` precondition of its read. A
usage commit landing in between fails only that customer's write; it is read again and retried.
The audit document `quota_resets/{YYYY-MM}` keeps a cursor after every fully handled page, so a
run stopped by its deadline (or killed) resumes where it stopped when the message is delivered
again; customers already reset are skipped, so nobody is reset twice.

Public API (the operators' CLI uses it): `run_reset`, `ResetSummary`, `ResetProgress` (alias),
`FirestoreResetRepository`, `default_repository`, `decode_schedule_event`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from shared import logs, queries, quota
from shared.errors import FieldError, TransientError
from shared.firestore_values import plain_value
from shared.models import Customer, document_errors, field_errors
from shared.times import MONTH_RE, month_of
from shared.types import Month, NonNegInt, UtcDatetime

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent

PAGE_SIZE: Final = 500
"""Customers per page; also the writes per BatchWrite call (Firestore allows 500)."""
MAX_ATTEMPTS: Final = 6
"""Writes of one customer (first try included) before the page is given up for redelivery."""
ISSUE_SAMPLES: Final = 50
"""Issues (invalid documents, errors) listed in the audit document per pass; all are counted."""
DEADLINE_MARGIN_SECONDS: Final = 60.0
"""Stop this long before the function's timeout, so the last page and the audit finish."""

_OK: Final = 0


class ResetIncompleteError(TransientError):
    """The run stopped before the end (deadline or repeated write failures): deliver it again."""


# ----------------------------------------------------------------------------------------------
# The schedule message


@dataclass(frozen=True, slots=True)
class ResetRequest:
    """What a delivery of the schedule topic asks for."""

    period: str
    """Month (YYYY-MM) to reset."""
    message_id: str | None
    """Pub/Sub message id (for the logs and the audit)."""
    publish_time: datetime | None
    """When the message was published (the schedule time)."""
    explicit: bool
    """True when the body named the period (a manual run)."""


class ScheduleMessageError(ValueError):
    """The schedule message cannot name a period (permanent: logged and acknowledged)."""


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else None
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def request_from_message(
    message: Mapping[str, Any], event_time: datetime | None = None
) -> ResetRequest:
    """The reset a Pub/Sub message asks for (see `decode_schedule_event`)."""
    message_id = message.get("messageId") or message.get("message_id")
    publish_time = _parse_time(message.get("publishTime") or message.get("publish_time"))
    publish_time = publish_time or event_time
    body: Any = None
    raw = message.get("data")
    if raw:
        try:
            text = base64.b64decode(raw, validate=True).decode() if isinstance(raw, str) else raw
            body = json.loads(text)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            body = None  # a Scheduler body that is not JSON still means "the scheduled month"
    explicit = isinstance(body, Mapping) and body.get("period") is not None
    if explicit:
        assert isinstance(body, Mapping)
        period = body["period"]
        if not isinstance(period, str) or not MONTH_RE.match(period):
            raise ScheduleMessageError(f"period={period!r}: expected a month as YYYY-MM")
        if publish_time is not None and period > month_of(publish_time):
            raise ScheduleMessageError(
                f"period={period!r}: expected a month not after the publish time's "
                f"({month_of(publish_time)}); a future month cannot be reset"
            )
    elif publish_time is not None:
        period = month_of(publish_time)
    else:
        raise ScheduleMessageError(
            "the message has neither a publish time nor a body with a period (YYYY-MM)"
        )
    return ResetRequest(
        period=period,
        message_id=str(message_id) if message_id else None,
        publish_time=publish_time,
        explicit=explicit,
    )


def decode_schedule_event(event: CloudEvent) -> ResetRequest:
    """Period of a `quota-reset-schedule` delivery: `{"period": "YYYY-MM"}` body, else publish time.

    Never from the clock at delivery: a delayed or repeated delivery resets the month it was
    scheduled for. Raises ScheduleMessageError for a message that names no usable period.
    """
    data = event.data
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
        raise ScheduleMessageError("expected a MessagePublishedData body with a message")
    return request_from_message(data["message"], _parse_time(event.get("time")))


# ----------------------------------------------------------------------------------------------
# Storage behind a small Protocol


@dataclass(frozen=True, slots=True)
class CustomerDoc:
    """A customer document as read: id, raw data, and its update time (the precondition)."""

    id: str
    data: Mapping[str, Any]
    update_time: Any


@dataclass(frozen=True, slots=True)
class ResetWrite:
    """One customer's reset: the derived counter value under the read's update time."""

    customer_id: str
    value: int
    period: str
    update_time: Any
    kept: bool = False
    """A document without bookkeeping whose count so far in the period was kept."""


@dataclass(frozen=True, slots=True)
class AuditState:
    """What a run needs from the audit document when it starts."""

    cursor: str | None
    """Last customer id of the fully handled pages of an unfinished pass (None: start over)."""
    finished: bool
    samples: int
    """Issues already listed in the audit document for the current pass."""


class ResetRepository(Protocol):
    """Where customers and the audit document live (Firestore, or a fake in unit tests)."""

    def scan(self, start_after: str | None) -> Iterator[CustomerDoc]:
        """Every customer ordered by id, after `start_after`, streamed (never all in memory)."""

    def get(self, customer_id: str) -> CustomerDoc | None:
        """One customer, read again (None if deleted)."""

    def write_resets(self, writes: Sequence[ResetWrite]) -> list[int]:
        """Apply each write independently; a gRPC status code per write (0 = applied)."""

    def start_run(self, period: str, run: Mapping[str, Any]) -> AuditState:
        """Open (or create) the audit document for a run and return where to resume."""

    def record_progress(
        self, period: str, counts: Mapping[str, int], cursor: str | None, issues: list[Any]
    ) -> None:
        """Add page counts, move the cursor, append issues."""

    def finish(self, period: str, run: Mapping[str, Any]) -> None:
        """Mark the pass finished, clear the cursor, set the exact `customers_reset`."""


# ----------------------------------------------------------------------------------------------
# The service


class _CounterFields(BaseModel):
    """The fields the reset decides on; others are checked by the full model, not needed here."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    quota_period: Month | None = None
    quota_reset_at: UtcDatetime | None = None
    scene_counts_by_month: dict[Month, NonNegInt] | None = None


@dataclass(frozen=True, slots=True)
class ResetIssue:
    """A customer the run could not reset (`error`) or reset despite other bad fields."""

    customer_id: str
    kind: str
    """`error` (not reset: its counter fields are unusable) or `invalid` (reset; fix the doc)."""
    detail: str

    def as_dict(self) -> dict[str, str]:
        """Form stored in the audit document."""
        return {"customer_id": self.customer_id, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class ResetSummary:
    """What a run did (or, with `dry_run`, would do). Also passed to `progress` after each page."""

    period: str
    dry_run: bool
    complete: bool = False
    """The pass reached the last customer (False: stopped by the deadline, deliver again)."""
    stopped_by_deadline: bool = False
    resumed_from: str | None = None
    cursor: str | None = None
    pages: int = 0
    seen: int = 0
    reset: int = 0
    """Customers reset by this run (in a dry run: that a run would reset now)."""
    skipped: int = 0
    """Customers already in the period (or deleted meanwhile): nothing written."""
    unlimited: int = 0
    """Of `reset`, customers without a monthly limit (-1 or absent): counter reset all the same."""
    invalid: int = 0
    """Of `reset`, documents with other invalid fields (listed in the audit's issues)."""
    kept: int = 0
    """Of `reset`, documents from before the suite whose count so far in the period was kept."""
    errors: int = 0
    """Customers not reset because their counter fields are unusable (listed in issues)."""
    retried: int = 0
    """Writes retried after a concurrent change (precondition failed) or a failed write."""
    elapsed_seconds: float = 0.0
    issues: tuple[ResetIssue, ...] = field(default=())

    def log_fields(self) -> dict[str, Any]:
        """The counts, for the summary log line and the audit's `last_run`."""
        return {
            "period": self.period,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "stopped_by_deadline": self.stopped_by_deadline,
            "resumed_from": self.resumed_from,
            "pages": self.pages,
            "seen": self.seen,
            "reset": self.reset,
            "skipped": self.skipped,
            "unlimited": self.unlimited,
            "invalid": self.invalid,
            "kept": self.kept,
            "errors": self.errors,
            "retried": self.retried,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
        }


ResetProgress = ResetSummary
"""`progress` receives the running summary after each page."""


@dataclass(slots=True)
class _Page:
    writes: list[ResetWrite] = field(default_factory=list)
    docs: dict[str, CustomerDoc] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("reset", "skipped", "unlimited", "invalid", "kept", "errors", "retried"), 0
        )
    )
    issues: list[ResetIssue] = field(default_factory=list)


def _errors_text(errors: list[FieldError]) -> str:
    return "; ".join(str(e) for e in errors)


def _plan(
    doc: CustomerDoc,
    period: str,
    page: _Page,
    *,
    first_look: bool,
    as_of: datetime | None = None,
    keep: bool = False,
) -> ResetWrite | None:
    """Decide one customer: a write, or None (skipped or error, counted in `page`)."""
    data = plain_value(doc.data)
    try:
        counters = _CounterFields.model_validate(data)
    except ValidationError as exc:
        page.counts["errors"] += 1
        page.issues.append(ResetIssue(doc.id, "error", _errors_text(field_errors(exc))))
        return None
    seed = data.get(quota.THIS_MONTH_FIELD)
    customer = Customer.model_construct(
        **counters.model_dump(exclude_none=True),
        scenes_generated_this_month=seed if type(seed) is int and seed >= 0 else None,
    )
    plan = quota.plan_reset(
        customer,
        period,
        last_write=doc.update_time if isinstance(doc.update_time, datetime) else None,
        as_of=as_of,
        keep=keep,
    )
    if plan is None:
        page.counts["skipped"] += 1
        return None
    if first_look:
        problems = document_errors(Customer, data)
        if problems:
            page.counts["invalid"] += 1
            page.issues.append(ResetIssue(doc.id, "invalid", _errors_text(problems)))
        limit = data.get("monthly_scene_quota")
        if limit is None or (type(limit) is int and quota.is_unlimited(limit)):
            page.counts["unlimited"] += 1
        if plan.kept:
            page.counts["kept"] += 1
    return ResetWrite(doc.id, plan.value, period, doc.update_time, kept=plan.kept)


def _retry_one(
    repo: ResetRepository,
    write: ResetWrite,
    period: str,
    page: _Page,
    *,
    dry_run: bool,
    as_of: datetime | None,
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
        # A kept count stays kept: the commit that moved the document counted a scene of the
        # period on top of it (the usage function treats such a counter as this month's).
        again = _plan(doc, period, page, first_look=False, as_of=as_of, keep=write.kept)
        if again is None:  # reset meanwhile (another run) or now unusable: counted by _plan
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
) -> tuple[_Page, bool]:
    """Reset one page; returns its counts and whether every customer of it was handled."""
    page = _Page()
    for doc in docs:
        write = _plan(doc, period, page, first_look=True, as_of=as_of)
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
        elif not _retry_one(repo, write, period, page, dry_run=dry_run, as_of=as_of):
            handled = False
    return page, handled


def _record_page(
    repo: ResetRepository,
    summary: ResetSummary,
    page: _Page,
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
    if not MONTH_RE.match(period):
        raise ValueError(f"period={period!r}: expected a month as YYYY-MM")
    as_of = as_of or now
    if period > month_of(as_of):
        raise ValueError(
            f"period={period!r}: expected a month not after {month_of(as_of)}; "
            "a future month cannot be reset"
        )
    if not 1 <= page_size <= PAGE_SIZE:
        raise ValueError(f"page_size={page_size}: expected 1..{PAGE_SIZE}")
    started = clock()
    run_info = {"run_id": run_id, "started_at": now, "dry_run": dry_run}
    state = (
        AuditState(None, finished=False, samples=0) if dry_run else repo.start_run(period, run_info)
    )
    summary = ResetSummary(period=period, dry_run=dry_run, resumed_from=state.cursor)
    cursor = state.cursor
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
            next_cursor = docs[-1].id if handled else cursor
            listed = state.samples + len(summary.issues)
            summary = _record_page(
                repo, summary, page, docs, next_cursor=next_cursor, samples=listed, dry_run=dry_run
            )
            summary = replace(summary, elapsed_seconds=clock() - started)
            if progress is not None:
                progress(summary)
            if not handled:
                if ahead is not None:
                    ahead.cancel()
                _log_summary(summary)
                raise ResetIncompleteError(
                    f"quota reset {period}: customers of the page after {cursor!r} kept failing "
                    f"to write ({MAX_ATTEMPTS} attempts each); deliver again to continue"
                )
            cursor = next_cursor
            if ahead is None:  # a short page was the last one
                summary = replace(summary, complete=True)
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


# ----------------------------------------------------------------------------------------------
# Firestore adapter


class FirestoreResetRepository:
    """Customers and audit documents in Firestore (I/O only; rules are in the service)."""

    def __init__(
        self,
        client: Any,
        customers_collection: str,
        audit_collection: str,
        timeout: float | None = None,
        stream_timeout: float | None = 3600.0,
    ) -> None:
        self._client = client
        self._customers = client.collection(customers_collection)
        self._audits = client.collection(audit_collection)
        self._timeout = timeout
        self._stream_timeout = stream_timeout

    def _doc(self, snap: Any) -> CustomerDoc:
        return CustomerDoc(snap.id, snap.to_dict() or {}, snap.update_time)

    def scan(self, start_after: str | None) -> Iterator[CustomerDoc]:
        """Customers ordered by document id after `start_after`, one streamed query.

        Ordering by id needs no composite index. gRPC flow control bounds what is buffered.
        """
        query = queries.customers_by_id(self._client, start_after, collection=self._customers.id)
        for snap in query.stream(timeout=self._stream_timeout):
            yield self._doc(snap)

    def iter_ids(self) -> Iterator[str]:
        """Every customer id (for tools)."""
        for ref in self._customers.list_documents():
            yield ref.id

    def count_customers(self) -> int:
        """Number of customer documents (for a progress bar's total)."""
        result = self._customers.count().get(timeout=self._timeout)
        return int(result[0][0].value)

    def get(self, customer_id: str) -> CustomerDoc | None:
        """One customer read again."""
        snap = self._customers.document(customer_id).get(timeout=self._timeout)
        return self._doc(snap) if snap.exists else None

    def write_resets(self, writes: Sequence[ResetWrite]) -> list[int]:
        """Each write under its own precondition; a status code per write (0 = applied).

        First one atomic commit (the fast path: on the emulator a commit of 500 is about 1.6x
        faster than a BatchWrite). If any precondition failed, nothing was applied: the same
        writes go again as a non-atomic BatchWrite, which reports each write's own status.
        """
        from google.api_core.exceptions import (  # noqa: PLC0415 - lazy
            Aborted,
            FailedPrecondition,
            NotFound,
        )
        from google.cloud.firestore_v1.bulk_batch import BulkWriteBatch  # noqa: PLC0415

        try:
            self._fill(self._client.batch(), writes).commit(timeout=self._timeout)
        except (FailedPrecondition, NotFound, Aborted):
            response = self._fill(BulkWriteBatch(self._client), writes).commit(
                timeout=self._timeout
            )
            return [int(s.code) for s in response.status]
        return [_OK] * len(writes)

    def _fill(self, batch: Any, writes: Sequence[ResetWrite]) -> Any:
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415 - lazy

        for w in writes:
            batch.update(
                self._customers.document(w.customer_id),
                {
                    quota.THIS_MONTH_FIELD: w.value,
                    "quota_period": w.period,
                    "quota_reset_at": SERVER_TIMESTAMP,
                },
                option=self._client.write_option(last_update_time=w.update_time),
            )
        return batch

    def start_run(self, period: str, run: Mapping[str, Any]) -> AuditState:
        """Create the audit document on the first run; count the run; a new pass zeroes counts."""
        from google.api_core.exceptions import AlreadyExists  # noqa: PLC0415 - lazy
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP, Increment  # noqa: PLC0415

        ref = self._audits.document(period)
        fresh_pass = {
            "skipped": 0,
            "unlimited": 0,
            "invalid": 0,
            "kept": 0,
            "errors": 0,
            "retried": 0,
            "issues": [],
            "finished_at": None,
            "pass_started_at": SERVER_TIMESTAMP,
        }
        try:
            ref.create(
                {
                    "period": period,
                    "started_at": SERVER_TIMESTAMP,
                    "customers_reset": 0,
                    "runs": 1,
                    "cursor": None,
                    "current_run": dict(run),
                    **fresh_pass,
                },
                timeout=self._timeout,
            )
        except AlreadyExists:
            pass
        else:
            return AuditState(None, finished=False, samples=0)
        snap = ref.get(timeout=self._timeout)
        data = snap.to_dict() or {}
        cursor = data.get("cursor")
        update: dict[str, Any] = {"runs": Increment(1), "current_run": dict(run)}
        if cursor is None:
            update.update(fresh_pass)
        ref.update(update, timeout=self._timeout)
        samples = 0 if cursor is None else len(data.get("issues") or [])
        return AuditState(cursor, finished=data.get("finished_at") is not None, samples=samples)

    def record_progress(
        self, period: str, counts: Mapping[str, int], cursor: str | None, issues: list[Any]
    ) -> None:
        """Add a page's counts (Increment), move the cursor, append its issues."""
        from google.cloud.firestore_v1 import ArrayUnion, Increment  # noqa: PLC0415 - lazy

        update: dict[str, Any] = {"cursor": cursor}
        for name, value in counts.items():
            update["customers_reset" if name == "reset" else name] = Increment(value)
        if issues:
            update["issues"] = ArrayUnion(issues)
        self._audits.document(period).update(update, timeout=self._timeout)

    def finish(self, period: str, run: Mapping[str, Any]) -> None:
        """The pass reached the end: finished time, no cursor, the last run's summary."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415 - lazy

        # Exact, whatever earlier deliveries managed to record before they died: the customers
        # whose `quota_period` is the period (the reset writes it; the usage function only once,
        # on a document from before the suite, naming the month its counter already counted).
        in_period: Any = queries.customers_reset_for_period(
            self._client, period, collection=self._customers.id
        )
        reset_total = int(in_period.count().get(timeout=self._timeout)[0][0].value)
        self._audits.document(period).update(
            {
                "customers_reset": reset_total,
                "finished_at": SERVER_TIMESTAMP,
                "cursor": None,
                "last_run": dict(run),
                "current_run": None,
            },
            timeout=self._timeout,
        )


@functools.cache
def default_repository() -> FirestoreResetRepository:
    """The Firestore repository of the running function (client created on first use)."""
    from google.cloud import firestore  # noqa: PLC0415 - the cold start stays cheap

    from shared.settings import get_settings  # noqa: PLC0415

    settings = get_settings()
    client = firestore.Client(project=settings.project_id)
    return FirestoreResetRepository(
        client,
        settings.customers_collection,
        settings.quota_resets_collection,
        timeout=max(settings.firestore_timeout_seconds, 60.0),
    )


def handle_schedule_event(event: CloudEvent, timeout_seconds: float) -> ResetSummary | None:
    """The whole of `reset_monthly_quotas`: decode, run until the deadline, ask for redelivery."""
    deadline = function_deadline(timeout_seconds)
    try:
        request = decode_schedule_event(event)
    except ScheduleMessageError as exc:
        logs.error(f"quota reset refused: {exc}", event_id=event.get("id"))
        return None  # permanent: acknowledged, never retried
    now = datetime.now(UTC)
    summary = run_reset(
        default_repository(),
        request.period,
        now,
        deadline=deadline,
        run_id=request.message_id or event.get("id"),
        as_of=request.publish_time or now,
    )
    raise_if_incomplete(summary)
    return summary
