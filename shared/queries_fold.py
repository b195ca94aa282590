"""The fold's queries: the new records of a bucket, a customer-month's records (the recount),
the summaries of a month (the month close) and the pending quota alerts.

Part of `shared.queries` (which re-exports every name here): each builder declares its shape,
so `firestore.indexes.json` covers these queries too.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Final

from shared import names
from shared.counters import BUCKET_FIELD, MONTH_KEY_FIELD, RECORDED_AT_FIELD, SUMMED_RECORD_FIELDS
from shared.query_filters import aware as _aware
from shared.query_filters import equal as _equal
from shared.query_shapes import DOCUMENT_ID, Direction, QueryShape, declares
from shared.settings import Settings, get_settings
from shared.times import month_bounds

if TYPE_CHECKING:
    from google.cloud.firestore_v1.client import Client
    from google.cloud.firestore_v1.query import Query

_ASC = Direction.ASCENDING

NEW_RECORDS = QueryShape(
    names.USAGE_TRACKING,
    equality=(BUCKET_FIELD,),
    order=((RECORDED_AT_FIELD, _ASC),),
)
NEW_RECORD_FIELDS: Final = (
    "customer_id",
    MONTH_KEY_FIELD,
    RECORDED_AT_FIELD,
    *SUMMED_RECORD_FIELDS,
)
"""What the fold reads of a record (`shared.counters.record_sums`)."""


@declares(NEW_RECORDS)
def new_records(
    client: Client,
    bucket: int,
    after: dt.datetime | None,
    upto: dt.datetime,
    *,
    limit: int,
    cursor: Any = None,
    settings: Settings | None = None,
) -> Query:
    """The fold's scan of one bucket: records with `fold_bucket == bucket` and `after <
    recorded_at <= upto` (`after` None: from the first), oldest first, `limit` per page, after
    the snapshot `cursor`. The bucket prefix spreads the sequential `recorded_at` over
    `usage_fold_buckets` index prefixes."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    settings = settings or get_settings()
    if limit < 1:
        raise ValueError(f"limit={limit}: expected a positive number")
    query: Query = client.collection(settings.usage_tracking_collection).where(
        filter=FieldFilter(BUCKET_FIELD, "==", bucket)
    )
    if after is not None:
        query = query.where(filter=FieldFilter(RECORDED_AT_FIELD, ">", _aware("after", after)))
    query = (
        query.where(filter=FieldFilter(RECORDED_AT_FIELD, "<=", _aware("upto", upto)))
        .order_by(RECORDED_AT_FIELD, direction=Direction.ASCENDING.value)
        .select(NEW_RECORD_FIELDS)
        .limit(limit)
    )
    if cursor is not None:
        query = query.start_after(cursor)
    return query


MONTH_RECORDS = QueryShape(
    names.USAGE_TRACKING,
    equality=(MONTH_KEY_FIELD,),
    order=(
        (RECORDED_AT_FIELD, _ASC),
        ("cost_cents", _ASC),
        ("scenes_generated", _ASC),
        ("episodes_generated", _ASC),
        ("compute_minutes", _ASC),
        ("storage_gb", _ASC),
    ),
)
"""The recount's aggregation over one customer-month's records. Firestore computes sum() from
index entries, so the summed fields follow the range field in the composite index: one index
serves the count and every sum (the emulator checks no index; production refuses a query
without one)."""


@declares(MONTH_RECORDS)
def month_records(
    client: Client,
    month_key: str,
    upto: dt.datetime,
    *,
    settings: Settings | None = None,
) -> Query:
    """The records of customer-month `month_key` (`shared.counters.counter_doc_id`) with
    `recorded_at <= upto`: the query the recount aggregates (count and sums)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    settings = settings or get_settings()
    query: Query = (
        client.collection(settings.usage_tracking_collection)
        .where(filter=FieldFilter(MONTH_KEY_FIELD, "==", month_key))
        .where(filter=FieldFilter(RECORDED_AT_FIELD, "<=", _aware("upto", upto)))
    )
    # Ordered as the index is (the order changes nothing of a count or a sum): the query says
    # which index it reads.
    for name, direction in MONTH_RECORDS.order:
        query = query.order_by(name, direction=direction.value)
    return query


MONTH_SUMMARIES = QueryShape(
    names.USAGE_COUNTERS, equality=("month",), order=((DOCUMENT_ID, _ASC),)
)


@declares(MONTH_SUMMARIES)
def month_summaries(
    client: Client,
    month: str,
    *,
    limit: int,
    after: str | None = None,
    settings: Settings | None = None,
) -> Query:
    """The month summaries of `month` (`YYYY-MM`), by document id, `limit` per page, after the
    document id `after`. The month close and `blueprint usage recount` walk them."""
    from google.cloud.firestore_v1.field_path import FieldPath  # noqa: PLC0415 (cheap import)

    month_bounds(month)  # validates the format
    settings = settings or get_settings()
    collection = client.collection(settings.usage_counters_collection)
    query: Any = _equal(collection, "month", month).order_by(FieldPath.document_id())
    if after is not None:
        query = query.start_after([after])
    query = query.limit(limit)
    result: Query = query
    return result


PENDING_ALERTS = QueryShape(names.QUOTA_ALERTS, equality=("state",))


@declares(PENDING_ALERTS)
def pending_alerts(client: Client, *, limit: int, settings: Settings | None = None) -> Query:
    """Quota alert markers still `pending` (a publish failed, or its claimer died): the fold
    finishes them. Equality on one field: the automatic index serves it."""
    settings = settings or get_settings()
    query = _equal(client.collection(settings.quota_alerts_collection), "state", "pending")
    return query.limit(limit)
