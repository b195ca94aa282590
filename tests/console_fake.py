"""An in-memory Firestore of just what the console's reads ask (documents by id, equality and
range filters, ordering, cursors, limits, counts and sums), to drive the console's pages in
unit tests without an emulator."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

NAME = "__name__"
UPDATED = datetime(2026, 3, 1, tzinfo=UTC)


def _key(value: Any) -> tuple[int, Any]:
    """Firestore's order across types (null, booleans, numbers, times, text), enough here."""
    if isinstance(value, FakeRef):
        value = value.id
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, datetime):
        return (3, value)
    if isinstance(value, str):
        return (4, value.encode())
    return (9, str(value))


class FakeSnap:
    def __init__(self, ref: FakeRef, data: dict[str, Any] | None) -> None:
        self.reference, self.id, self._data = ref, ref.id, data
        self.exists = data is not None
        self.update_time = UPDATED if data is not None else None

    def to_dict(self) -> dict[str, Any] | None:
        return None if self._data is None else dict(self._data)

    def get(self, field: str) -> Any:
        return self.id if field == NAME else (self._data or {}).get(field)


class _Parent:
    def __init__(self, name: str) -> None:
        self.id = name


class FakeRef:
    def __init__(self, db: FakeFirestore, collection: str, doc_id: str) -> None:
        if not isinstance(doc_id, str):
            raise TypeError(f"a document id is text, got {doc_id!r}")
        if "/" in doc_id:
            raise ValueError(f"a document id has no '/': {doc_id!r}")
        self.db, self.collection, self.id = db, collection, doc_id
        self.parent = _Parent(collection)

    def get(self, **_: Any) -> FakeSnap:
        self.db.check()
        return FakeSnap(self, self.db.data.get(self.collection, {}).get(self.id))


class _Result:
    def __init__(self, alias: str, value: Any) -> None:
        self.alias, self.value = alias, value


class FakeAggregation:
    def __init__(self, query: FakeQuery, fields: list[tuple[str, str]]) -> None:
        self.query, self.fields = query, fields

    def sum(self, name: str, alias: str | None = None) -> FakeAggregation:
        return FakeAggregation(self.query, [*self.fields, (name, alias or name)])

    def get(self, **_: Any) -> list[list[_Result]]:
        self.query.db.check()
        self.query.db.aggregations += 1
        snaps = list(self.query.stream())
        out = [_Result("records", len(snaps))]
        for name, alias in self.fields[1:]:
            values = [s.get(name) for s in snaps]
            numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            out.append(_Result(alias, sum(numbers)))
        return [out]


class FakeQuery:
    def __init__(self, db: FakeFirestore, collection: str, **state: Any) -> None:
        self.db, self.collection = db, collection
        self.filters: list[tuple[str, str, Any]] = state.get("filters", [])
        self.orders: list[tuple[str, str]] = state.get("orders", [])
        self.start: tuple[list[Any], bool] | None = state.get("start")
        self.end: tuple[list[Any], bool] | None = state.get("end")
        self.lim: int | None = state.get("lim")

    @property
    def id(self) -> str:
        return self.collection

    def _with(self, **change: Any) -> FakeQuery:
        state = {k: getattr(self, k) for k in ("filters", "orders", "start", "end", "lim")}
        return FakeQuery(self.db, self.collection, **{**state, **change})

    def document(self, doc_id: str) -> FakeRef:
        return FakeRef(self.db, self.collection, doc_id)

    def where(self, *, filter: Any) -> FakeQuery:
        return self._with(
            filters=[*self.filters, (filter.field_path, filter.op_string, filter.value)]
        )

    def order_by(self, field: str, direction: str = "ASCENDING") -> FakeQuery:
        return self._with(orders=[*self.orders, (field, direction)])

    def _values(self, values: Any) -> list[Any]:
        if isinstance(values, dict):
            return [values[f] for f, _ in self.orders]
        if len(values) > len(self.orders):  # as the client refuses them
            raise ValueError(f"The cursor {values!r} does not match the order fields")
        return [v.id if isinstance(v, FakeRef) else v for v in values]

    def start_at(self, values: Any) -> FakeQuery:
        return self._with(start=(self._values(values), True))

    def start_after(self, values: Any) -> FakeQuery:
        return self._with(start=(self._values(values), False))

    def end_before(self, values: Any) -> FakeQuery:
        return self._with(end=(self._values(values), False))

    def limit(self, count: int) -> FakeQuery:
        return self._with(lim=count)

    def select(self, _fields: Any) -> FakeQuery:
        return self

    def count(self, alias: str = "records") -> FakeAggregation:
        return FakeAggregation(self, [("", alias)])

    def _matches(self, row: dict[str, Any]) -> bool:
        for field, op, value in self.filters:
            if field not in row:
                return False
            got, want = _key(row[field]), _key(value)
            if op == "==":
                ok = got == want
            elif got[0] != want[0]:
                ok = False
            else:
                ok = {
                    ">=": got >= want,
                    ">": got > want,
                    "<": got < want,
                    "<=": got <= want,
                }[op]
            if not ok:
                return False
        return all(f in row for f, _ in self.orders)

    def stream(self, **_: Any) -> Iterator[FakeSnap]:
        self.db.check()
        rows = [
            {**data, NAME: doc_id}
            for doc_id, data in self.db.data.get(self.collection, {}).items()
            if self._matches({**data, NAME: doc_id})
        ]
        orders = self.orders or [(NAME, "ASCENDING")]
        if all(f != NAME for f, _ in orders):
            orders = [*orders, (NAME, orders[-1][1])]

        def position(row: dict[str, Any], values: list[Any]) -> int:
            for (field, direction), value in zip(orders, values, strict=False):
                a, b = _key(row[field]), _key(value)
                if a != b:
                    sign = -1 if a < b else 1
                    return -sign if direction == "DESCENDING" else sign
            return 0

        rows.sort(key=functools.cmp_to_key(lambda a, b: position(a, [b[f] for f, _ in orders])))
        if self.start:
            values, inclusive = self.start
            rows = [
                r
                for r in rows
                if position(r, values) > 0 or (inclusive and not position(r, values))
            ]
        if self.end:
            values, inclusive = self.end
            rows = [
                r
                for r in rows
                if position(r, values) < 0 or (inclusive and not position(r, values))
            ]
        for row in rows[: self.lim] if self.lim is not None else rows:
            doc_id = row.pop(NAME)
            yield FakeSnap(FakeRef(self.db, self.collection, doc_id), row)


class FakeFirestore:
    """Documents by collection and id; `fail` (an exception) makes every read raise it."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, dict[str, Any]]] = {}
        self.fail: BaseException | None = None
        self.aggregations = 0

    def check(self) -> None:
        if self.fail is not None:
            raise self.fail

    def put(self, collection: str, doc_id: str, data: dict[str, Any]) -> None:
        self.data.setdefault(collection, {})[doc_id] = data

    def collection(self, name: str) -> FakeQuery:
        return FakeQuery(self, name)

    def get_all(self, refs: Any, **_: Any) -> Iterator[FakeSnap]:
        for ref in refs:
            yield ref.get()
