"""Small filter helpers every query builder of `shared.queries` uses (no client import)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from shared.query_shapes import Direction

if TYPE_CHECKING:
    from google.cloud.firestore_v1.query import Query


def aware(name: str, value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}={value!r}: expected a timezone-aware datetime")
    return value


def time_range(query: Query, field: str, start: dt.datetime, end: dt.datetime) -> Query:
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    start, end = aware("start", start), aware("end", end)
    if end < start:
        raise ValueError(f"end={end.isoformat()} is before start={start.isoformat()}")
    return (
        query.where(filter=FieldFilter(field, ">=", start))
        .where(filter=FieldFilter(field, "<", end))
        .order_by(field, direction=Direction.ASCENDING.value)
    )


def equal(query: Any, field: str, value: object) -> Query:
    from google.cloud.firestore_v1.base_query import FieldFilter  # noqa: PLC0415 (cheap import)

    result: Query = query.where(filter=FieldFilter(field, "==", value))
    return result
