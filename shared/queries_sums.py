"""A customer-month's counts and sums, without reading its records (the console's page).

Part of `shared.queries` (which re-exports every name here): each builder declares its shape,
so `firestore.indexes.json` covers these queries too.

The page sums a month by aggregation queries (count, sum), which Firestore answers from index
entries: one read per 1,000 entries matched, no document read. A sum reads the summed field from
the index, so the summed fields follow the range field in the index (as the recount's
`MONTH_RECORDS`); the query orders on them to say which index it reads. A record missing one of
them (the usage function writes every one, null where not applicable) is in no such index, hence
neither counted nor summed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from shared import names
from shared.counters import Sums
from shared.query_filters import equal as _equal
from shared.query_filters import time_range as _time_range
from shared.query_shapes import Direction, QueryShape, declares
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from google.cloud.firestore_v1.client import Client
    from google.cloud.firestore_v1.query import Query

_ASC = Direction.ASCENDING

USAGE_SUM_FIELDS: Final = ("cost_cents", "episodes_generated", "compute_minutes", "storage_gb")
"""What a customer-month's action sums besides its count (`shared.counters.record_fields` and
the data model's amounts): 4 sums and the count, the 5 aggregations one request takes."""

MAX_AGGREGATIONS: Final = 5
"""Aggregations Firestore answers in one request."""


def aggregate(query: Any, fields: Sequence[str], **call: Any) -> Sums:
    """The query's count and the sums of `fields`, in as few requests as Firestore takes (the
    count and 4 sums, then 5 sums at a time); `call`: the requests' timeout and retry."""
    first = MAX_AGGREGATIONS - 1
    chunks = [
        fields[:first],
        *(fields[i : i + MAX_AGGREGATIONS] for i in range(first, len(fields), MAX_AGGREGATIONS)),
    ]
    answers: dict[str, Any] = {}
    for n, chunk in enumerate(chunks):
        aggregation: Any = query.count(alias="records") if n == 0 else None
        for name in chunk:
            aggregation = (query if aggregation is None else aggregation).sum(name, alias=name)
        results: Any = aggregation.get(**call)
        answers.update({str(r.alias): r.value for r in results[0]})
    return Sums.from_fields(answers)


USAGE_ACTIONS = QueryShape(
    names.USAGE_TRACKING, equality=("customer_id",), order=(("action", _ASC),)
)
USAGE_SUMS = QueryShape(
    names.USAGE_TRACKING,
    equality=("customer_id", "action"),
    order=(("timestamp", _ASC), *((f, _ASC) for f in USAGE_SUM_FIELDS)),
)
USAGE_BILLABLE = QueryShape(
    names.USAGE_TRACKING,
    equality=("customer_id", "action", "billable"),
    order=(("timestamp", _ASC),),
)


@declares(USAGE_ACTIONS)
def usage_next_action(
    client: Client, customer_id: str, after: str | None = None, *, settings: Settings | None = None
) -> Query:
    """The first action name of a customer's records after `after` (None: the first), of any
    month: one record, its `action` only. Walking it (`action > previous`, limit 1) learns the
    customer's actions reading one record per action, whatever the number of records."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    settings = settings or get_settings()
    query = _equal(
        client.collection(settings.usage_tracking_collection), "customer_id", customer_id
    )
    if after is not None:
        query = query.where(filter=FieldFilter("action", ">", after))
    return query.order_by("action", direction=_ASC.value).select(["action"]).limit(1)


@declares(USAGE_SUMS)
def usage_sums(
    client: Client,
    customer_id: str,
    action: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    settings: Settings | None = None,
) -> Query:
    """A customer's records of one action with `start <= timestamp < end`, to aggregate: count
    them and sum `USAGE_SUM_FIELDS` (index: customer_id, action, timestamp, the summed fields)."""
    query = _time_range(_of_action(client, customer_id, action, settings), "timestamp", start, end)
    for name in USAGE_SUM_FIELDS:
        query = query.order_by(name, direction=_ASC.value)
    return query


@declares(USAGE_BILLABLE)
def usage_billable(
    client: Client,
    customer_id: str,
    action: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    settings: Settings | None = None,
) -> Query:
    """A customer's billable records of one action with `start <= timestamp < end`, to count
    (a boolean is not summed: its own filter)."""
    query = _equal(_of_action(client, customer_id, action, settings), "billable", True)
    return _time_range(query, "timestamp", start, end)


def _of_action(client: Client, customer_id: str, action: str, settings: Settings | None) -> Query:
    """A customer's records of one action."""
    settings = settings or get_settings()
    records = client.collection(settings.usage_tracking_collection)
    return _equal(_equal(records, "customer_id", customer_id), "action", action)
