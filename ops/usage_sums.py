"""A customer's usage in one month summed by Firestore: counts and sums, never the records.

`ops.usage_report.fetch_usage` reads every record of the month (what `blueprint usage report`
sums); a hot customer has hundreds of thousands. `aggregate_usage` asks Firestore for counts and
sums instead (aggregation queries, `shared.queries.usage_sums`): billed one read per 1,000 index
entries matched, no record read. It makes the same `UsageReport` (`report_from_sums`, pure):
counts and cents are exact; compute minutes and storage GB are Firestore's float sums, which may
differ from the exact sums of `build_report` and `blueprint usage export` in their last digits
(show them rounded: `ops.console.models.shown_amount`). The console's customer page reads this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from ops.usage_report import Totals, UsageReport, apply_customer, month_days, parse_month
from shared import queries
from shared.counters import SCENE_GENERATED, Sums
from shared.pricing import to_decimal
from shared.settings import Settings, get_settings

AGGREGATION_WORKERS: Final = 8
"""Aggregation requests one report keeps in flight (one per action and day, see
`aggregate_usage`)."""
DAY_SUM_FIELDS: Final = ("cost_cents",)
"""What a day's request sums besides its count: the charts show records and cost."""


@dataclass(frozen=True, slots=True)
class ActionSums:
    """One action's records in a customer-month, as aggregation requests answered."""

    action: str
    month: Sums
    """Count and sums over the month (`scenes_generated` is not asked: 0)."""
    billable: int = 0
    days: Mapping[date, Sums] = field(default_factory=dict)
    """Per day (UTC) asked: the count and `cost_cents`."""


def _usd(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _line(label: str, sums: Sums, billable: int = 0) -> Totals:
    return Totals(
        label,
        sums.records,
        billable,
        sums.episodes_generated,
        to_decimal(sums.compute_minutes),
        to_decimal(sums.storage_gb),
        _usd(sums.cost_cents),
    )


def report_from_sums(
    customer_id: str,
    month: str,
    actions: Iterable[ActionSums],
    customer: Mapping[str, Any] | None = None,
    last_write: datetime | None = None,
) -> UsageReport:
    """A report of aggregation answers (`aggregate_usage`): the same lines as `build_report`'s
    of the same records. Pure. An action without records in the month has no line."""
    report = UsageReport(customer_id, month)
    for day in month_days(month):
        report.daily_cost[day] = Decimal("0.00")
    for item in sorted(actions, key=lambda a: a.action):
        if item.month.records <= 0:
            continue
        line = _line(item.action, item.month, item.billable)
        report.actions[item.action] = line
        report.total.include(line)
        for day, sums in sorted(item.days.items()):
            if sums.records <= 0 or day not in report.daily_cost:
                continue
            report.daily_cost[day] += _usd(sums.cost_cents)
            report.daily_actions.setdefault(day, {})[item.action] = _line(item.action, sums)
    if SCENE_GENERATED in report.actions:
        report.scenes_generated = report.actions[SCENE_GENERATED].records
    report.daily_actions = dict(sorted(report.daily_actions.items()))
    apply_customer(report, customer, last_write)
    return report


def usage_actions(client: Any, customer_id: str, settings: Settings | None = None) -> list[str]:
    """The actions of a customer's records (of any month), in name order: one query per action
    reading one record's `action` (`shared.queries.usage_next_action`), plus one that finds
    nothing, however many records there are."""
    settings = settings or get_settings()
    found: list[str] = []
    while True:
        after = found[-1] if found else None
        query = queries.usage_next_action(client, customer_id, after, settings=settings)
        snaps = list(query.stream(timeout=settings.firestore_timeout_seconds))
        name = snaps[0].get("action") if snaps else None
        if not isinstance(name, str):  # `action > previous` only ever finds strings
            return found
        found.append(name)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def aggregate_usage(
    client: Any,
    customer_id: str,
    month: str,
    *,
    until: datetime | None = None,
    settings: Settings | None = None,
    workers: int = AGGREGATION_WORKERS,
    customer: tuple[Mapping[str, Any] | None, datetime | None] | None = None,
) -> UsageReport:
    """A customer's month summed by Firestore (`report_from_sums`), reading the customer
    document (unless `customer` gives it as read: its data and update time, or (None, None)
    when it does not exist) and one record per action (`usage_actions`), never the month's
    records.

    Aggregation requests, `workers` at a time: per action its count and sums over the month;
    then per action with records in the month its billable count, and its count and cost of
    each day of the month that has begun by `until` (None: every day; later days chart 0, the
    month's totals count them)."""
    settings = settings or get_settings()
    timeout = settings.firestore_timeout_seconds
    start, end = parse_month(month)
    if customer is None:  # not read by the caller: read it
        ref = client.collection(settings.customers_collection).document(customer_id)
        snap = ref.get(timeout=timeout)
        customer = (snap.to_dict(), snap.update_time) if snap.exists else (None, None)
    actions = usage_actions(client, customer_id, settings)
    days = [d for d in month_days(month) if until is None or _day_start(d) <= until]

    def sums(action: str, since: datetime, before: datetime, fields: Sequence[str]) -> Sums:
        query = queries.usage_sums(client, customer_id, action, since, before, settings=settings)
        return queries.aggregate(query, fields, timeout=timeout)

    def billable(action: str) -> int:
        query = queries.usage_billable(client, customer_id, action, start, end, settings=settings)
        return queries.aggregate(query, (), timeout=timeout).records

    # The first failed request fails the report: the requests still queued are cancelled and
    # the ones in flight are not waited for (their answers would be thrown away).
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        months = dict(
            zip(
                actions,
                pool.map(lambda a: sums(a, start, end, queries.USAGE_SUM_FIELDS), actions),
                strict=True,
            )
        )
        used = [a for a in actions if months[a].records > 0]
        billables = {a: pool.submit(billable, a) for a in used}
        daily = {
            (a, d): pool.submit(
                sums, a, _day_start(d), _day_start(d + timedelta(days=1)), DAY_SUM_FIELDS
            )
            for a in used
            for d in days
        }
        pending: list[Future[Any]] = [*billables.values(), *daily.values()]
        wait(pending, return_when=FIRST_EXCEPTION)
        answers = [
            ActionSums(
                a,
                months[a],
                billables[a].result(),
                {d: daily[a, d].result() for d in days},
            )
            for a in used
        ]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return report_from_sums(customer_id, month, answers, *customer)
