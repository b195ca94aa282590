"""The export's CSV: text a spreadsheet would run as a formula is written as text."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ops.export import CustomerTotals, RecordRow, write_csv, write_jsonl


def _totals(customer_id: str, cost: str = "1.5") -> CustomerTotals:
    return CustomerTotals(
        month="2026-03",
        customer_id=customer_id,
        customer_exists=True,
        records=3,
        billable_records=2,
        episodes=1,
        compute_minutes=Decimal("0.25"),
        storage_gb=Decimal(0),
        cost_usd=Decimal(cost),
        scenes_used=1,
        monthly_scene_quota=-1,
    )


def _cells(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    "customer_id", ["=1+2", "+1", "-1", "@SUM(1+1)", "\tx", '=HYPERLINK("x","y")']
)
def test_a_text_cell_that_reads_as_a_formula_is_written_behind_a_quote(customer_id: str) -> None:
    out = io.StringIO()
    write_csv([_totals(customer_id)], out)
    (row,) = _cells(out.getvalue())
    assert row["customer_id"] == "'" + customer_id
    # Numbers are left as they are; JSON keeps the id unchanged.
    assert (row["cost_usd"], row["compute_minutes"], row["monthly_scene_quota"]) == (
        "1.50",
        "0.25",
        "-1",
    )
    lines = io.StringIO()
    write_jsonl([_totals(customer_id)], lines)
    assert json.loads(lines.getvalue())["customer_id"] == customer_id


def test_other_text_and_every_record_field_is_checked() -> None:
    out = io.StringIO()
    write_csv([_totals("\rx")], out)
    assert _cells(out.getvalue())[0]["customer_id"] == "'\rx"
    out = io.StringIO()
    write_csv([_totals("acme-1"), _totals("a=b")], out)
    assert [r["customer_id"] for r in _cells(out.getvalue())] == ["acme-1", "a=b"]
    record = RecordRow(
        month="2026-03",
        id="r1",
        customer_id="c1",
        scene_id="-scene",
        action="@act",
        timestamp=datetime(2026, 3, 1, tzinfo=UTC),
        billable=True,
        episodes=0,
        compute_minutes=Decimal(0),
        storage_gb=Decimal(0),
        cost_usd=Decimal("0.1"),
        rate_card_version="=v1",
        pricing_tier=None,
    )
    out = io.StringIO()
    write_csv([record], out, RecordRow)
    (row,) = _cells(out.getvalue())
    assert (row["scene_id"], row["action"], row["rate_card_version"], row["pricing_tier"]) == (
        "'-scene",
        "'@act",
        "'=v1",
        "",
    )


def test_a_line_break_inside_a_cell_stays_inside_it() -> None:
    out = io.StringIO()
    write_csv([_totals("a\rb"), _totals("c\nd")], out)
    assert [row["customer_id"] for row in _cells(out.getvalue())] == ["a\rb", "c\nd"]
