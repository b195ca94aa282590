"""What the monthly reset exchanges with its storage: the repository Protocol and its values."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.errors import PermanentError, TransientError


class ResetIncompleteError(TransientError):
    """The run stopped before the end (deadline or repeated write failures): deliver it again."""


class ScheduleMessageError(PermanentError, ValueError):
    """The schedule message cannot name a period (permanent: logged and acknowledged)."""


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

    def month_counts(self, customer_ids: Sequence[str], period: str) -> Mapping[str, int]:
        """The scenes the fold has counted for `period` (its month summaries' `scenes_total`)
        by customer, one round trip; customers without a summary are absent."""

    def start_run(self, period: str, run: Mapping[str, Any]) -> AuditState:
        """Open (or create) the audit document for a run and return where to resume."""

    def record_progress(
        self, period: str, counts: Mapping[str, int], cursor: str | None, issues: list[Any]
    ) -> None:
        """Add page counts, move the cursor, append issues."""

    def finish(self, period: str, run: Mapping[str, Any]) -> None:
        """Mark the pass finished, clear the cursor, set the exact `customers_reset`."""


@dataclass(frozen=True, slots=True)
class ResetIssue:
    """A customer the run could not reset (`error`) or reset despite other bad fields."""

    customer_id: str
    kind: str
    """`error` (not reset: its counter fields are unusable), `invalid` (reset; fix the doc) or
    `busy` (its write kept failing: retried by the next delivery, the pages after it go on)."""
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
