"""Paged listings for the operators (`blueprint inspect`, `usage export`, `flags rollout`).

Part of `shared.queries` (which re-exports every name here): each builder declares its shape,
so `firestore.indexes.json` covers these queries too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from shared import names
from shared.query_filters import aware as _aware
from shared.query_filters import equal as _equal
from shared.query_filters import time_range as _time_range
from shared.query_shapes import DOCUMENT_ID, Direction, QueryShape, declares
from shared.settings import Settings, get_settings
from shared.times import month_bounds

if TYPE_CHECKING:
    from google.cloud.firestore_v1.client import Client
    from google.cloud.firestore_v1.query import Query

_ASC = Direction.ASCENDING

# ---- paged listings (ops: `blueprint inspect`, `usage export`, `flags rollout`) -------------
# Each orders on the document id last, so a page ends at a unique position: the cursor is the
# ordered values of the page's last document and the next page starts after it.

_DESC = Direction.DESCENDING


def _paged(query: Any, after: Sequence[Any] | None, limit: int | None) -> Query:
    """Start after the cursor values (one per ordered field, the document id last), limit."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit}: expected a positive number or None")
    if after is not None:
        query = query.start_after(list(after))
    if limit is not None:
        query = query.limit(limit)
    result: Query = query
    return result


def _by_id(query: Any, direction: Direction = _ASC) -> Any:
    from google.cloud.firestore_v1.field_path import FieldPath  # noqa: PLC0415 (cheap import)

    return query.order_by(FieldPath.document_id(), direction=direction.value)


def _shapes(collection: str, order: Any, *equalities: tuple[str, ...]) -> tuple[QueryShape, ...]:
    return tuple(QueryShape(collection, equality=e, order=order) for e in equalities)


USAGE_PAGED = _shapes(
    names.USAGE_TRACKING,
    (("timestamp", _ASC), (DOCUMENT_ID, _ASC)),
    (),
    ("customer_id",),
    ("customer_id", "action"),
)


@declares(*USAGE_PAGED)
def usage_page(
    client: Client,
    month: str,
    customer_id: str | None = None,
    action: str | None = None,
    *,
    after: Sequence[Any] | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> Query:
    """Usage records of calendar month `YYYY-MM` (UTC), of one customer (and action) or of
    every customer, oldest first; cursor values `(timestamp, document id)`. Across customers
    the single-field index on `timestamp` serves it; per customer the composite index
    (customer_id, timestamp)."""
    if action is not None and customer_id is None:
        raise ValueError(f"action={action!r} needs a customer_id (no index serves it alone)")
    settings = settings or get_settings()
    start, end = month_bounds(month)
    query: Any = client.collection(settings.usage_tracking_collection)
    if customer_id is not None:
        query = _equal(query, "customer_id", customer_id)
    if action is not None:
        query = _equal(query, "action", action)
    return _paged(_by_id(_time_range(query, "timestamp", start, end)), after, limit)


REJECTIONS_PAGED = _shapes(
    names.USAGE_REJECTIONS,
    (("rejected_at", _DESC), (DOCUMENT_ID, _DESC)),
    (),
    ("kind",),
    ("customer_id",),
    ("kind", "customer_id"),
)


@declares(*REJECTIONS_PAGED)
def rejections_page(
    client: Client,
    kind: str | None = None,
    customer_id: str | None = None,
    since: dt.datetime | None = None,
    *,
    before: dt.datetime | None = None,
    after: Sequence[Any] | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> Query:
    """`usage_rejections` (dead letters are kind `dead_letter`), newest first, optionally of one
    kind and/or customer and with `since <= rejected_at < before`; cursor `(rejected_at,
    document id)`. Both bounds are on the ordered field: the same index serves them."""
    span = (since, before)
    return _rejections(client, kind, customer_id, span, _DESC, after, limit, settings)


def _rejections(  # noqa: PLR0917 - the two public pages' arguments, passed on
    client: Client,
    kind: str | None,
    customer_id: str | None,
    span: tuple[dt.datetime | None, dt.datetime | None],
    direction: Direction,
    after: Sequence[Any] | None,
    limit: int | None,
    settings: Settings | None,
) -> Query:
    """`usage_rejections` filtered by kind / customer / `since <= rejected_at < before` (`span`,
    either bound None for none), in `direction` by `(rejected_at, document id)`."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    settings = settings or get_settings()
    query: Any = client.collection(settings.usage_rejections_collection)
    if kind is not None:
        query = _equal(query, "kind", kind)
    if customer_id is not None:
        query = _equal(query, "customer_id", customer_id)
    since, before = span
    if since is not None:
        query = query.where(filter=FieldFilter("rejected_at", ">=", _aware("since", since)))
    if before is not None:
        query = query.where(filter=FieldFilter("rejected_at", "<", _aware("before", before)))
    query = query.order_by("rejected_at", direction=direction.value)
    return _paged(_by_id(query, direction), after, limit)


REPLAY_PAGED = _shapes(
    names.USAGE_REJECTIONS,
    (("rejected_at", _ASC), (DOCUMENT_ID, _ASC)),
    ("kind",),
    ("kind", "customer_id"),
)


@declares(*REPLAY_PAGED)
def replay_page(
    client: Client,
    kind: str,
    customer_id: str | None = None,
    since: dt.datetime | None = None,
    *,
    before: dt.datetime | None = None,
    after: Sequence[Any] | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> Query:
    """`usage_rejections` of one kind to deliver again (`blueprint usage replay`), optionally
    of one customer and with `since <= rejected_at < before`, OLDEST first (events are replayed
    in the order they were refused); cursor `(rejected_at, document id)`. Both bounds are on
    the ordered field: the same index serves them."""
    span = (since, before)
    return _rejections(client, kind, customer_id, span, _ASC, after, limit, settings)


ALERTS_PAGED = _shapes(
    names.QUOTA_ALERTS,
    ((DOCUMENT_ID, _ASC),),
    (),
    ("customer_id",),
    ("month",),
    ("customer_id", "month"),
)


@declares(*ALERTS_PAGED)
def alerts_page(
    client: Client,
    customer_id: str | None = None,
    month: str | None = None,
    *,
    after: Sequence[Any] | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> Query:
    """`quota_alerts` markers by document id (`{customer}_{month}_{percent}`), optionally of one
    customer and/or month: equality filters merge single-field indexes, no composite needed."""
    settings = settings or get_settings()
    query: Any = client.collection(settings.quota_alerts_collection)
    if customer_id is not None:
        query = _equal(query, "customer_id", customer_id)
    if month is not None:
        month_bounds(month)  # validates the format
        query = _equal(query, "month", month)
    return _paged(_by_id(query), after, limit)


RESETS_NEWEST_FIRST = QueryShape(
    names.QUOTA_RESETS, order=(("period", _DESC), (DOCUMENT_ID, _DESC))
)


@declares(RESETS_NEWEST_FIRST)
def resets_page(
    client: Client,
    *,
    after: Sequence[Any] | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> Query:
    """`quota_resets/{YYYY-MM}` audit documents, newest month first (on their `period` field:
    Firestore scans document ids ascending only); cursor `(period, document id)`."""
    settings = settings or get_settings()
    query = client.collection(settings.quota_resets_collection).order_by(
        "period", direction=_DESC.value
    )
    return _paged(_by_id(query, _DESC), after, limit)


ROLLED_OUT: Final = "rolled_out"
"""Subcollection `feature_rollouts/{feature}/rolled_out/{customer}`: one marker per customer
whose flag a gradual rollout turned on (what `--undo` reverts)."""
ROLLED_OUT_BY_ID = QueryShape(ROLLED_OUT, order=((DOCUMENT_ID, _ASC),))


@declares(ROLLED_OUT_BY_ID)
def rolled_out_page(
    client: Client,
    feature: str,
    *,
    after: Sequence[Any] | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> Query:
    """The customers a rollout of `feature` turned on, by customer id; cursor `(id,)`."""
    settings = settings or get_settings()
    parent = client.collection(settings.feature_rollouts_collection).document(feature)
    return _paged(_by_id(parent.collection(ROLLED_OUT)), after, limit)
