"""Every Firestore query the suite makes that filters or orders on more than a document id.

One module, so that `firestore.indexes.json` can be checked against it: each builder declares
the shape(s) of the query it returns (`QueryShape`: collection, equality fields, then ordered
fields), `composite_indexes()` derives the composite indexes those shapes need, and
`tests/unit/test_queries_indexes.py` proves that the declared shapes are the queries really
built, that every composite shape has its index in `firestore.indexes.json` and that the file
holds no index nobody uses (`python -m deploy indexes` prints the file). The shapes and the
index derivation live in `shared.query_shapes` (re-exported here).

Builders take a Firestore client and return a `Query`; the collection name comes from the
settings (`shared.settings`). Time ranges are half-open: `start <= timestamp < end`, UTC-aware.
Importing this module does not import the Firestore client library.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from shared import names
from shared.query_shapes import (
    BUILDERS,
    DOCUMENT_ID,
    CompositeIndex,
    Direction,
    QueryShape,
    composite_indexes,
    declares,
    indexes_file,
    shapes_of,
)
from shared.settings import Settings, get_settings
from shared.times import month_bounds

if TYPE_CHECKING:
    from google.cloud.firestore_v1.client import Client
    from google.cloud.firestore_v1.query import Query

# ---- helpers -------------------------------------------------------------------------------


def _aware(name: str, value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}={value!r}: expected a timezone-aware datetime")
    return value


def _time_range(query: Query, field: str, start: dt.datetime, end: dt.datetime) -> Query:
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    start, end = _aware("start", start), _aware("end", end)
    if end < start:
        raise ValueError(f"end={end.isoformat()} is before start={start.isoformat()}")
    return (
        query.where(filter=FieldFilter(field, ">=", start))
        .where(filter=FieldFilter(field, "<", end))
        .order_by(field, direction=Direction.ASCENDING.value)
    )


def _equal(query: Any, field: str, value: object) -> Query:
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    result: Query = query.where(filter=FieldFilter(field, "==", value))
    return result


# ---- usage_tracking ------------------------------------------------------------------------

_ASC = Direction.ASCENDING

USAGE_BY_CUSTOMER = QueryShape(
    names.USAGE_TRACKING, equality=("customer_id",), order=(("timestamp", _ASC),)
)
USAGE_BY_SCENE = QueryShape(
    names.USAGE_TRACKING, equality=("scene_id",), order=(("timestamp", _ASC),)
)
USAGE_BY_CUSTOMER_AND_ACTION = QueryShape(
    names.USAGE_TRACKING, equality=("customer_id", "action"), order=(("timestamp", _ASC),)
)


@declares(USAGE_BY_CUSTOMER)
def usage_by_customer(
    client: Client,
    customer_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    settings: Settings | None = None,
) -> Query:
    """A customer's usage records with `start <= timestamp < end`, oldest first."""
    settings = settings or get_settings()
    query = _equal(
        client.collection(settings.usage_tracking_collection), "customer_id", customer_id
    )
    return _time_range(query, "timestamp", start, end)


@declares(USAGE_BY_SCENE)
def usage_by_scene(
    client: Client,
    scene_id: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    settings: Settings | None = None,
) -> Query:
    """A scene's usage records with `start <= timestamp < end`, oldest first."""
    settings = settings or get_settings()
    query = _equal(client.collection(settings.usage_tracking_collection), "scene_id", scene_id)
    return _time_range(query, "timestamp", start, end)


@declares(USAGE_BY_CUSTOMER, USAGE_BY_CUSTOMER_AND_ACTION)
def usage_report(
    client: Client,
    customer_id: str,
    month: str,
    action: str | None = None,
    *,
    settings: Settings | None = None,
) -> Query:
    """The usage report: a customer's records in calendar month `YYYY-MM` (UTC), optionally
    only one action, oldest first."""
    settings = settings or get_settings()
    start, end = month_bounds(month)
    query = _equal(
        client.collection(settings.usage_tracking_collection), "customer_id", customer_id
    )
    if action is not None:
        query = _equal(query, "action", action)
    return _time_range(query, "timestamp", start, end)


# ---- customers -----------------------------------------------------------------------------

CUSTOMERS_BY_ID = QueryShape(names.CUSTOMERS, order=((DOCUMENT_ID, _ASC),))


def _customers(client: Client, settings: Settings | None, collection: str | None) -> Any:
    """The customers collection: `collection` if given (the reset repository and its tests name
    their own), else the settings' one."""
    return client.collection(collection or (settings or get_settings()).customers_collection)


@declares(CUSTOMERS_BY_ID)
def customers_by_id(
    client: Client,
    after_id: str | None = None,
    *,
    limit: int | None = None,
    settings: Settings | None = None,
    collection: str | None = None,
) -> Query:
    """The monthly reset's scan: customers ordered by document id, starting after the customer
    `after_id` (None: from the first), at most `limit` of them (None: all, streamed). Served by
    the automatic document-id index, so it works whatever fields a customer has (a range filter
    on `quota_reset_at` would skip documents lacking the field)."""
    from google.cloud.firestore_v1.field_path import FieldPath  # noqa: PLC0415 (cheap import)

    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit}: expected a positive number or None")
    customers = _customers(client, settings, collection)
    query: Query = customers.order_by(FieldPath.document_id())
    if after_id is not None:
        query = query.start_after({FieldPath.document_id(): customers.document(after_id)})
    if limit is not None:
        query = query.limit(limit)
    return query


CUSTOMERS_BY_PERIOD = QueryShape(names.CUSTOMERS, equality=("quota_period",))


@declares(CUSTOMERS_BY_PERIOD)
def customers_reset_for_period(
    client: Client,
    period: str,
    *,
    settings: Settings | None = None,
    collection: str | None = None,
) -> Query:
    """Customers the monthly reset has already reset for `period` (`YYYY-MM`): the reset
    writes `quota_period` on each customer it resets (count them with `.count()`)."""
    month_bounds(period)  # validates the format
    return _equal(_customers(client, settings, collection), "quota_period", period)


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
    the single-field index on `timestamp` serves it; per customer schema.md's composite."""
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
    after: Sequence[Any] | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> Query:
    """`usage_rejections` (dead letters are kind `dead_letter`), newest first, optionally of one
    kind and/or customer and with `rejected_at >= since`; cursor `(rejected_at, document id)`."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    settings = settings or get_settings()
    query: Any = client.collection(settings.usage_rejections_collection)
    if kind is not None:
        query = _equal(query, "kind", kind)
    if customer_id is not None:
        query = _equal(query, "customer_id", customer_id)
    if since is not None:
        query = query.where(filter=FieldFilter("rejected_at", ">=", _aware("since", since)))
    query = query.order_by("rejected_at", direction=_DESC.value)
    return _paged(_by_id(query, _DESC), after, limit)


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


__all__ = [
    "BUILDERS",
    "DOCUMENT_ID",
    "CompositeIndex",
    "Direction",
    "QueryShape",
    "composite_indexes",
    "declares",
    "indexes_file",
    "shapes_of",
]
