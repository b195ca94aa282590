"""The fold's month summaries (`usage_counters/{customer}_{YYYY-MM}`), read by id for a page.

A listing of customers shows each one's month without reading its records: the fold keeps one
summary per customer-month (docs/counters.md), so a page of N customers costs one `get_all` of
at most N summaries. Fields are read leniently (a missing or mistyped field reads as None):
the summary is the fold's, and this reader must not fail a page over one odd document.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.counters import counter_doc_id
from shared.settings import Settings, get_settings
from shared.times import parse_month


@dataclass(frozen=True, slots=True)
class MonthSummary:
    """A customer's month as the fold last summed it (the records are the exact source)."""

    customer_id: str
    month: str
    records: int | None
    scenes: int | None
    """`scenes_total`: the month's count for quota (legacy seed included)."""
    episodes: int | None
    cost_cents: int | None
    compute_minutes: float | None
    storage_gb: float | None
    folded_at: datetime | None
    """Server time of the fold's last write of it: usage was counted then."""

    @property
    def cost_usd(self) -> Decimal | None:
        """The month's cost in dollars, exact (the summary counts cents)."""
        return None if self.cost_cents is None else Decimal(self.cost_cents) / 100


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def summary_of(customer_id: str, month: str, data: dict[str, Any]) -> MonthSummary:
    """A summary document's data as a `MonthSummary`. Pure."""
    folded_at = data.get("folded_at")
    return MonthSummary(
        customer_id=customer_id,
        month=month,
        records=_int(data.get("records")),
        scenes=_int(data.get("scenes_total")),
        episodes=_int(data.get("episodes_generated")),
        cost_cents=_int(data.get("cost_cents")),
        compute_minutes=_float(data.get("compute_minutes")),
        storage_gb=_float(data.get("storage_gb")),
        folded_at=folded_at if isinstance(folded_at, datetime) else None,
    )


def month_summaries(
    client: Any,
    customer_ids: Iterable[str],
    month: str,
    *,
    settings: Settings | None = None,
) -> dict[str, MonthSummary]:
    """The month summaries of these customers that exist, by customer id: one batched read."""
    parse_month(month)
    settings = settings or get_settings()
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return {}
    collection = client.collection(settings.usage_counters_collection)
    refs = [collection.document(counter_doc_id(cid, month)) for cid in ids]
    by_doc = dict(zip((r.id for r in refs), ids, strict=True))
    found: dict[str, MonthSummary] = {}
    for snap in client.get_all(refs, timeout=settings.firestore_timeout_seconds):
        if snap.exists:
            cid = by_doc[snap.id]
            found[cid] = summary_of(cid, month, snap.to_dict() or {})
    return found


__all__ = ["MonthSummary", "month_summaries", "summary_of"]
