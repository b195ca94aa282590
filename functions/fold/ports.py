"""What the fold exchanges with Firestore and Pub/Sub: the dataclasses and the two Protocols."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

_COUNTS_LOCK = threading.Lock()


class CommitConflictError(Exception):
    """A guarded write found its document changed, created or deleted: read again, plan again."""


@dataclass(frozen=True, slots=True)
class Shard:
    """One counter shard `usage_counters/{customer}_{month}/shards/{shard}` as read."""

    customer_id: str
    month: str
    shard: str
    values: Mapping[str, int | float]
    """`shared.counters.SHARD_INT_FIELDS` and `SHARD_FLOAT_FIELDS` (absent ones are 0)."""
    updated_at: datetime
    bucket: int = 0
    touched: bool = False
    """This version is a late record's zero increment (`shared.counters.TOUCHED_AT_FIELD`):
    the month's records counted from the records must be counted up to at least it."""


@dataclass(frozen=True, slots=True)
class TallyRecord:
    """One `usage_tracking` record counted from the records (it carries `fold_bucket`, no
    shard increment), as the fold's scan reads it."""

    customer_id: str
    month: str
    """The month of the event's own timestamp."""
    values: Mapping[str, int | float]
    """What it adds to the month's counters (`shared.counters.record_counts`)."""
    recorded_at: datetime
    """Its commit time (server)."""
    bucket: int = 0
    flag: bool = False
    """A flag (`functions.usage.flags`): the record carries `fold_key`, so it and the records
    its flag covers are counted by the month's aggregation (`values` are empty); the scan's
    read only says the month changed."""


@dataclass(frozen=True, slots=True)
class HeldTally:
    """A customer-month's records-counted records that folds counted but have not written into
    its summary yet: the sums of those with `base < recorded_at <= upto`. Kept in its bucket's
    state document (`held`: `functions.fold.held_format`) between summary writes."""

    customer_id: str
    month: str
    base: datetime | None
    """The summary's `shards.tally` bound these sums start from (None: it had none)."""
    upto: datetime
    values: Mapping[str, int | float]
    """`shared.counters` sums of the held records (all 0: nothing held, only the facts below)."""
    headroom: int | None
    """Scenes the month could still count, after the last summary write, before it reaches its
    next alert threshold (None: no threshold ahead, or no customer document)."""
    written_at: datetime
    """When the fold last wrote the month's summary."""
    owed: datetime | None = None
    """The month must be counted (aggregated) up to at least this: its latest flag's cover
    (`shared.counters.FLAG_COVER` after the flag's commit) not yet counted (None: nothing)."""

    @property
    def key(self) -> str:
        """Its key in the state document's `held` map."""
        return f"{self.customer_id}_{self.month}"

    @property
    def empty(self) -> bool:
        """No record held (only the facts of the last write)."""
        return not any(self.values.values())


@dataclass(frozen=True, slots=True)
class Tally:
    """A customer-month's records found by one fold's scan: every such record with
    `after < recorded_at <= upto` of its bucket (complete for that range), plus what earlier
    folds held back for it (`held`, from the same bucket's state)."""

    records: tuple[TallyRecord, ...]
    upto: datetime
    held: HeldTally | None = None
    bucket: int = 0
    owed: datetime | None = None
    """The month's flags' cover (`HeldTally.owed`), to keep when `upto` does not reach it."""
    counted: Mapping[str, int | float] | None = None
    """The month's records with `fold_key` and `counted_after < recorded_at <= upto`, counted
    by aggregation after the summary was read (None: not counted)."""
    counted_after: datetime | None = None

    @property
    def flagged(self) -> bool:
        """Whether the month has records counted by aggregation to count (a flag, a cover)."""
        return self.owed is not None or any(r.flag for r in self.records)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A document as read: its data and its update time (the token of a guarded write)."""

    data: Mapping[str, Any]
    update_time: Any


@dataclass(frozen=True, slots=True)
class Watermark:
    """`usage_fold_state/{bucket}`: the newest shard `updated_at` the fold has folded, and the
    `recorded_at` up to which it has counted the records counted from the records."""

    bucket: int
    value: datetime | None
    token: Any = None
    """Update time of the state document (None when it does not exist yet)."""
    records: datetime | None = None
    """`records_watermark`: every records-counted record with `recorded_at` at or before it is
    in its month summary (None: none counted yet)."""
    read_time: datetime | None = None
    """Server time of the read (the same for every bucket of one read)."""
    held: Mapping[str, HeldTally] = field(default_factory=dict)
    """The bucket's held tallies, by `HeldTally.key`."""
    held_bytes: int = 0
    """Stored size of `held` (the length of its text)."""


@dataclass(frozen=True, slots=True)
class CustomerState:
    """A customer and the month summaries the fold needs, read in one round trip."""

    customer: Snapshot | None
    summaries: Mapping[str, Snapshot | None]
    """By month; None where the summary does not exist yet."""


@dataclass(frozen=True, slots=True)
class SummaryWrite:
    """Set one month summary: create it (token None) or replace it if unchanged since read."""

    month: str
    data: Mapping[str, Any]
    token: Any = None


@dataclass(frozen=True, slots=True)
class CustomerWrite:
    """Set schema.md's counter fields on the customer, if unchanged since read."""

    fields: Mapping[str, Any]
    token: Any
    stamp_reset: bool = False
    """Also set `quota_reset_at` to the server time (the fold rolled the month over)."""


@dataclass(frozen=True, slots=True)
class Commit:
    """ONE atomic commit of a customer's fold: its summaries, the customer, new alert markers."""

    customer_id: str
    summaries: tuple[SummaryWrite, ...] = ()
    customer: CustomerWrite | None = None
    markers: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    """(alert id, marker data) created in the same commit (create: fails if one exists)."""

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
    shards_scanned: int = 0
    records_scanned: int = 0
    """Records-counted records read by the scan."""
    months_held: int = 0
    """Customer-months whose new records were held in their bucket's state (no write)."""
    recounts: int = 0
    """Held tallies an overlapping fold had partly written: recounted from the records."""
    headroom_counts: int = 0
    """Held months whose scenes were counted (aggregation) to see if they reach an alert."""
    months_counted: int = 0
    """Month writes whose records were counted by aggregation."""
    customer_months: int = 0
    customers: int = 0
    summaries_written: int = 0
    customers_written: int = 0
    conflicts: int = 0
    failed_customers: int = 0
    alerts_published: int = 0
    alerts_failed: int = 0
    alerts_taken_over: int = 0
    watermarks_moved: int = 0
    capped: bool = False
    stopped_by_deadline: bool = False
    failures: list[str] = field(default_factory=list)

    def add(self, name: str, n: int = 1) -> None:
        """Add to one count (folds of several customers run in parallel threads)."""
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
        ...

    def scan_bucket(self, bucket: int, since: datetime, page_size: int) -> Iterator[list[Shard]]:
        """Pages of the shards of `bucket` with `updated_at > since`, oldest first."""
        ...

    def scan_records(
        self,
        bucket: int,
        after: datetime | None,
        upto: datetime,
        page_size: int,
        read_time: datetime | None = None,
    ) -> Iterator[list[TallyRecord]]:
        """Pages of the records-counted records of `bucket` with `after < recorded_at <= upto`
        (`after` None: from the first), oldest first, read at `read_time` (a little after
        `upto`: every record stamped up to `upto` is committed by then)."""
        ...

    def count_month(
        self,
        customer_id: str,
        month: str,
        after: datetime | None,
        upto: datetime,
        *,
        scenes_only: bool = False,
    ) -> dict[str, int | float]:
        """Aggregation over the customer-month's records with `fold_key` and `after <
        recorded_at <= upto`: `shared.counters` sums (`records` the count); with
        `scenes_only`, only `scenes_generated` (one index batch per 1,000 records)."""
        ...

    def read_state(self, customer_id: str, months: Sequence[str]) -> CustomerState:
        """The customer document and the summaries of `months` (one round trip)."""
        ...

    def commit(self, commit: Commit) -> None:
        """Apply `commit` atomically; CommitConflictError when a guard failed."""
        ...

    def set_watermark(
        self,
        watermark: Watermark,
        value: datetime | None,
        records: datetime | None = None,
        held: Mapping[str, HeldTally] | None = None,
    ) -> bool:
        """Set the bucket's watermarks and its held tallies (None: keep the ones read) if its
        document is unchanged since read; False if not."""
        ...

    def pending_markers(self, limit: int) -> list[Marker]:
        """Alert markers whose state is `pending`."""
        ...

    def claim_marker(self, marker: Marker, changes: Mapping[str, Any]) -> bool:
        """Update the marker only if unchanged since read; False if it changed."""
        ...

    def update_marker(self, alert_id: str, changes: Mapping[str, Any]) -> None:
        """Update a marker (published, or released after a failed publish)."""
        ...

    def existing_markers(self, alert_ids: Sequence[str]) -> set[str]:
        """Which of these alert markers exist (one round trip)."""
        ...


class AlertPublisher(Protocol):
    """The `quota-alerts` topic."""

    def publish_alert(self, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish one message and wait until Pub/Sub accepted it; return its message id."""
        ...
