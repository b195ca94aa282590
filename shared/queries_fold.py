"""The fold's queries: what changed (counter shards, records counted from the records) and
the pending quota alerts.

Part of `shared.queries` (which re-exports every name here): each builder declares its shape,
so `firestore.indexes.json` covers these queries too.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Final

from shared import names
from shared.query_filters import aware as _aware
from shared.query_filters import equal as _equal
from shared.query_shapes import Direction, QueryShape, declares
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from google.cloud.firestore_v1.client import Client
    from google.cloud.firestore_v1.query import Query

_ASC = Direction.ASCENDING

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


TALLY_RECORDS = QueryShape(
    names.USAGE_TRACKING,
    equality=("fold_bucket",),
    order=(("recorded_at", _ASC),),
)
TALLY_RECORD_FIELDS: Final = (
    "customer_id",
    "fold_key",
    "timestamp",
    "action",
    "episodes_generated",
    "compute_minutes",
    "storage_gb",
    "estimated_cost",
    "recorded_at",
)
"""What the fold reads of a records-counted usage record (`shared.counters.record_counts`)."""


@declares(TALLY_RECORDS)
def tally_records(
    client: Client,
    bucket: int,
    after: dt.datetime | None,
    upto: dt.datetime,
    *,
    limit: int,
    cursor: Any = None,
    settings: Settings | None = None,
) -> Query:
    """The fold's scan of the records counted from the records (quiet customer-months, which
    carry `fold_bucket` instead of a shard increment): bucket `bucket`, `after < recorded_at
    <= upto` (`after` None: from the first), oldest first, `limit` per page, after the snapshot
    `cursor`. Run it at read time `upto` so the range is exact: every record committed by
    then is in it, none committed later. The bucket prefix spreads the sequential
    `recorded_at` over `usage_fold_buckets` index prefixes."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    settings = settings or get_settings()
    if limit < 1:
        raise ValueError(f"limit={limit}: expected a positive number")
    query: Query = client.collection(settings.usage_tracking_collection).where(
        filter=FieldFilter("fold_bucket", "==", bucket)
    )
    if after is not None:
        query = query.where(filter=FieldFilter("recorded_at", ">", _aware("after", after)))
    query = (
        query.where(filter=FieldFilter("recorded_at", "<=", _aware("upto", upto)))
        .order_by("recorded_at", direction=Direction.ASCENDING.value)
        .select(TALLY_RECORD_FIELDS)
        .limit(limit)
    )
    if cursor is not None:
        query = query.start_after(cursor)
    return query


MONTH_RECORDS = QueryShape(
    names.USAGE_TRACKING,
    equality=("fold_key",),
    order=(
        ("recorded_at", _ASC),
        ("cost_cents", _ASC),
        ("scenes_generated", _ASC),
        ("episodes_generated", _ASC),
        ("compute_minutes", _ASC),
        ("storage_gb", _ASC),
    ),
)
"""The fold's aggregation over one customer-month's records counted from the records. Firestore
computes sum() from index entries ("a field must be indexed to calculate an aggregation"), so
the summed fields follow the range field in the composite index: one index serves the count
and every sum (the emulator checks no index; production refuses a query without one). Every
record with `fold_key` has every summed field (a number, or null: skipped by a sum)."""


@declares(MONTH_RECORDS)
def month_records(
    client: Client,
    fold_key: str,
    after: dt.datetime | None,
    upto: dt.datetime,
    *,
    settings: Settings | None = None,
) -> Query:
    """The records of customer-month `fold_key` (`shared.counters.counter_doc_id`) counted
    from the records, with `after < recorded_at <= upto` (`after` None: from the first): the
    query the fold aggregates (count and sums; one read per 1,000 index entries). Run after
    `upto` plus the records lag, every record stamped up to `upto` is in it."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    settings = settings or get_settings()
    query: Query = client.collection(settings.usage_tracking_collection).where(
        filter=FieldFilter("fold_key", "==", fold_key)
    )
    if after is not None:
        query = query.where(filter=FieldFilter("recorded_at", ">", _aware("after", after)))
    query = query.where(filter=FieldFilter("recorded_at", "<=", _aware("upto", upto)))
    # Ordered as the index is (the order changes nothing of a count or a sum): the query says
    # which index it reads, and a record without one of the summed fields is in none.
    for name, direction in MONTH_RECORDS.order:
        query = query.order_by(name, direction=direction.value)
    return query


PENDING_ALERTS = QueryShape(names.QUOTA_ALERTS, equality=("state",))


@declares(PENDING_ALERTS)
def pending_alerts(client: Client, *, limit: int, settings: Settings | None = None) -> Query:
    """Quota alert markers still `pending` (a publish failed, or its claimer died): the fold
    finishes them. Equality on one field: the automatic index serves it."""
    settings = settings or get_settings()
    query = _equal(client.collection(settings.quota_alerts_collection), "state", "pending")
    return query.limit(limit)
