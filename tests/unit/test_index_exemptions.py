"""No query needs a single-field index that `firestore.indexes.json` exempts.

Checked on the declared shapes (which tests/unit/test_queries_indexes.py proves are the built
queries) and, as a backstop, on the field names of any query built outside shared/queries.py.
Each check is shown to catch a deliberately conflicting declaration.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from shared import names, queries
from shared.queries import DOCUMENT_ID, Direction, QueryShape
from tests.unit.test_queries_indexes import INDEXES, QUERY_METHODS, ROOT

ASC, DESC = Direction.ASCENDING, Direction.DESCENDING
QUERY_MODULES = {
    "shared/queries.py",
    "shared/queries_fold.py",
    "shared/queries_paged.py",
    "shared/queries_sums.py",
    "shared/query_filters.py",
}
"""Modules whose queries are declared shapes (checked structurally), as the stray scanner."""


def declared_shapes() -> list[QueryShape]:
    return [s for b in queries.BUILDERS for s in queries.shapes_of(b)]


def exempted_fields() -> set[str]:
    return {e.field for e in queries.EXEMPTIONS}


def stray_exempt_fields(roots: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """String field names of query calls outside shared/queries.py that are exempted in some
    collection (the collection is not known from the source, so any match counts)."""
    found = []
    for top in roots:
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel in QUERY_MODULES:
                continue
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in QUERY_METHODS | {"FieldFilter"} or not node.args:
                    continue
                first = node.args[0]
                if isinstance(first, ast.Constant) and first.value in exempted_fields():
                    found.append(f"{rel}:{node.lineno}: {first.value}")
    return found


def test_no_declared_query_needs_an_exempted_single_field_index() -> None:
    assert queries.exemption_conflicts(declared_shapes()) == []


def test_no_stray_query_uses_an_exempted_field() -> None:
    roots = ("functions", "shared", "ops", "deploy", "devstack")
    assert stray_exempt_fields(tuple(r for r in roots if (ROOT / r).is_dir())) == []


@pytest.mark.parametrize(
    "shape",
    [
        # range or order on an exempted field alone
        QueryShape(names.USAGE_TRACKING, order=(("recorded_at", ASC),)),
        QueryShape(names.USAGE_TRACKING, order=(("timestamp", DESC), (DOCUMENT_ID, DESC))),
        QueryShape(names.USAGE_REJECTIONS, order=(("rejected_at", ASC),)),
        # equality on an exempted field (merged single-field indexes)
        QueryShape(names.QUOTA_ALERTS, equality=("claimed_by",)),
        QueryShape(names.USAGE_REJECTIONS, equality=("kind", "publish_time")),
        # a collection-group query served by single-field indexes: never built by default
        QueryShape(names.USAGE_COUNTERS, equality=("month",), group=True),
        # the fold's fields alone: only their composites exist
        QueryShape(names.USAGE_TRACKING, equality=("fold_bucket",)),
        QueryShape(names.USAGE_TRACKING, equality=("fold_key",)),
    ],
)
def test_a_conflicting_declaration_is_caught(shape: QueryShape) -> None:
    @queries.declares(shape)
    def conflicting(client: object) -> None: ...

    try:
        assert queries.exemption_conflicts(declared_shapes()) != []
    finally:
        queries.BUILDERS.remove(conflicting)
    assert queries.exemption_conflicts(declared_shapes()) == []


@pytest.mark.parametrize(
    "shape",
    [
        # composites are not affected by single-field exemptions
        QueryShape(names.USAGE_TRACKING, equality=("customer_id",), order=(("timestamp", ASC),)),
        QueryShape(names.USAGE_TRACKING, equality=("fold_bucket",), order=(("recorded_at", ASC),)),
        # kept orders
        QueryShape(names.USAGE_TRACKING, order=(("timestamp", ASC), (DOCUMENT_ID, ASC))),
        QueryShape(names.USAGE_REJECTIONS, order=(("rejected_at", DESC), (DOCUMENT_ID, DESC))),
        QueryShape(names.QUOTA_ALERTS, equality=("customer_id", "month")),
    ],
)
def test_allowed_shapes_pass(shape: QueryShape) -> None:
    assert queries.exemption_conflicts([shape]) == []


def test_stray_scan_catches_an_exempted_field(tmp_path: Path) -> None:
    module = tmp_path / "ops" / "sneaky.py"
    module.parent.mkdir()
    module.write_text(
        "def q(db, FieldFilter):\n"
        "    return db.collection('usage_tracking').order_by('recorded_at')\n"
        "def r(db, FieldFilter):\n"
        "    return db.collection('x').where(filter=FieldFilter('payload', '==', 1))\n"
    )
    assert stray_exempt_fields(("ops",), tmp_path) == [
        "ops/sneaky.py:2: recorded_at",
        "ops/sneaky.py:4: payload",
    ]


def test_exemptions_are_listed_once_with_a_reason_and_cover_the_brief() -> None:
    keys = [(e.collection, e.field) for e in queries.EXEMPTIONS]
    assert len(keys) == len(set(keys))
    assert all(e.reason for e in queries.EXEMPTIONS)
    for wanted in [
        (names.USAGE_TRACKING, "timestamp"),
        (names.USAGE_TRACKING, "recorded_at"),
        (names.USAGE_TRACKING, "details"),
        (names.USAGE_REJECTIONS, "rejected_at"),
        (names.USAGE_REJECTIONS, "publish_time"),
        (names.USAGE_REJECTIONS, "payload"),
        (names.USAGE_TRACKING, "fold_bucket"),
        (names.USAGE_TRACKING, "fold_key"),
    ]:
        assert wanted in keys


def test_field_overrides_follow_the_firebase_tools_format() -> None:
    """firebase-tools' spec: collectionGroup, fieldPath, optional ttl, indexes of
    {order|arrayConfig, queryScope}; an empty `indexes` list exempts every mode."""
    overrides = json.loads(INDEXES.read_text())["fieldOverrides"]
    assert overrides
    for entry in overrides:
        assert set(entry) == {"collectionGroup", "fieldPath", "ttl", "indexes"}
        assert entry["ttl"] is False
        for index in entry["indexes"]:
            assert set(index) == {"order", "queryScope"}
            assert index["order"] in {"ASCENDING", "DESCENDING"}
            assert index["queryScope"] in {"COLLECTION", "COLLECTION_GROUP"}
