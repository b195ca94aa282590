"""The library behind `blueprint usage export --month YYYY-MM`: billing totals of every customer.

Reads the month's `usage_tracking` records across customers in pages
(`shared.queries.usage_page`: `month_start <= timestamp < next month`, ordered by timestamp then
document id; the automatic single-field index on `timestamp` serves it), so memory holds one
page of records plus one running total per customer that has usage in the month, never the
records themselves. Amounts are summed as `Decimal` of the stored numbers as written
(`shared.pricing.to_decimal`, i.e. `Decimal(str(x))`): each total is exactly the sum of its
records, and the cost total is exactly the sum of the records' cent amounts.

Two exports, both iterators of dataclasses: `customer_totals` (one row per customer: every
customer document, then customers whose records remain without a document) and `record_rows`
(one row per record, streamed). `write_csv` / `write_jsonl` serialise either; Decimals are
written as exact decimal text (strings in JSON, never binary floats). A CSV text cell that a
spreadsheet would take for a formula (starting with = + - @, a tab or a carriage return) is
written behind a single quote. Records that fail validation are not summed; `ExportStats`
counts them and keeps the first few reasons.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, TextIO

from pydantic import ValidationError

from shared import queries
from shared.counters import SCENE_GENERATED
from shared.errors import BlueprintError
from shared.firestore_values import plain_value
from shared.models import UsageRecord, field_errors
from shared.pricing import CENT, to_decimal
from shared.settings import Settings, get_settings
from shared.times import month_of, parse_month

DEFAULT_PAGE_SIZE: Final = 500
MAX_SKIPPED_SAMPLES: Final = 100


class ExportError(BlueprintError, ValueError):
    """The export cannot be made as asked (bad or future month, bad page size)."""


@dataclass
class ExportStats:
    """What an export read: filled in while its iterator runs."""

    records_read: int = 0
    records_skipped: int = 0
    skipped: list[str] = field(default_factory=list)
    """`id: reason` of the first skipped (invalid) records."""

    def skip(self, doc_id: str, reason: str) -> None:
        """Count an invalid record (and keep its reason while there is room)."""
        self.records_skipped += 1
        if len(self.skipped) < MAX_SKIPPED_SAMPLES:
            self.skipped.append(f"{doc_id}: {reason}")


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One usage record, as billing reads it."""

    month: str
    id: str
    customer_id: str
    scene_id: str
    action: str
    timestamp: datetime
    billable: bool
    episodes: int
    compute_minutes: Decimal
    storage_gb: Decimal
    cost_usd: Decimal
    rate_card_version: str | None
    pricing_tier: str | None


@dataclass(frozen=True, slots=True)
class CustomerTotals:
    """A customer's totals for the month: each the exact sum of its records."""

    month: str
    customer_id: str
    customer_exists: bool
    """False for records whose customer document is gone (still billed)."""
    records: int
    billable_records: int
    episodes: int
    compute_minutes: Decimal
    storage_gb: Decimal
    cost_usd: Decimal
    scenes_used: int
    """The month's `scene_generated` records (decisions.md: what quotas count)."""
    monthly_scene_quota: int | None
    """From the customer document; None or -1 = unlimited."""


@dataclass
class _Sum:
    records: int = 0
    billable: int = 0
    episodes: int = 0
    compute: Decimal = Decimal(0)
    storage: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    scenes: int = 0

    def add(self, row: RecordRow) -> None:
        self.records += 1
        self.billable += row.billable
        self.episodes += row.episodes
        self.compute += row.compute_minutes
        self.storage += row.storage_gb
        self.cost += row.cost_usd
        self.scenes += row.action == SCENE_GENERATED


def check_month(month: str, now: datetime | None = None) -> str:
    """`month` if it is a `YYYY-MM` month that has begun (UTC); ExportError naming it if not."""
    try:
        parse_month(month)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    current = month_of(now or datetime.now(UTC))
    if month > current:
        raise ExportError(
            f"month={month!r} is in the future (the current month is {current}, UTC): "
            "nothing to export yet"
        )
    return month


def _check_page_size(page_size: int) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ExportError(f"page_size={page_size!r}: expected a positive whole number")
    return page_size


def _row(month: str, record: UsageRecord, doc_id: str) -> RecordRow:
    return RecordRow(
        month=month,
        id=doc_id,
        customer_id=record.customer_id,
        scene_id=record.scene_id,
        action=record.action,
        timestamp=record.timestamp,
        billable=record.billable,
        episodes=record.episodes_generated or 0,
        compute_minutes=to_decimal(record.compute_minutes),
        storage_gb=to_decimal(record.storage_gb),
        cost_usd=to_decimal(record.estimated_cost),
        rate_card_version=record.rate_card_version,
        pricing_tier=record.pricing_tier.value if record.pricing_tier else None,
    )


def record_rows(
    client: Any,
    month: str,
    *,
    now: datetime | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    settings: Settings | None = None,
    stats: ExportStats | None = None,
) -> Iterator[RecordRow]:
    """Every valid usage record of the month, oldest first, read page by page. The month and
    page size are checked at the call, before anything is read."""
    check_month(month, now)
    return _record_rows(
        client,
        month,
        _check_page_size(page_size),
        settings or get_settings(),
        stats if stats is not None else ExportStats(),
    )


def _record_rows(
    client: Any, month: str, size: int, settings: Settings, stats: ExportStats
) -> Iterator[RecordRow]:
    after: list[Any] | None = None
    while True:
        query = queries.usage_page(client, month, after=after, limit=size, settings=settings)
        count, last = 0, None
        for snap in query.stream(timeout=settings.firestore_timeout_seconds):
            count, last = count + 1, snap
            stats.records_read += 1
            try:
                record = UsageRecord.model_validate(plain_value(snap.to_dict() or {}))
            except ValidationError as exc:
                stats.skip(snap.id, "; ".join(str(e) for e in field_errors(exc)))
                continue
            yield _row(month, record, snap.id)
        if count < size or last is None:
            return
        after = [last.get("timestamp"), last.id]


def _quota(data: dict[str, Any] | None) -> int | None:
    value = (data or {}).get("monthly_scene_quota")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _totals(
    month: str, customer_id: str, total: _Sum, exists: bool, quota: int | None
) -> CustomerTotals:
    return CustomerTotals(
        month=month,
        customer_id=customer_id,
        customer_exists=exists,
        records=total.records,
        billable_records=total.billable,
        episodes=total.episodes,
        compute_minutes=total.compute,
        storage_gb=total.storage,
        cost_usd=total.cost,
        scenes_used=total.scenes,
        monthly_scene_quota=quota,
    )


def customer_totals(
    client: Any,
    month: str,
    *,
    now: datetime | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    include_idle: bool = True,
    settings: Settings | None = None,
    stats: ExportStats | None = None,
) -> Iterator[CustomerTotals]:
    """Every customer's totals for the month: customer documents by id (those without usage
    too, unless `include_idle` is False), then customers with records but no document. The
    month and page size are checked at the call; the records are read on the first `next()`."""
    records = record_rows(
        client, month, now=now, page_size=page_size, settings=settings, stats=stats
    )
    return _customer_totals(
        client, month, records, page_size, include_idle=include_idle, settings=settings
    )


def _customer_totals(
    client: Any,
    month: str,
    records: Iterator[RecordRow],
    size: int,
    *,
    include_idle: bool,
    settings: Settings | None,
) -> Iterator[CustomerTotals]:
    settings = settings or get_settings()
    sums: dict[str, _Sum] = {}
    for row in records:
        sums.setdefault(row.customer_id, _Sum()).add(row)
    after: str | None = None
    timeout = settings.firestore_timeout_seconds
    while True:
        query = queries.customers_by_id(client, after, limit=size, settings=settings)
        count = 0
        for snap in query.stream(timeout=timeout):
            count, after = count + 1, snap.id
            total = sums.pop(snap.id, None)
            if total is None and not include_idle:
                continue
            yield _totals(month, snap.id, total or _Sum(), True, _quota(snap.to_dict()))
        if count < size:
            break
    for customer_id in sorted(sums):
        yield _totals(month, customer_id, sums[customer_id], False, None)


# ---- serialisation -------------------------------------------------------------------------


def _money(value: Decimal) -> str:
    """Exact decimal text, at least to the cent (`12.3` -> `12.30`; never rounded)."""
    if value == value.quantize(CENT):
        value = value.quantize(CENT)
    return format(value, "f")


def _amount(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _plain(row: CustomerTotals | RecordRow) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in dataclasses.fields(row):
        value = getattr(row, item.name)
        if isinstance(value, Decimal):
            value = _money(value) if item.name == "cost_usd" else _amount(value)
        elif isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        out[item.name] = value
    return out


FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list)."""


def _cell(value: Any, text: bool) -> Any:
    """A CSV cell: None empty, and text a spreadsheet would run as a formula (a customer id
    `=1+2`) behind a single quote, so it opens as the text it is. Numbers are left alone."""
    if value is None:
        return ""
    if text and isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def columns(kind: type[CustomerTotals] | type[RecordRow]) -> list[str]:
    """The CSV header of an export kind."""
    return [f.name for f in dataclasses.fields(kind)]


def write_csv(
    rows: Iterable[CustomerTotals] | Iterable[RecordRow],
    out: TextIO,
    kind: type[CustomerTotals] | type[RecordRow] = CustomerTotals,
) -> int:
    """Write a header and one CSV line per row, as RFC 4180 says (CRLF line ends, so a cell
    holding a CR or LF is quoted; None as an empty cell; text starting with = + - @ tab or CR
    behind a single quote); the rows written."""
    writer = csv.DictWriter(out, fieldnames=columns(kind), lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in rows:
        cells = _plain(row)
        writer.writerow({k: _cell(v, isinstance(getattr(row, k), str)) for k, v in cells.items()})
        count += 1
    return count


def write_jsonl(rows: Iterable[CustomerTotals] | Iterable[RecordRow], out: TextIO) -> int:
    """Write one JSON object per line (amounts as exact decimal strings); the rows written."""
    count = 0
    for row in rows:
        out.write(json.dumps(_plain(row), separators=(",", ":"), sort_keys=False) + "\n")
        count += 1
    return count


__all__ = [
    "CustomerTotals",
    "ExportError",
    "ExportStats",
    "RecordRow",
    "check_month",
    "columns",
    "customer_totals",
    "record_rows",
    "write_csv",
    "write_jsonl",
]
