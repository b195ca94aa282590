"""What each console page reads, through the operators' read modules, made into view models.

One way to read each thing: customers, records, rejections and alerts come from `ops.inspect`
(one cursor page each), a customer-month's totals from `ops.usage_sums` (Firestore's counts
and sums of the records `blueprint usage report` sums, never the records), month summaries
from `ops.summaries`, the month's download from `ops.export` (the code of `blueprint usage
export`), feature decisions from `shared.config_service.CustomerConfigService`. Nothing here
writes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final

from ops import export, inspect, summaries, usage_report, usage_sums
from ops.console.chart import chart_geometry, render_svg
from ops.console.models import (
    CustomerRow,
    Decision,
    MonthRow,
    Pager,
    Problem,
    ProblemGroup,
    QuotaBar,
    Sort,
    Status,
    Totals,
    contract_status,
    group_problems,
    shown_amount,
    shown_float,
)
from ops.replay import KINDS
from shared.models import Customer
from shared.pricing import round_cents
from shared.quota import counter_period
from shared.settings import Settings
from shared.times import month_bounds, month_of, previous_month

PAGE_SIZE: Final = 50
RECORDS_PAGE_SIZE: Final = 50
PROBLEMS_PAGE_SIZE: Final = 100
CUSTOMER_REJECTIONS: Final = inspect.DEFAULT_PAGE_SIZE
"""How many of a month's rejections a customer's page lists, the newest first."""
MONTHS_PICKED: Final = 12
"""How many months the month picker offers, the current one first."""


def months_until(month: str, count: int = MONTHS_PICKED) -> list[str]:
    """`month` and the `count - 1` months before it, newest first."""
    out = [month]
    while len(out) < count:
        out.append(previous_month(out[-1]))
    return out


def _scenes(customer: Customer | None, summary: summaries.MonthSummary | None, month: str) -> int:
    """The month's scenes: the fold's summary, else the customer's own counters for it."""
    if summary is not None and summary.scenes is not None:
        return summary.scenes
    if customer is None:
        return 0
    if counter_period(customer) == month:
        return customer.scenes_generated_this_month or 0
    return 0


def customer_row(
    item: inspect.CustomerItem, summary: summaries.MonthSummary | None, month: str, now: datetime
) -> CustomerRow:
    """A customers-page line from the customer document and its month summary. Pure."""
    model = item.customer
    quota = model.monthly_scene_quota if model else None
    status = (
        contract_status(model.contract_start, model.contract_end, now) if model else Status.INVALID
    )
    times = [t for t in (summary.folded_at if summary else None, model and model.updated_at) if t]
    return CustomerRow(
        id=item.id,
        tier=item.tier,
        quota=QuotaBar(_scenes(model, summary, month), quota),
        cost_usd=summary.cost_usd if summary else None,
        status=status,
        last_activity=max(times) if times else None,
        problems=tuple(str(p) for p in item.problems),
    )


@dataclass(frozen=True, slots=True)
class CustomersView:
    """The customers page."""

    month: str
    rows: tuple[CustomerRow, ...]
    pager: Pager
    sort: Sort
    prefix: str


def customers_view(
    client: Any,
    *,
    now: datetime,
    cursor: str | None = None,
    prefix: str | None = None,
    sort: Sort | None = None,
    page_size: int = PAGE_SIZE,
    settings: Settings | None = None,
) -> CustomersView:
    """One page of customers (by id) with this month's use: a page of customer documents and
    one batched read of their month summaries."""
    month = month_of(now)
    page = inspect.customers(
        client, page_size=page_size, cursor=cursor, prefix=prefix or None, settings=settings
    )
    found = summaries.month_summaries(client, (i.id for i in page.items), month, settings=settings)
    rows = [customer_row(item, found.get(item.id), month, now) for item in page.items]
    sort = sort or Sort()
    return CustomersView(
        month, tuple(sort.apply(rows)), Pager(page.next_cursor, cursor is None), sort, prefix or ""
    )


@dataclass(frozen=True, slots=True)
class CustomerView:
    """A customer's page for one month."""

    customer_id: str
    month: str
    months: tuple[str, ...]
    exists: bool
    tier: str | None
    status: Status | None
    quota: QuotaBar
    actions: tuple[Totals, ...]
    total: Totals
    cost_chart: str
    records_chart: str
    records: tuple[inspect.UsageItem, ...]
    records_pager: Pager
    alerts: tuple[inspect.AlertItem, ...]
    problems: tuple[ProblemGroup, ...]
    problems_limit: int | None
    """How many rejections the page lists when the month has more (the newest), else None."""
    decisions: tuple[Decision, ...]
    """Empty when the configuration could not be read (`config_unread`)."""
    config_problems: tuple[str, ...]
    config_unread: bool
    """Firestore did not answer the configuration read: the features are unknown."""


def _totals(t: usage_report.Totals) -> Totals:
    return Totals(
        t.label,
        t.records,
        t.billable,
        t.episodes,
        shown_amount(t.compute_minutes),
        shown_amount(t.storage_gb),
        round_cents(t.cost),
    )


def _charts(report: usage_report.UsageReport) -> tuple[str, str]:
    days = sorted(report.daily_cost)
    cost: dict[str, dict[date, Decimal]] = {}
    count: dict[str, dict[date, Decimal]] = {}
    for day, actions in report.daily_actions.items():
        for action, t in actions.items():
            cost.setdefault(action, {})[day] = t.cost
            count.setdefault(action, {})[day] = Decimal(t.records)
    title = f"{report.customer_id} in {report.month}"
    return (
        str(render_svg(chart_geometry(days, cost), title=f"cost by day, {title}", unit="usd")),
        str(render_svg(chart_geometry(days, count), title=f"records by day, {title}", unit="n")),
    )


def _decisions(
    client: Any, customer_id: str, settings: Settings | None
) -> tuple[tuple[Decision, ...], tuple[str, ...]] | None:
    """The customer's feature decisions and configuration problems; None when Firestore did
    not answer (the service would answer tier defaults, marked stale: not this customer's)."""
    from shared.config.adapters import FirestoreConfigReader  # noqa: PLC0415
    from shared.config_service import CustomerConfigService  # noqa: PLC0415

    reader = FirestoreConfigReader(settings=settings, client=client)
    service = CustomerConfigService(reader, live=False, settings=settings)
    config = service.get_customer_config(customer_id)
    if config.stale:
        return None
    decisions = tuple(
        Decision(d.feature.value, d.enabled, d.explain()) for d in config.features.values()
    )
    return decisions, tuple(str(p) for p in config.problems)


def problem_of(item: inspect.RejectionItem) -> Problem:
    """A stored rejection as the console lists it. Pure."""
    replayed = item.data.get("replay_outcome")
    return Problem(
        item.id,
        item.kind or "(no kind)",
        item.reason,
        item.customer_id,
        item.rejected_at,
        replayed if isinstance(replayed, str) else None,
    )


def customer_view(
    client: Any,
    customer_id: str,
    *,
    month: str,
    now: datetime,
    cursor: str | None = None,
    settings: Settings | None = None,
) -> CustomerView | None:
    """The customer's month, or None when there is neither a customer document nor a record
    in the month (a typo, most likely). Totals and charts are Firestore's counts and sums of
    the month's records (`usage_sums.aggregate_usage`): the page reads one page of records,
    however many the month has."""
    item = inspect.customer(client, customer_id, settings=settings)
    report = usage_sums.aggregate_usage(
        client,
        customer_id,
        month,
        until=now,
        settings=settings,
        customer=(item.data, item.update_time) if item else (None, None),
    )
    if not report.customer_exists and report.total.records == 0:
        return None
    status = None
    if item is not None:
        model = item.customer
        status = (
            contract_status(model.contract_start, model.contract_end, now)
            if model
            else Status.INVALID
        )
    page = inspect.usage(
        client, customer_id, month, page_size=RECORDS_PAGE_SIZE, cursor=cursor, settings=settings
    )
    alerts = inspect.alerts(client, customer_id=customer_id, month=month, settings=settings)
    start, end = month_bounds(month)
    rejected = inspect.rejections(
        client, customer_id=customer_id, since=start, before=end, settings=settings
    )
    until = end if end <= now else None  # a past month's replay ends where its list does
    listed = [problem_of(r) for r in rejected.items]
    groups = group_problems(listed, since=start, before=until, customer_id=customer_id, kinds=KINDS)
    config = _decisions(client, customer_id, settings)
    decisions, config_problems = config or ((), ())
    cost_chart, records_chart = _charts(report)
    return CustomerView(
        customer_id=customer_id,
        month=month,
        months=tuple(months_until(month_of(now))),
        exists=report.customer_exists,
        tier=item.tier if item else None,
        status=status,
        quota=QuotaBar(report.scenes_used, report.quota, report.started_at),
        actions=tuple(_totals(t) for t in report.actions.values()),
        total=_totals(report.total),
        cost_chart=cost_chart,
        records_chart=records_chart,
        records=page.items,
        records_pager=Pager(page.next_cursor, cursor is None),
        alerts=alerts.items,
        problems=tuple(groups),
        problems_limit=CUSTOMER_REJECTIONS if rejected.next_cursor is not None else None,
        decisions=decisions,
        config_problems=config_problems,
        config_unread=config is None,
    )


@dataclass(frozen=True, slots=True)
class ProblemsView:
    """The problems page: one page of rejections, newest first, grouped by kind."""

    since: datetime
    kind: str | None
    groups: tuple[ProblemGroup, ...]
    pager: Pager
    kinds: tuple[str, ...]


def default_since(now: datetime) -> datetime:
    """The problems page's default start: the current month's first instant (UTC)."""
    return month_bounds(month_of(now))[0]


def problems_view(
    client: Any,
    *,
    since: datetime,
    kind: str | None = None,
    cursor: str | None = None,
    page_size: int = PROBLEMS_PAGE_SIZE,
    settings: Settings | None = None,
) -> ProblemsView:
    """Rejections and dead letters since `since` (of one `kind` if given): one page."""
    page = inspect.rejections(
        client, kind=kind, since=since, page_size=page_size, cursor=cursor, settings=settings
    )
    groups = group_problems([problem_of(r) for r in page.items], since=since, kinds=KINDS)
    return ProblemsView(since, kind, tuple(groups), Pager(page.next_cursor, cursor is None), KINDS)


@dataclass(frozen=True, slots=True)
class MonthView:
    """The month page: one page of customers with the fold's summary of the month."""

    month: str
    months: tuple[str, ...]
    rows: tuple[MonthRow, ...]
    pager: Pager
    page_cost: Decimal
    prefix: str


def month_view(
    client: Any,
    month: str,
    *,
    now: datetime,
    cursor: str | None = None,
    prefix: str | None = None,
    page_size: int = PAGE_SIZE,
    settings: Settings | None = None,
) -> MonthView:
    """A page of customers (by id; of an id prefix if given) with their month summaries."""
    export.check_month(month, now)
    page = inspect.customers(
        client, page_size=page_size, cursor=cursor, prefix=prefix or None, settings=settings
    )
    found = summaries.month_summaries(client, (i.id for i in page.items), month, settings=settings)
    rows: list[MonthRow] = []
    for item in page.items:
        s = found.get(item.id)
        model = item.customer
        rows.append(
            MonthRow(
                item.id,
                item.tier,
                QuotaBar(_scenes(model, s, month), model.monthly_scene_quota if model else None),
                s.records if s else None,
                s.episodes if s else None,
                shown_float(s.compute_minutes if s else None),
                shown_float(s.storage_gb if s else None),
                s.cost_usd if s else None,
            )
        )
    cost = sum((r.cost_usd for r in rows if r.cost_usd is not None), Decimal(0))
    return MonthView(
        month,
        tuple(months_until(month_of(now))),
        tuple(rows),
        Pager(page.next_cursor, cursor is None),
        round_cents(cost),
        prefix or "",
    )


def export_text(
    client: Any, month: str, fmt: str, *, now: datetime, settings: Settings | None = None
) -> str:
    """The month's per-customer totals as `blueprint usage export --month M --format FMT`
    writes them (`fmt`: csv or jsonl)."""
    rows = export.customer_totals(client, month, now=now, settings=settings)
    out = io.StringIO()
    if fmt == "csv":
        export.write_csv(rows, out, export.CustomerTotals)
    else:
        export.write_jsonl(rows, out)
    return out.getvalue()


__all__ = [
    "CustomerView",
    "CustomersView",
    "MonthView",
    "ProblemsView",
    "customer_row",
    "customer_view",
    "customers_view",
    "default_since",
    "export_text",
    "month_view",
    "months_until",
    "problem_of",
    "problems_view",
]
