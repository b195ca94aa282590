"""Every composite query of shared/queries.py has its index, and no index is unused.

The declared shapes are checked against the queries really built (their StructuredQuery), so a
builder cannot drift from what it declares. Building a query needs no server.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from deploy import cloudbuild
from shared import queries, times
from shared.queries import DOCUMENT_ID, Direction, QueryShape
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
INDEXES = ROOT / "firestore.indexes.json"
SETTINGS = load_settings({})
JAN = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
FEB = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)

EXAMPLES: dict[str, list[dict[str, Any]]] = {
    # builder name -> argument sets that together produce every shape it declares
    "usage_by_customer": [{"customer_id": "c1", "start": JAN, "end": FEB}],
    "usage_by_scene": [{"scene_id": "s1", "start": JAN, "end": FEB}],
    "usage_report": [
        {"customer_id": "c1", "month": "2025-01"},
        {"customer_id": "c1", "month": "2025-01", "action": "scene_generated"},
    ],
    "usage_next_action": [{"customer_id": "c1"}, {"customer_id": "c1", "after": "a"}],
    "usage_sums": [
        {"customer_id": "c1", "action": "scene_generated", "start": JAN, "end": FEB},
    ],
    "usage_billable": [
        {"customer_id": "c1", "action": "scene_generated", "start": JAN, "end": FEB},
    ],
    "customers_by_id": [{}, {"after_id": "c9"}, {"after_id": "c9", "limit": 100}],
    "customers_reset_for_period": [{"period": "2025-01"}],
    "new_records": [
        {"bucket": 3, "after": None, "upto": JAN, "limit": 500},
        {"bucket": 3, "after": JAN, "upto": FEB, "limit": 500},
    ],
    "month_records": [{"month_key": "c1_2025-01", "upto": FEB}],
    "month_summaries": [
        {"month": "2025-01", "limit": 100},
        {"month": "2025-01", "limit": 100, "after": "c1_2025-01"},
    ],
    "pending_alerts": [{"limit": 200}],
    "usage_page": [
        {"month": "2025-01"},
        {"month": "2025-01", "customer_id": "c1", "after": [JAN, "r1"], "limit": 10},
        {"month": "2025-01", "customer_id": "c1", "action": "scene_generated"},
    ],
    "rejections_page": [
        {},
        {"since": JAN, "after": [FEB, "x"], "limit": 5},
        {"kind": "dead_letter"},
        {"customer_id": "c1", "since": JAN},
        {"kind": "invalid_event", "customer_id": "c1"},
    ],
    "replay_page": [
        {"kind": "dead_letter"},
        {"kind": "dead_letter", "since": JAN, "after": [FEB, "x"], "limit": 5},
        {"kind": "unknown_customer", "customer_id": "c1", "since": JAN},
        {"kind": "dead_letter", "before": FEB},
        {"kind": "unknown_customer", "customer_id": "c1", "since": JAN, "before": FEB},
    ],
    "alerts_page": [
        {"after": ["c1_2025-01_80"], "limit": 3},
        {"customer_id": "c1"},
        {"month": "2025-01"},
        {"customer_id": "c1", "month": "2025-01"},
    ],
    "resets_page": [{}, {"after": ["2025-01", "2025-01"], "limit": 2}],
    "rolled_out_page": [{"feature": "tactile"}, {"feature": "tactile", "after": ["c1"]}],
}


@pytest.fixture(scope="module")
def client() -> Any:
    return firestore.Client(project="demo-offline", credentials=AnonymousCredentials())


def shape_of(query: Any) -> tuple[QueryShape, set[str]]:
    """The shape of a built query, plus the fields it filters with a range operator."""
    proto = query._to_protobuf()
    (source,) = proto.from_
    filters = (
        [f.field_filter for f in proto.where.composite_filter.filters]
        if proto.where.composite_filter.filters
        else [proto.where.field_filter]
        if proto.where.field_filter.field.field_path
        else []
    )
    equality = tuple(f.field.field_path for f in filters if f.op.name == "EQUAL")
    ranged = {f.field.field_path for f in filters if f.op.name != "EQUAL"}
    order = tuple((o.field.field_path, Direction(o.direction.name)) for o in proto.order_by)
    return QueryShape(source.collection_id, equality, order, source.all_descendants), ranged


def built_shapes(client: Any) -> dict[str, set[QueryShape]]:
    result: dict[str, set[QueryShape]] = {}
    for builder in queries.BUILDERS:
        shapes = set()
        for kwargs in EXAMPLES[builder.__name__]:
            shape, ranged = shape_of(builder(client, settings=SETTINGS, **kwargs))
            # Firestore orders first on the range-filtered field; the shape must say so.
            assert ranged <= {f for f, _ in shape.order[:1]}, (builder.__name__, ranged)
            shapes.add(shape)
        result[builder.__name__] = shapes
    return result


def serves(index: dict[str, Any], shape: QueryShape) -> bool:
    """Whether a firestore.indexes.json entry serves a query of this shape.

    Equality fields may come in any order before the ordered fields, which must match exactly.
    """
    fields = [(f["fieldPath"], f["order"]) for f in index["fields"]]
    order = [(f, str(d)) for f, d in shape.order if f != DOCUMENT_ID]
    n_eq = len(shape.equality)
    return (
        index["collectionGroup"] == shape.collection
        and index.get("queryScope", "COLLECTION")
        == ("COLLECTION_GROUP" if shape.group else "COLLECTION")
        and len(fields) == n_eq + len(order)
        and {f for f, _ in fields[:n_eq]} == set(shape.equality)
        and fields[n_eq:] == order
    )


def test_every_builder_has_examples_and_declares_what_it_builds(client: Any) -> None:
    assert {b.__name__ for b in queries.BUILDERS} == set(EXAMPLES)
    for name, shapes in built_shapes(client).items():
        declared = set(queries.shapes_of(getattr(queries, name)))
        assert shapes == declared, f"{name} builds {shapes}, declares {declared}"


def test_every_composite_query_has_its_index_and_no_index_is_unused(client: Any) -> None:
    indexes = json.loads(INDEXES.read_text())["indexes"]
    shapes = {s for found in built_shapes(client).values() for s in found}
    composite = {s for s in shapes if s.composite_index() is not None}
    assert composite, "the usage queries are composite: the classification is broken"
    for shape in composite:
        assert any(serves(i, shape) for i in indexes), f"no index serves {shape}"
    for index in indexes:
        assert any(serves(index, s) for s in composite), f"unused index {index}"


def test_committed_indexes_file_is_the_generated_one() -> None:
    assert INDEXES.read_text() == cloudbuild.indexes_json(), (
        "firestore.indexes.json is stale: run `python -m deploy indexes > firestore.indexes.json`"
    )


def test_schema_md_usage_indexes_are_kept() -> None:
    """The specification promises (customer_id, timestamp) and (scene_id, timestamp)."""
    wanted = [["customer_id", "timestamp"], ["scene_id", "timestamp"]]
    got = [
        [f["fieldPath"] for f in i["fields"]]
        for i in json.loads(INDEXES.read_text())["indexes"]
        if i["collectionGroup"] == "usage_tracking"
    ]
    for fields in wanted:
        assert fields in got


@pytest.mark.parametrize(
    ("shape", "composite"),
    [
        (QueryShape("c", equality=("a",)), False),
        (QueryShape("c", equality=("a", "b")), False),
        (QueryShape("c", order=(("t", Direction.ASCENDING),)), False),
        (QueryShape("c", order=((DOCUMENT_ID, Direction.ASCENDING),)), False),
        (QueryShape("c", equality=("a",), order=((DOCUMENT_ID, Direction.ASCENDING),)), False),
        (QueryShape("c", equality=("a",), order=(("t", Direction.ASCENDING),)), True),
        (QueryShape("c", order=(("t", Direction.ASCENDING), ("u", Direction.DESCENDING))), True),
    ],
)
def test_composite_classification(shape: QueryShape, composite: bool) -> None:
    assert (shape.composite_index() is not None) is composite


def test_month_bounds() -> None:
    assert times.month_bounds("2025-01") == (JAN, FEB)
    assert times.month_bounds("2024-12") == (
        dt.datetime(2024, 12, 1, tzinfo=dt.UTC),
        dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    for bad in ("2025-13", "2025-1", "25-01", "2025-00", ""):
        with pytest.raises(ValueError, match="YYYY-MM"):
            times.month_bounds(bad)


def test_bad_arguments_fail_with_the_value(client: Any) -> None:
    naive = dt.datetime(2025, 1, 1)  # noqa: DTZ001
    with pytest.raises(ValueError, match=r"start=.*timezone-aware"):
        queries.usage_by_customer(client, "c1", naive, FEB, settings=SETTINGS)
    with pytest.raises(ValueError, match="before start"):
        queries.usage_by_scene(client, "s1", FEB, JAN, settings=SETTINGS)
    with pytest.raises(ValueError, match="limit=0"):
        queries.customers_by_id(client, limit=0, settings=SETTINGS)


def test_collection_names_follow_settings(client: Any) -> None:
    renamed = load_settings({"BLUEPRINT_USAGE_TRACKING_COLLECTION": "usage_v2"})
    query = queries.usage_by_customer(client, "c1", JAN, FEB, settings=renamed)
    assert shape_of(query)[0].collection == "usage_v2"
    query = queries.customers_by_id(client, settings=SETTINGS, collection="reset_test_customers")
    assert shape_of(query)[0].collection == "reset_test_customers"
    query = queries.customers_reset_for_period(client, "2025-01", collection="other")
    assert shape_of(query)[0].collection == "other"


QUERY_METHODS = frozenset(
    {
        "where",
        "order_by",
        "start_after",
        "start_at",
        "end_at",
        "end_before",
        "limit",
        "limit_to_last",
        "offset",
        "collection_group",
        "find_nearest",
    }
)
"""Query-building calls of the Firestore client: only shared/queries.py may make them."""


def stray_queries(
    roots: tuple[str, ...] = ("functions", "shared", "ops", "deploy", "devstack"),
) -> list[str]:
    """Every place outside shared/queries.py that builds a filtered, ordered or paged query."""
    found = []
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in {
                "shared/queries.py",
                "shared/queries_fold.py",
                "shared/queries_paged.py",
                "shared/queries_sums.py",
                "shared/query_filters.py",
            }:
                continue
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in QUERY_METHODS
                ):
                    found.append(f"{rel}:{node.lineno}: .{node.func.attr}(...)")
                elif isinstance(node, ast.Name) and node.id == "FieldFilter":
                    found.append(f"{rel}:{node.lineno}: FieldFilter")
    return found


def test_every_query_of_the_code_base_lives_in_the_queries_module() -> None:
    """A query built elsewhere would escape the index check above (and need its own index)."""
    assert stray_queries() == [], "move these queries into shared/queries.py"


def test_stray_query_scan_is_not_vacuous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "functions" / "sneaky.py"
    module.parent.mkdir()
    module.write_text(
        "def q(db, FieldFilter):\n"
        "    return db.collection('c').where(filter=FieldFilter('a', '==', 1)).order_by('t')\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert stray_queries(("functions",)) == [
        "functions/sneaky.py:2: .order_by(...)",
        "functions/sneaky.py:2: .where(...)",
        "functions/sneaky.py:2: FieldFilter",
    ]


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        ("acme", "acmf"),
        ("a\ud7ff", "a\ue000"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff", None),
    ],
)
def test_a_prefix_ends_before_the_first_text_after_it(prefix: str, end: str | None) -> None:
    assert queries._after_prefix(prefix) == end
