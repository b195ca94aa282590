"""Query shapes and the composite indexes they need: the bookkeeping behind `shared.queries`.

Each builder of `shared.queries` declares the shape(s) of the query it returns (`QueryShape`:
collection, equality fields, then ordered fields); `composite_indexes()` derives the composite
indexes those shapes need and `indexes_file()` the content of `firestore.indexes.json`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, ParamSpec, TypeVar

DOCUMENT_ID: Final = "__name__"
"""Firestore's name for ordering or filtering on the document id."""


class Direction(enum.StrEnum):
    """Sort direction, spelled as in `firestore.indexes.json`."""

    ASCENDING = "ASCENDING"
    DESCENDING = "DESCENDING"


@dataclass(frozen=True, slots=True)
class QueryShape:
    """What a query filters and orders on: enough to know which index serves it."""

    collection: str
    """Default collection id (the settings may rename it; the deployed indexes use this)."""
    equality: tuple[str, ...] = ()
    """Fields compared with `==`, in the order the builder applies them."""
    order: tuple[tuple[str, Direction], ...] = ()
    """Fields the query orders on (a range filter's field included), in order."""
    group: bool = False
    """A collection-group query (every collection with this id, at any depth)."""

    def composite_index(self) -> CompositeIndex | None:
        """The composite index this query needs, or None if single-field indexes serve it.

        Single-field indexes (automatic) serve: equality filters only (index merging), or one
        ordered / range field with no equality filter. Anything else needs a composite index
        of the equality fields followed by the ordered fields. Ordering on the document id at
        the end is implicit in every index.
        """
        order = tuple((f, d) for f, d in self.order if f != DOCUMENT_ID)
        if not order or (not self.equality and len(order) == 1):
            return None
        fields = tuple((f, Direction.ASCENDING) for f in self.equality) + order
        return CompositeIndex(self.collection, fields, self.group)


@dataclass(frozen=True, slots=True)
class CompositeIndex:
    """One entry of `firestore.indexes.json` (collection scope)."""

    collection: str
    fields: tuple[tuple[str, Direction], ...]
    group: bool = False

    def as_json(self) -> dict[str, Any]:
        """The entry as firebase-tools writes it."""
        return {
            "collectionGroup": self.collection,
            "queryScope": "COLLECTION_GROUP" if self.group else "COLLECTION",
            "fields": [{"fieldPath": f, "order": str(d)} for f, d in self.fields],
        }


P = ParamSpec("P")
R = TypeVar("R")

BUILDERS: list[Callable[..., Any]] = []
"""Every query builder of this module, in definition order."""


def declares(*shapes: QueryShape) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Mark a function as a query builder returning queries of the given shapes."""

    def register(builder: Callable[P, R]) -> Callable[P, R]:
        builder.query_shapes = shapes  # type: ignore[attr-defined]
        BUILDERS.append(builder)
        return builder

    return register


def shapes_of(builder: Callable[..., Any]) -> tuple[QueryShape, ...]:
    """The shapes a builder declared."""
    shapes: tuple[QueryShape, ...] = builder.query_shapes  # type: ignore[attr-defined]
    return shapes


def composite_indexes() -> list[CompositeIndex]:
    """Every composite index the builders need, without duplicates, in a stable order."""
    found: dict[CompositeIndex, None] = {}
    for builder in BUILDERS:
        for shape in shapes_of(builder):
            index = shape.composite_index()
            if index is not None:
                found[index] = None
    return list(found)


def indexes_file() -> dict[str, Any]:
    """The content of `firestore.indexes.json`."""
    return {"indexes": [i.as_json() for i in composite_indexes()], "fieldOverrides": []}
