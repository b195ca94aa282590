"""The human output of `blueprint inspect ...`: one column declaration per kind, one renderer.

A column is a header and a cell function over an item of `ops.inspect` (its stored `data`
mostly: an invalid document still shows what it holds). `MISSING` marks a value the document
does not have; an `optional` column (a replay's outcome) is shown only when a row has a value.
`--json` does not come here: it prints the items as stored (`ops.cli.inspect`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

from shared.times import to_utc

if TYPE_CHECKING:
    from rich.table import Table

MISSING: Final = "-"
VALUE_LIMIT: Final = 40
"""Characters of a rejected value shown (the document keeps it whole: `--json`)."""
REASON_LIMIT: Final = 100
SHORT_ID: Final = 12
"""Characters of a long record id shown: the tail, where the id's hash is."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a kind's table."""

    header: str
    cell: Callable[[Any], str]
    justify: Literal["left", "right"] = "left"
    optional: bool = False
    """Shown only when some row has a value (not MISSING)."""


# ---- values ---------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def cut(text: str, limit: int) -> str:
    """`text`, at most `limit` characters (an ellipsis says it was cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def as_text(value: Any) -> str:
    """A stored value as a cell: strings as they are, MISSING for None."""
    if value is None:
        return MISSING
    if isinstance(value, datetime):
        return as_time(value)
    return value if isinstance(value, str) else repr(value)


def as_time(value: Any) -> str:
    """A time in UTC to the second: `2025-01-10 14:30:00Z`."""
    if isinstance(value, datetime):
        utc = to_utc(value)
        return utc.strftime("%Y-%m-%d %H:%M:%SZ") if utc is not None else repr(value)
    return as_text(value)


def as_count(value: Any) -> str:
    """A whole number with thousands separators."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return as_text(value)


def as_amount(value: Any) -> str:
    """A measured quantity (minutes, GB): up to 3 decimals, no trailing zeros."""
    if _number(value):
        text = f"{value:,.3f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return as_text(value)


def dollars(cents: int) -> str:
    """Integer cents as dollars to the cent: 123 -> `$1.23`, 123456 -> `$1,234.56`."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def cents_of(value: Any) -> int | None:
    """A stored USD amount (`estimated_cost`, rounded to cents when written) in integer cents:
    exactly, through its decimal text, as `functions.usage.records.cost_cents` counts them."""
    if not _number(value) or not math.isfinite(value):
        return None
    return int((Decimal(repr(value)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def short_id(doc_id: str) -> str:
    """A long record id as its last SHORT_ID characters (after an ellipsis)."""
    return doc_id if len(doc_id) <= SHORT_ID + 1 else "…" + doc_id[-SHORT_ID:]


def field(name: str, show: Callable[[Any], str] = as_text) -> Callable[[Any], str]:
    """The cell of the stored field `name`."""

    def cell(item: Any) -> str:
        return show(item.data.get(name))

    return cell


def _doc_id(item: Any) -> str:
    return str(item.id)


# ---- what an operator asks of each kind ------------------------------------------------------


def _utc(value: Any) -> datetime | None:
    return to_utc(value) if isinstance(value, datetime) else None


def _quota(item: Any) -> str:
    quota = item.data.get("monthly_scene_quota")
    return "unlimited" if quota is None or quota == -1 else as_count(quota)


def contract_status(data: Mapping[str, Any], now: datetime) -> str:
    """`active`, `not started`, `ended`, or MISSING without contract dates."""
    start, end = _utc(data.get("contract_start")), _utc(data.get("contract_end"))
    if start is None and end is None:
        return MISSING
    if start is not None and now < start:
        return "not started"
    if end is not None and now >= end:
        return "ended"
    return "active"


def _customer_status(item: Any) -> str:
    problems = getattr(item, "problems", ())
    if problems:
        return "invalid: " + ", ".join(sorted({p.field for p in problems}))
    return contract_status(item.data, datetime.now(UTC))


def _cost(item: Any) -> str:
    cents = cents_of(item.data.get("estimated_cost"))
    return dollars(cents) if cents is not None else as_text(item.data.get("estimated_cost"))


def _first_error(item: Any) -> Mapping[str, Any]:
    errors = item.data.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    return first if isinstance(first, Mapping) else {}


def _error_field(item: Any) -> str:
    errors = item.data.get("errors")
    more = len(errors) - 1 if isinstance(errors, list) else 0
    shown = as_text(_first_error(item).get("field"))
    return f"{shown} (+{more})" if more > 0 else shown


def _error_value(item: Any) -> str:
    return cut(as_text(_first_error(item).get("value")), VALUE_LIMIT)


def _reason(item: Any) -> str:
    return cut(as_text(item.data.get("reason")), REASON_LIMIT)


def _threshold(item: Any) -> str:
    percent = item.data.get("threshold_percent")
    return f"{percent} %" if _number(percent) else as_text(percent)


ALERT_STATES: Final = {"published": "sent"}
"""A marker's `state` as an operator says it (`pending` stays `pending`)."""


def _alert_state(item: Any) -> str:
    state = item.data.get("state")
    return ALERT_STATES.get(state, as_text(state)) if isinstance(state, str) else as_text(state)


def _alert_time(item: Any) -> str:
    """When it was sent (published), else when the marker was made."""
    data = item.data
    return as_time(data.get("published_at") or data.get("created_at"))


def _reset_status(item: Any) -> str:
    data = item.data
    if data.get("finished_at") is not None:
        return "finished"
    return "in progress" if data.get("cursor") is not None else "started"


_REJECTION: Final = (
    Column("rejected at", field("rejected_at", as_time)),
    Column("kind", field("kind")),
    Column("customer", field("customer_id")),
    Column("field", _error_field),
    Column("value", _error_value),
    Column("reason", _reason),
    Column("replayed at", field("replayed_at", as_time), optional=True),
    Column("replay outcome", field("replay_outcome"), optional=True),
)

COLUMNS: Final[Mapping[str, Sequence[Column]]] = {
    "customers": (
        Column("id", _doc_id),
        Column("tier", field("bundle_tier")),
        Column("quota", _quota, "right"),
        Column("this month", field("scenes_generated_this_month", as_count), "right"),
        Column("total", field("total_scenes_generated", as_count), "right"),
        Column("contract start", field("contract_start", as_time)),
        Column("contract end", field("contract_end", as_time)),
        Column("status", _customer_status),
    ),
    "usage": (
        Column("record", lambda item: short_id(item.id)),
        Column("timestamp", field("timestamp", as_time)),
        Column("action", field("action")),
        Column("scene", field("scene_id")),
        Column("episodes", field("episodes_generated", as_count), "right"),
        Column("compute min", field("compute_minutes", as_amount), "right"),
        Column("storage GB", field("storage_gb", as_amount), "right"),
        Column("cost", _cost, "right"),
    ),
    "rejections": _REJECTION,
    "dead-letters": _REJECTION,
    "alerts": (
        Column("customer", field("customer_id")),
        Column("month", field("month")),
        Column("threshold", _threshold, "right"),
        Column("state", _alert_state),
        Column("time", _alert_time),
    ),
    "resets": (
        Column("month", _doc_id),
        Column("status", _reset_status),
        Column("reset", field("customers_reset", as_count), "right"),
        Column("skipped", field("skipped", as_count), "right"),
        Column("unlimited", field("unlimited", as_count), "right"),
        Column("invalid", field("invalid", as_count), "right"),
        Column("errors", field("errors", as_count), "right"),
        Column("runs", field("runs", as_count), "right"),
        Column("finished at", field("finished_at", as_time)),
    ),
}
"""The table of each `inspect` kind, by command name."""


def rows(kind: str, items: Sequence[Any]) -> tuple[list[Column], list[list[str]]]:
    """The columns shown for `items` of `kind` and their cells (optional empty ones dropped)."""
    columns = list(COLUMNS[kind])
    cells = [[c.cell(item) for c in columns] for item in items]
    keep = [
        i for i, c in enumerate(columns) if not c.optional or any(r[i] != MISSING for r in cells)
    ]
    return [columns[i] for i in keep], [[r[i] for i in keep] for r in cells]


def table(kind: str, items: Sequence[Any]) -> Table:
    """The rich table of `items` of `kind`, titled with the kind and the count."""
    from rich.table import Table  # noqa: PLC0415 - lazy: `blueprint --help` stays fast

    columns, cells = rows(kind, items)
    out = Table(title=f"{kind}: {len(items)}")
    for column in columns:
        out.add_column(column.header, justify=column.justify, overflow="fold")
    for row in cells:
        out.add_row(*row)
    return out
