"""`blueprint usage report`: a customer's usage in one calendar month (UTC), summed exactly.

Amounts are summed as `Decimal` of the stored numbers as written (`shared.pricing.to_decimal`),
so the cost total equals the sum of the records' `estimated_cost` to the cent. Quota used counts
the month's `scene_generated` records (decisions.md: quotas count them per calendar month, UTC).

The query is `usage_tracking where customer_id == C and month_start <= timestamp < next_month
order by timestamp`: it needs the composite index (customer_id ASC, timestamp ASC) that
`firestore.indexes.json` declares. It reads every record of the month; the console's customer
page has the same report made of Firestore's counts and sums instead (`ops.usage_sums`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared import queries
from shared.counters import SCENE_GENERATED
from shared.errors import BlueprintError
from shared.firestore_values import plain_value
from shared.models import Customer, UsageRecord, document_errors
from shared.pricing import round_cents, to_decimal
from shared.quota import counter_period, is_unlimited
from shared.settings import Settings, get_settings
from shared.times import MONTH_RE, month_of, month_start, next_month_start


class ReportError(BlueprintError):
    """The report cannot be made as asked (bad month, chart library missing, ...)."""


def parse_month(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a `YYYY-MM` month in UTC."""
    if not MONTH_RE.match(month):
        raise ReportError(f"--month {month!r}: expected YYYY-MM, for example 2025-01")
    try:
        return month_start(month), next_month_start(month)
    except ValueError:  # 9999-12 has no next month in `datetime`
        raise ReportError(f"--month {month!r}: expected a month before 9999-12") from None


def month_days(month: str) -> list[date]:
    """Every day (UTC) of a `YYYY-MM` month, in order."""
    start, end = parse_month(month)
    return [start.date() + timedelta(days=n) for n in range((end - start).days)]


@dataclass
class Totals:
    """Sums over a set of usage records."""

    label: str
    records: int = 0
    billable: int = 0
    episodes: int = 0
    compute_minutes: Decimal = Decimal(0)
    storage_gb: Decimal = Decimal(0)
    cost: Decimal = Decimal("0.00")

    def include(self, other: Totals) -> None:
        """Add another line's sums to this one."""
        self.records += other.records
        self.billable += other.billable
        self.episodes += other.episodes
        self.compute_minutes += other.compute_minutes
        self.storage_gb += other.storage_gb
        self.cost += other.cost

    def add(self, record: UsageRecord) -> None:
        """Count one record."""
        self.records += 1
        self.billable += 1 if record.billable else 0
        self.episodes += record.episodes_generated or 0
        self.compute_minutes += to_decimal(record.compute_minutes)
        self.storage_gb += to_decimal(record.storage_gb)
        self.cost += to_decimal(record.estimated_cost)


@dataclass
class UsageReport:
    """A customer's usage in one month."""

    customer_id: str
    month: str
    actions: dict[str, Totals] = field(default_factory=dict)
    total: Totals = field(default_factory=lambda: Totals("TOTAL"))
    daily_cost: dict[date, Decimal] = field(default_factory=dict)
    daily_actions: dict[date, dict[str, Totals]] = field(default_factory=dict)
    """Per day (UTC), per action: the console's chart."""
    scenes_generated: int = 0
    quota: int | None = None
    customer_exists: bool = False
    counter: int | None = None
    """The customer's own count for the month: its counter when the counter counts the month
    (`quota_period`, else `quota_reset_at`'s month, else, on a document from before the suite,
    the month of its last write: the legacy rule the fold applies)."""
    skipped: list[str] = field(default_factory=list)
    """Records that failed validation (id: reason); not summed."""

    @property
    def started_at(self) -> int | None:
        """Scenes the month started with, counted before its records: the customer's counter
        beyond the records (a customer migrated mid-month, or the demo's seeded 45; the fold
        keeps that count and adds the records to it), None when the records explain it all."""
        if self.counter is None or self.counter <= self.scenes_generated:
            return None
        return self.counter - self.scenes_generated

    @property
    def scenes_used(self) -> int:
        """The month's scenes against the quota: its records, plus the count it started with."""
        return self.scenes_generated + (self.started_at or 0)

    @property
    def quota_text(self) -> str:
        """`37 of 100 scenes (37.0 %)` or `37 scenes (unlimited)`; with a seeded start, the
        customer's count, then where it comes from."""
        start, used = self.started_at, self.scenes_used
        if is_unlimited(self.quota):
            text = f"{used} scenes (unlimited)"
        else:
            assert self.quota is not None
            pct = Decimal(used * 100) / Decimal(self.quota) if self.quota else Decimal(0)
            text = f"{used} of {self.quota} scenes ({pct.quantize(Decimal('0.1'))} %)"
        if start is not None:
            text += (
                f": started the month at {start} (counted before the records) + "
                f"{self.scenes_generated} scene_generated records"
            )
        return text

    @property
    def counter_note(self) -> str | None:
        """What to say when the customer's counter is behind its records (the fold counts new
        records within about a minute); a counter ahead of them is `started_at`."""
        if self.counter is None or self.counter >= self.scenes_generated:
            return None
        return (
            f"note: the customer's counter for {self.month} says {self.counter} (not yet "
            "counted: the newest records)"
        )


def build_report(
    customer_id: str,
    month: str,
    records: Iterable[tuple[str, Mapping[str, Any]]],
    customer: Mapping[str, Any] | None,
    last_write: datetime | None = None,
) -> UsageReport:
    """Sum (id, data) usage records of one customer and month. Pure.

    `last_write`: the customer document's update time, which tells the month the counter of a
    document without bookkeeping counts (the legacy rule, `shared.quota.legacy_period`)."""
    report = UsageReport(customer_id, month)
    start, end = parse_month(month)
    for day in month_days(month):
        report.daily_cost[day] = Decimal("0.00")
    for doc_id, raw in records:
        data = plain_value(raw)
        errors = document_errors(UsageRecord, data)
        if errors:
            report.skipped.append(f"{doc_id}: " + "; ".join(str(e) for e in errors))
            continue
        record = UsageRecord.model_validate(data)
        if record.customer_id != customer_id or not start <= record.timestamp < end:
            continue
        report.actions.setdefault(record.action, Totals(record.action)).add(record)
        report.total.add(record)
        report.daily_cost[record.timestamp.date()] += to_decimal(record.estimated_cost)
        day_actions = report.daily_actions.setdefault(record.timestamp.date(), {})
        day_actions.setdefault(record.action, Totals(record.action)).add(record)
        if record.action == SCENE_GENERATED:
            report.scenes_generated += 1
    apply_customer(report, customer, last_write)
    report.actions = dict(sorted(report.actions.items()))
    return report


def apply_customer(
    report: UsageReport, customer: Mapping[str, Any] | None, last_write: datetime | None
) -> None:
    """The customer document's part of a report: that it exists, its quota and its counter."""
    if customer is None:
        return
    report.customer_exists = True
    errors = document_errors(Customer, plain_value(customer))
    model = None if errors else Customer.model_validate(plain_value(customer))
    if model is None:
        return
    report.quota = model.monthly_scene_quota
    # No period on the document: it predates the suite; its counter counts the month of its
    # last write (the legacy rule, as the fold reads it).
    period = counter_period(model) or (month_of(last_write) if last_write else None)
    if period == report.month:
        report.counter = model.scenes_generated_this_month


def _num(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def rows(report: UsageReport) -> list[list[str]]:
    """Header plus one row per action and a total row."""
    out = [["action", "records", "episodes", "compute_minutes", "storage_gb", "cost_usd"]]
    for totals in [*report.actions.values(), report.total]:
        out.append(
            [
                totals.label,
                str(totals.records),
                str(totals.episodes),
                _num(totals.compute_minutes),
                _num(totals.storage_gb),
                str(round_cents(totals.cost)),
            ]
        )
    return out


def render_table(report: UsageReport) -> str:
    """The report as an aligned text table with a header and the quota line."""
    table = rows(report)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [f"Usage of {report.customer_id} in {report.month} (UTC)"]
    if not report.customer_exists:
        lines.append(f"note: no customers/{report.customer_id} document")
    for index, row in enumerate(table):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0 or index == len(table) - 2:
            lines.append("  ".join("-" * w for w in widths))
    lines.append(f"quota used: {report.quota_text}")
    if report.counter_note:
        lines.append(report.counter_note)
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} invalid records (see stderr)")
    return "\n".join(lines)


def render_csv(report: UsageReport) -> str:
    """The per-action rows (and total) as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows(report))
    return buffer.getvalue()


def check_chart_path(path: str | Path) -> Path:
    """The chart's file: a .png name in a directory that exists (checked before any query)."""
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise ReportError(f"--chart {str(path)!r}: expected a file name ending in .png")
    if not target.parent.is_dir():
        raise ReportError(f"--chart {str(path)!r}: directory {str(target.parent)!r} does not exist")
    return target


def write_chart(report: UsageReport, path: str | Path) -> Path:
    """A PNG bar chart of the daily cost (needs matplotlib, imported here only)."""
    target = check_chart_path(path)
    try:
        import matplotlib  # noqa: PLC0415 - optional, heavy: only for --chart

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise ReportError("--chart needs matplotlib: pip install -r requirements-dev.txt") from None
    days = list(report.daily_cost)
    values = [float(report.daily_cost[d]) for d in days]
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    try:
        ax.bar([d.day for d in days], values, color="#3366cc")
        ax.set_xlabel(f"day of {report.month} (UTC)")
        ax.set_ylabel("cost (USD)")
        ax.set_title(
            f"Daily cost of {report.customer_id}, {report.month}: "
            f"total {round_cents(report.total.cost)} USD"
        )
        ax.set_xticks([d.day for d in days])
        ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        fig.savefig(target, format="png")
    finally:
        plt.close(fig)
    return target


def _usage_query(client: Any, customer_id: str, month: str, settings: Settings) -> Any:
    """The report's query (customer_id ==, start <= timestamp < end, ordered by timestamp): built
    by `shared.queries`, where its index is declared."""
    return queries.usage_report(client, customer_id, month, settings=settings)


def fetch_usage(
    client: Any, customer_id: str, month: str, settings: Settings | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any] | None, datetime | None]:
    """The month's usage records of a customer (one query), the customer document and its
    update time."""
    settings = settings or get_settings()
    timeout = settings.firestore_timeout_seconds
    query = _usage_query(client, customer_id, month, settings)
    records = [(snap.id, snap.to_dict()) for snap in query.stream(timeout=timeout)]
    customer = (
        client.collection(settings.customers_collection).document(customer_id).get(timeout=timeout)
    )
    if not customer.exists:
        return records, None, None
    return records, customer.to_dict(), customer.update_time


def report_json(report: UsageReport) -> dict[str, Any]:
    """`usage report --json` (docs/cli.md): amounts as decimal strings, exact as summed."""

    def totals(t: Totals) -> dict[str, Any]:
        return {
            "records": t.records,
            "billable": t.billable,
            "episodes": t.episodes,
            "compute_minutes": _num(t.compute_minutes),
            "storage_gb": _num(t.storage_gb),
            "cost_usd": str(round_cents(t.cost)),
        }

    return {
        "customer_id": report.customer_id,
        "month": report.month,
        "customer_exists": report.customer_exists,
        "actions": {name: totals(t) for name, t in report.actions.items()},
        "total": totals(report.total),
        "quota": {
            "scenes_generated": report.scenes_generated,
            "monthly_scene_quota": report.quota,
            "unlimited": is_unlimited(report.quota),
            "customer_counter": report.counter,
            "started_month_at": report.started_at,
        },
        "daily_cost_usd": {
            day.isoformat(): str(round_cents(v)) for day, v in report.daily_cost.items()
        },
        "skipped": list(report.skipped),
    }
