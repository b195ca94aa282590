"""What the fold exchanges with Firestore and Pub/Sub: the dataclasses and the two Protocols."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.counters import Sums

_COUNTS_LOCK = threading.Lock()


class CommitConflictError(Exception):
    """A guarded write found its document changed, created or deleted: read again, plan again."""


@dataclass(frozen=True, slots=True)
class NewRecord:
    """One `usage_tracking` record as the fold's scan reads it."""

    customer_id: str
    month: str
    """The month of the event's own timestamp (from the record's `fold_key`)."""
    sums: Sums
    recorded_at: datetime
    """Its commit time (server): the fold's clock."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A document as read: its data and its update time (the token of a guarded write)."""

    data: Mapping[str, Any]
    update_time: Any


@dataclass(frozen=True, slots=True)
class Watermark:
    """`usage_fold_state/{bucket}`: every record of the bucket with `recorded_at` at or before
    `value` has been added to its month summary. `token`: the document's update time (None: it
    does not exist yet); `read_time`: the read's server time (one for every bucket)."""

    bucket: int
    value: datetime | None
    token: Any = None
    read_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class CustomerState:
    """A customer and its month summaries by month (None: not there), read in one round trip."""

    customer: Snapshot | None
    summaries: Mapping[str, Snapshot | None]


@dataclass(frozen=True, slots=True)
class SummaryWrite:
    """Set one month summary: create it (token None) or replace it if unchanged since read."""

    month: str
    data: Mapping[str, Any]
    token: Any = None


@dataclass(frozen=True, slots=True)
class CustomerWrite:
    """Set the data model's counter fields on the customer, if unchanged since read; with
    `stamp_reset`, `quota_reset_at` too (server time: the fold rolled the month over)."""

    fields: Mapping[str, Any]
    token: Any
    stamp_reset: bool = False


@dataclass(frozen=True, slots=True)
class Commit:
    """ONE atomic commit of a customer: its summaries, the customer, new alert markers."""

    customer_id: str
    summaries: tuple[SummaryWrite, ...] = ()
    customer: CustomerWrite | None = None
    markers: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    """(alert id, marker data), each created (fails if it exists)."""

    @property
    def empty(self) -> bool:
        """Nothing to write."""
        return not (self.summaries or self.customer or self.markers)


@dataclass(frozen=True, slots=True)
class Marker:
    """A `quota_alerts` document as read."""

    alert_id: str
    data: Mapping[str, Any]
    update_time: Any = None


@dataclass(slots=True)
class FoldCounts:
    """What one fold did (log fields and test assertions)."""

    buckets: int = 0
    records_scanned: int = 0
    customers: int = 0
    customer_months: int = 0
    summaries_written: int = 0
    customers_written: int = 0
    late_records: int = 0  # records added to a month that was closed already
    conflicts: int = 0
    failed_customers: int = 0
    alerts_published: int = 0
    alerts_failed: int = 0
    alerts_taken_over: int = 0
    watermarks_moved: int = 0
    months_recounted: int = 0
    recount_corrections: int = 0  # customer-months whose summary differed (corrected, logged)
    closed_month: str | None = None
    capped: bool = False
    stopped_by_deadline: bool = False
    failures: list[str] = field(default_factory=list)

    def add(self, name: str, n: int = 1) -> None:
        """Add to one count (customers are folded in parallel threads)."""
        with _COUNTS_LOCK:
            setattr(self, name, getattr(self, name) + n)

    def log_fields(self) -> dict[str, Any]:
        """The counts as log fields."""
        fields = dataclasses.asdict(self)
        fields["failures"] = self.failures[:10]
        return fields


class FoldRepository(Protocol):
    """Firestore as the fold needs it. I/O only: the service decides."""

    def read_watermarks(self, buckets: Sequence[int]) -> list[Watermark]:
        """The state document of each bucket (one round trip), with the read's server time."""

    def scan_records(
        self, bucket: int, after: datetime | None, upto: datetime, page_size: int, read_time: Any
    ) -> Iterator[list[NewRecord]]:
        """Pages of the records of `bucket` with `after < recorded_at <= upto` (`after` None:
        from the first), oldest first, all read at `read_time`."""

    def set_watermark(self, watermark: Watermark, value: datetime) -> bool:
        """Set the bucket's watermark if its document is unchanged since read; False if not."""

    def read_state(self, customer_id: str, months: Sequence[str]) -> CustomerState:
        """The customer document and the summaries of `months` (one round trip)."""

    def commit(self, commit: Commit) -> None:
        """Apply `commit` atomically; CommitConflictError when a guard failed."""

    def count_month(self, customer_id: str, month: str, upto: datetime) -> Sums:
        """Count and sums of the customer-month's records with `recorded_at <= upto`
        (aggregation queries: one read per 1,000 index entries)."""

    def month_summaries(self, month: str, after: str | None, limit: int) -> list[str]:
        """Ids of the summaries of `month`, by id, after `after`."""

    def read_close(self) -> Snapshot | None:
        """The month-close state document (`usage_fold_state/months`)."""

    def set_close(self, data: Mapping[str, Any], token: Any) -> Any:
        """Set the month-close state if unchanged since read (token None: create): its new
        update time, or None when it changed meanwhile."""

    def pending_markers(self, limit: int) -> list[Marker]:
        """Alert markers whose state is `pending`."""

    def claim_marker(self, marker: Marker, changes: Mapping[str, Any]) -> bool:
        """Update the marker only if unchanged since read; False if it changed."""

    def update_marker(self, alert_id: str, changes: Mapping[str, Any]) -> None:
        """Update a marker (published, or released after a failed publish)."""

    def existing_markers(self, alert_ids: Sequence[str]) -> set[str]:
        """Which of these alert markers exist (one round trip)."""


class AlertPublisher(Protocol):
    """The `quota-alerts` topic."""

    def publish_alert(self, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish one message and wait until Pub/Sub accepted it; return its message id."""
