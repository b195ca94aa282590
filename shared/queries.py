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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from shared import names
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

# ---- single-field index exemptions (`fieldOverrides`) --------------------------------------
# Firestore indexes every field of every document in ascending, descending and array-contains
# modes (collection scope) unless `firestore.indexes.json` exempts it. An index on a field
# whose value grows with time (timestamps) caps its collection near 500 writes/s
# (`production.md`); an index on a large blob costs storage and write latency for nothing.
# Each exemption below names its reason; `keep` lists the collection-scope orders a declared
# query still needs (ops' paged listings range on one field alone). Composite indexes are not
# affected by these. `tests/unit/test_index_exemptions.py` fails if a declared query needs an
# exempted single-field index.


@dataclass(frozen=True, slots=True)
class SingleFieldExemption:
    """One `fieldOverrides` entry: the field's automatic indexes, except `keep`, are off."""

    collection: str
    """Collection id (or collection-group id: the override applies to every such collection)."""
    field: str
    reason: str
    keep: tuple[Direction, ...] = ()
    """Collection-scope orders kept because a query needs them (say which in `reason`)."""

    def serves(self, direction: Direction, *, group: bool = False) -> bool:
        """Whether the single-field index in this order and scope still exists."""
        return not group and direction in self.keep

    def as_json(self) -> dict[str, Any]:
        """The entry as firebase-tools writes it (`indexes: []` exempts every mode)."""
        return {
            "collectionGroup": self.collection,
            "fieldPath": self.field,
            "ttl": False,
            "indexes": [{"order": str(d), "queryScope": "COLLECTION"} for d in self.keep],
        }


_SEQUENTIAL = "server or event time: sequential, caps the collection near 500 writes/s"
_BLOB = "large, free-form value no query reads by"
_NO_QUERY = "no query filters or orders on it"


def _exempt(
    collection: str, reason: str, *fields: str, keep: tuple[Direction, ...] = ()
) -> tuple[SingleFieldExemption, ...]:
    return tuple(SingleFieldExemption(collection, f, reason, keep) for f in fields)


EXEMPTIONS: Final[tuple[SingleFieldExemption, ...]] = (
    *_exempt(
        names.USAGE_TRACKING,
        _SEQUENTIAL + "; per-customer queries use the composites (customer_id, timestamp) "
        "etc.; ASCENDING kept for ops' month listing across customers (range on timestamp "
        "alone, `usage_page`)",
        "timestamp",
        keep=(Direction.ASCENDING,),
    ),
    *_exempt(
        names.USAGE_TRACKING,
        _SEQUENTIAL + "; the fold's scan uses the composite (fold_bucket, recorded_at), the "
        "recount the composite (fold_key, recorded_at, ...)",
        "recorded_at",
    ),
    *_exempt(
        names.USAGE_TRACKING,
        _NO_QUERY + " alone (the fold's and the recount's composites serve them)",
        "fold_bucket",
        "fold_key",
        "cost_cents",
        "scenes_generated",
    ),
    *_exempt(names.USAGE_TRACKING, _BLOB, "details"),
    *_exempt(
        names.USAGE_REJECTIONS,
        _SEQUENTIAL + "; DESCENDING kept for ops' newest-first listing (`rejections_page`, "
        "`since` = range on rejected_at alone)",
        "rejected_at",
        keep=(Direction.DESCENDING,),
    ),
    *_exempt(names.USAGE_REJECTIONS, _SEQUENTIAL, "publish_time"),
    *_exempt(names.USAGE_REJECTIONS, _BLOB, "payload", "errors", "attributes", "reason"),
    *_exempt(
        names.QUOTA_ALERTS,
        _NO_QUERY + " (listings filter customer_id, month, state only)",
        "created_at",
        "claimed_at",
        "claimed_by",
        "published_at",
        "alert_message_id",
        "last_error",
    ),
)
"""Single-field indexes no query needs on sequential or large fields."""


def field_overrides() -> list[dict[str, Any]]:
    """The `fieldOverrides` of `firestore.indexes.json`, in declaration order."""
    return [e.as_json() for e in EXEMPTIONS]


def single_field_needs(shape: QueryShape) -> list[tuple[str, Direction]]:
    """The single-field indexes a query of this shape needs: none if a composite serves it;
    else each equality field (ascending, merged) and the one ordered field (its order)."""
    if shape.composite_index() is not None:
        return []
    order = [(f, d) for f, d in shape.order if f != DOCUMENT_ID]
    return [(f, Direction.ASCENDING) for f in shape.equality] + order


def exemption_conflicts(shapes: Any) -> list[str]:
    """Each (shape, field) whose single-field index is exempted or, for a collection-group
    query, never built (collection-group single-field indexes are off unless enabled)."""
    exempt = {(e.collection, e.field): e for e in EXEMPTIONS}
    problems = []
    for shape in shapes:
        group = bool(getattr(shape, "group", False))
        for field, direction in single_field_needs(shape):
            exemption = exempt.get((shape.collection, field))
            if group and (exemption is None or not exemption.serves(direction, group=True)):
                problems.append(f"{shape}: no COLLECTION_GROUP index on {field} {direction}")
            elif exemption is not None and not exemption.serves(direction):
                problems.append(f"{shape}: needs {field} {direction}, exempted")
    return problems


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


def _after_prefix(prefix: str) -> str | None:
    """The first text after every text starting with `prefix` (its last character + 1, in
    code point order, which is Firestore's UTF-8 byte order); None when there is none."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            following = 0xE000 if last == 0xD7FF else last + 1  # surrogates are not text
            return prefix[:-1] + chr(following)
        prefix = prefix[:-1]
    return None


@declares(CUSTOMERS_BY_ID)
def customers_by_id(
    client: Client,
    after_id: str | None = None,
    *,
    limit: int | None = None,
    settings: Settings | None = None,
    collection: str | None = None,
    prefix: str | None = None,
) -> Query:
    """The monthly reset's scan: customers ordered by document id, starting after the customer
    `after_id` (None: from the first), at most `limit` of them (None: all, streamed). Served by
    the automatic document-id index, so it works whatever fields a customer has (a range filter
    on `quota_reset_at` would skip documents lacking the field). `prefix`: only ids starting
    with it (cursors on the same order, so the query's shape is unchanged)."""
    from google.cloud.firestore_v1.field_path import FieldPath  # noqa: PLC0415 (cheap import)

    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit}: expected a positive number or None")
    customers = _customers(client, settings, collection)
    query: Query = customers.order_by(FieldPath.document_id())
    if prefix and (after_id is None or after_id < prefix):
        query = query.start_at({FieldPath.document_id(): customers.document(prefix)})
    elif after_id is not None:
        query = query.start_after({FieldPath.document_id(): customers.document(after_id)})
    end_id = _after_prefix(prefix) if prefix else None
    if end_id is not None:
        end = customers.document(end_id)
        query = query.end_before({FieldPath.document_id(): end})
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


# The operators' paged listings live in their own module; imported here so their shapes are
# declared (and their indexes generated) whenever `shared.queries` is.
from shared.queries_fold import (  # noqa: E402
    MONTH_RECORDS,
    MONTH_SUMMARIES,
    NEW_RECORD_FIELDS,
    NEW_RECORDS,
    PENDING_ALERTS,
    month_records,
    month_summaries,
    new_records,
    pending_alerts,
)
from shared.queries_paged import (  # noqa: E402
    ALERTS_PAGED,
    REJECTIONS_PAGED,
    REPLAY_PAGED,
    RESETS_NEWEST_FIRST,
    ROLLED_OUT,
    ROLLED_OUT_BY_ID,
    USAGE_PAGED,
    alerts_page,
    rejections_page,
    replay_page,
    resets_page,
    rolled_out_page,
    usage_page,
)
from shared.queries_sums import (  # noqa: E402
    MAX_AGGREGATIONS,
    USAGE_ACTIONS,
    USAGE_BILLABLE,
    USAGE_SUM_FIELDS,
    USAGE_SUMS,
    aggregate,
    usage_billable,
    usage_next_action,
    usage_sums,
)

__all__ = [
    "ALERTS_PAGED",
    "BUILDERS",
    "DOCUMENT_ID",
    "MAX_AGGREGATIONS",
    "MONTH_RECORDS",
    "MONTH_SUMMARIES",
    "NEW_RECORDS",
    "NEW_RECORD_FIELDS",
    "PENDING_ALERTS",
    "REJECTIONS_PAGED",
    "REPLAY_PAGED",
    "RESETS_NEWEST_FIRST",
    "ROLLED_OUT",
    "ROLLED_OUT_BY_ID",
    "USAGE_ACTIONS",
    "USAGE_BILLABLE",
    "USAGE_PAGED",
    "USAGE_SUMS",
    "USAGE_SUM_FIELDS",
    "CompositeIndex",
    "Direction",
    "QueryShape",
    "aggregate",
    "alerts_page",
    "composite_indexes",
    "declares",
    "indexes_file",
    "month_records",
    "month_summaries",
    "new_records",
    "pending_alerts",
    "rejections_page",
    "replay_page",
    "resets_page",
    "rolled_out_page",
    "shapes_of",
    "usage_billable",
    "usage_next_action",
    "usage_page",
    "usage_sums",
]
