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
from typing import TYPE_CHECKING, Any

from shared import names
from shared.query_filters import aware as _aware
from shared.query_filters import equal as _equal
from shared.query_filters import time_range as _time_range
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


# ---- usage counters (the fold) ---------------------------------------------------------------

CHANGED_SHARDS = QueryShape(
    names.USAGE_COUNTER_SHARDS,
    equality=("fold_bucket",),
    order=(("updated_at", _ASC),),
    group=True,
)


@declares(CHANGED_SHARDS)
def changed_shards(
    client: Client,
    bucket: int,
    since: dt.datetime,
    *,
    limit: int,
    after: Any = None,
    settings: Settings | None = None,
) -> Query:
    """The fold's scan of one dirty bucket: counter shards (collection group `shards`) of
    bucket `bucket` with `updated_at > since`, oldest first, `limit` per page, after the
    snapshot `after`. The index's prefix is the bucket, so its sequential last field is spread
    over `usage_fold_buckets` prefixes (production.md: about 500 writes/s per prefix)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    del settings  # the subcollection id is fixed (`shared.names.USAGE_COUNTER_SHARDS`)
    if limit < 1:
        raise ValueError(f"limit={limit}: expected a positive number")
    query: Query = (
        client.collection_group(names.USAGE_COUNTER_SHARDS)
        .where(filter=FieldFilter("fold_bucket", "==", bucket))
        .where(filter=FieldFilter("updated_at", ">", _aware("since", since)))
        .order_by("updated_at", direction=Direction.ASCENDING.value)
        .limit(limit)
    )
    if after is not None:
        query = query.start_after(after)
    return query


PENDING_ALERTS = QueryShape(names.QUOTA_ALERTS, equality=("state",))


@declares(PENDING_ALERTS)
def pending_alerts(client: Client, *, limit: int, settings: Settings | None = None) -> Query:
    """Quota alert markers still `pending` (a publish failed, or its claimer died): the fold
    finishes them. Equality on one field: the automatic index serves it."""
    settings = settings or get_settings()
    query = _equal(client.collection(settings.quota_alerts_collection), "state", "pending")
    return query.limit(limit)


# The operators' paged listings live in their own module; imported here so their shapes are
# declared (and their indexes generated) whenever `shared.queries` is.
from shared.queries_paged import (  # noqa: E402
    ALERTS_PAGED,
    REJECTIONS_PAGED,
    RESETS_NEWEST_FIRST,
    ROLLED_OUT,
    ROLLED_OUT_BY_ID,
    USAGE_PAGED,
    alerts_page,
    rejections_page,
    resets_page,
    rolled_out_page,
    usage_page,
)

__all__ = [
    "ALERTS_PAGED",
    "BUILDERS",
    "DOCUMENT_ID",
    "REJECTIONS_PAGED",
    "RESETS_NEWEST_FIRST",
    "ROLLED_OUT",
    "ROLLED_OUT_BY_ID",
    "USAGE_PAGED",
    "CompositeIndex",
    "Direction",
    "QueryShape",
    "alerts_page",
    "composite_indexes",
    "declares",
    "indexes_file",
    "rejections_page",
    "resets_page",
    "rolled_out_page",
    "shapes_of",
    "usage_page",
]
