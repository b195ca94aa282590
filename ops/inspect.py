"""The library behind `blueprint inspect ...`: paged listings of the suite's collections.

Each listing is one function over a Firestore client returning a `Page` (`ops.paging`): at most
`page_size` typed items and `next_cursor`, an opaque token to pass back for the next page (None
on the last page). Every query comes from `shared.queries`, where its index is declared; each
orders on the document id last, so pages never repeat or skip a document that stays put while
they are read. A token belongs to its listing and filters: passing it to another raises
`CursorError`. Nothing here prints; rendering is the CLI's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, TypeVar

from ops.paging import CursorError, ListingError, Page, fetch_page, iter_all
from shared import queries
from shared.errors import FieldError
from shared.firestore_values import plain_value
from shared.models import Customer, UsageRecord, document_errors
from shared.settings import Settings, get_settings
from shared.times import parse_month, to_utc

DEFAULT_PAGE_SIZE: Final = 50
DEAD_LETTER: Final = "dead_letter"
"""`usage_rejections` kind of a message Pub/Sub gave up delivering (decisions.md)."""

InspectError = ListingError  # a listing cannot be made as asked (a ValueError)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CustomerItem:
    """A `customers` document: the validated model, or the problems that kept it from one."""

    id: str
    data: Mapping[str, Any]
    customer: Customer | None
    problems: tuple[FieldError, ...] = ()
    update_time: datetime | None = None
    """When it was last written (read by `customer`; not by the listings)."""

    @property
    def tier(self) -> str | None:
        """The stored `bundle_tier` (as stored, even when the document is invalid)."""
        value = self.data.get("bundle_tier")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class UsageItem:
    """A `usage_tracking` record."""

    id: str
    data: Mapping[str, Any]
    record: UsageRecord | None
    problems: tuple[FieldError, ...] = ()


@dataclass(frozen=True, slots=True)
class RejectionItem:
    """A `usage_rejections` document (an invalid message, a conflicting reuse, a dead letter)."""

    id: str
    kind: str | None
    reason: str | None
    customer_id: str | None
    rejected_at: datetime | None
    data: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class AlertItem:
    """A `quota_alerts` marker: one per customer, month and threshold."""

    id: str
    customer_id: str | None
    month: str | None
    threshold_percent: int | None
    state: str | None
    data: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class ResetItem:
    """A `quota_resets/{YYYY-MM}` audit document of the monthly reset."""

    period: str
    customers_reset: int | None
    runs: int | None
    finished_at: datetime | None
    data: Mapping[str, Any] = field(repr=False)

    @property
    def id(self) -> str:
        """The document id (the period: the reset names its audit by its month)."""
        return self.period


def _data(snap: Any) -> dict[str, Any]:
    data: dict[str, Any] = plain_value(snap.to_dict() or {})
    return data


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _validated(item: Callable[..., T], model: Any) -> Callable[[Any], T]:
    """The maker of an item holding the validated `model`, or the problems that kept it."""

    def make(snap: Any) -> T:
        data = _data(snap)
        problems = tuple(document_errors(model, data))
        return item(snap.id, data, None if problems else model.model_validate(data), problems)

    return make


def _fields(
    item: Callable[..., T], *readers: tuple[str, Callable[[Any], Any]]
) -> Callable[[Any], T]:
    """The maker of an item of the document id, the named fields (read leniently: a wrong type
    reads as None) and the stored data."""

    def make(snap: Any) -> T:
        data = _data(snap)
        return item(snap.id, *(read(data.get(name)) for name, read in readers), data)

    return make


_customer_item = _validated(CustomerItem, Customer)
_usage_item = _validated(UsageItem, UsageRecord)
_rejection_item = _fields(
    RejectionItem,
    ("kind", _str),
    ("reason", _str),
    ("customer_id", _str),
    ("rejected_at", _time),
)
_alert_item = _fields(
    AlertItem,
    ("customer_id", _str),
    ("month", _str),
    ("threshold_percent", _int),
    ("state", _str),
)
_reset_item = _fields(ResetItem, ("customers_reset", _int), ("runs", _int), ("finished_at", _time))


def _by_id(snap: Any) -> list[Any]:
    return [snap.id]


def _field_then_id(name: str) -> Callable[[Any], list[Any]]:
    def position(snap: Any) -> list[Any]:
        return [snap.get(name), snap.id]

    return position


def _doc_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not value or "/" in value:
        raise InspectError(f"{name}={value!r}: expected a document id (not empty, no '/')")
    return value


def _month(value: str) -> str:
    try:
        return parse_month(value)
    except ValueError as exc:
        raise InspectError(str(exc)) from None


def _since(value: datetime | None) -> datetime | None:
    if value is not None and to_utc(value) is None:
        raise InspectError(f"since={value!r}: expected a timezone-aware time")
    return value


Query = Callable[[Sequence[Any] | None, int, Settings], Any]
"""`(after, limit, settings)` -> the Firestore query of one page (from `shared.queries`)."""


def _page(  # noqa: PLR0917 - a listing's own parts, in the order fetch_page takes them
    listing: str,
    filters: Mapping[str, Any],
    query: Query,
    position: Callable[[Any], list[Any]],
    make: Callable[[Any], T],
    paging: tuple[int, str | None, Settings | None],
) -> Page[T]:
    """One page of a listing: `paging` is the caller's (page_size, cursor, settings)."""
    page_size, cursor, given = paging
    settings = given or get_settings()
    return fetch_page(
        listing,
        filters,
        lambda after, limit: query(after, limit, settings),
        position,
        make,
        page_size=page_size,
        cursor=cursor,
        timeout=settings.firestore_timeout_seconds,
    )


# ---- listings ------------------------------------------------------------------------------


def customer(
    client: Any, customer_id: str, *, settings: Settings | None = None
) -> CustomerItem | None:
    """One customer document, or None when there is none."""
    settings = settings or get_settings()
    ref = client.collection(settings.customers_collection).document(
        _doc_id("customer_id", customer_id)
    )
    snap = ref.get(timeout=settings.firestore_timeout_seconds)
    if not snap.exists:
        return None
    return replace(_customer_item(snap), update_time=snap.update_time)


def customers(
    client: Any,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    settings: Settings | None = None,
    prefix: str | None = None,
) -> Page[CustomerItem]:
    """Every customer, by id; with `prefix`, those whose id starts with it."""
    filters = {"prefix": _doc_id("prefix", prefix)} if prefix else {}

    def query(after: Sequence[Any] | None, limit: int, settings: Settings) -> Any:
        first = after[0] if after else None
        return queries.customers_by_id(
            client, first, limit=limit, settings=settings, prefix=prefix or None
        )

    paging = (page_size, cursor, settings)
    return _page("customers", filters, query, _by_id, _customer_item, paging)


def usage(
    client: Any,
    customer_id: str,
    month: str,
    *,
    action: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    settings: Settings | None = None,
) -> Page[UsageItem]:
    """A customer's usage records of calendar month `YYYY-MM` (UTC), oldest first, optionally
    of one action."""
    filters = {"customer_id": _doc_id("customer_id", customer_id), "month": _month(month)}
    filters["action"] = action or ""

    def query(after: Sequence[Any] | None, limit: int, settings: Settings) -> Any:
        return queries.usage_page(
            client, month, customer_id, action, after=after, limit=limit, settings=settings
        )

    paging = (page_size, cursor, settings)
    return _page("usage", filters, query, _field_then_id("timestamp"), _usage_item, paging)


def rejections(
    client: Any,
    *,
    kind: str | None = None,
    customer_id: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    settings: Settings | None = None,
) -> Page[RejectionItem]:
    """`usage_rejections`, newest first, optionally of one kind, one customer, since a time
    and before another. Documents without `rejected_at` (the server stamps every one) are not
    listed."""
    filters = {
        "kind": kind or "",
        "customer_id": _doc_id("customer_id", customer_id) if customer_id else "",
        "since": _since(since) or "",
    }
    if before is not None:
        filters["before"] = _since(before) or ""

    def query(after: Sequence[Any] | None, limit: int, settings: Settings) -> Any:
        return queries.rejections_page(
            client,
            kind,
            customer_id,
            since,
            before=before,
            after=after,
            limit=limit,
            settings=settings,
        )

    paging = (page_size, cursor, settings)
    position = _field_then_id("rejected_at")
    return _page("rejections", filters, query, position, _rejection_item, paging)


def dead_letters(
    client: Any,
    *,
    customer_id: str | None = None,
    since: datetime | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    settings: Settings | None = None,
) -> Page[RejectionItem]:
    """Dead letters: `usage_rejections` of kind `dead_letter`, newest first."""
    return rejections(
        client,
        kind=DEAD_LETTER,
        customer_id=customer_id,
        since=since,
        page_size=page_size,
        cursor=cursor,
        settings=settings,
    )


def alerts(
    client: Any,
    *,
    customer_id: str | None = None,
    month: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    settings: Settings | None = None,
) -> Page[AlertItem]:
    """`quota_alerts` markers by id (customer, month, threshold), optionally filtered."""
    filters = {
        "customer_id": _doc_id("customer_id", customer_id) if customer_id else "",
        "month": _month(month) if month else "",
    }

    def query(after: Sequence[Any] | None, limit: int, settings: Settings) -> Any:
        return queries.alerts_page(
            client, customer_id, month, after=after, limit=limit, settings=settings
        )

    paging = (page_size, cursor, settings)
    return _page("alerts", filters, query, _by_id, _alert_item, paging)


def resets(
    client: Any,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    settings: Settings | None = None,
) -> Page[ResetItem]:
    """The monthly reset's audit documents (their `period`, as the reset writes), newest first."""

    def query(after: Sequence[Any] | None, limit: int, settings: Settings) -> Any:
        return queries.resets_page(client, after=after, limit=limit, settings=settings)

    paging = (page_size, cursor, settings)
    return _page("resets", {}, query, _field_then_id("period"), _reset_item, paging)


__all__ = [
    "DEAD_LETTER",
    "AlertItem",
    "CursorError",
    "CustomerItem",
    "InspectError",
    "Page",
    "RejectionItem",
    "ResetItem",
    "UsageItem",
    "alerts",
    "customer",
    "customers",
    "dead_letters",
    "iter_all",
    "rejections",
    "resets",
    "usage",
]
