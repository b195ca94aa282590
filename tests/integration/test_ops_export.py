"""ops.export on the real emulator: totals are the exact Decimal sums of the records."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest

from ops import export
from ops.export import CustomerTotals, ExportError, ExportStats, RecordRow

NOW = dt.datetime(2025, 3, 20, tzinfo=dt.UTC)
T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)

pytestmark = pytest.mark.usefixtures("clean_firestore")

# Amounts whose binary floats do not add up: 0.1 + 0.2 != 0.3 in floating point.
AWKWARD = [
    # (customer, action, episodes, compute, storage, cost)
    ("c_a", "scene_generated", 0, 0.1, 0.7, 0.1),
    ("c_a", "scene_generated", 0, 0.2, 0.1, 0.2),
    ("c_a", "episodes_generated", 3, 1.1, 0.2, 0.7),
    ("c_a", "episodes_generated", 7, 2.2, 1.3, 15.5),
    ("c_b", "scene_generated", 0, 0.3, 0.6, 0.01),
    ("c_b", "upsell_applied", 0, 0.0, 0.0, 0.0),
    ("c_gone", "scene_generated", 0, 33.3, 0.1, 9.99),
]


def _seed(db: Any) -> None:
    batch = db.batch()
    for i, (customer, action, episodes, compute, storage, cost) in enumerate(AWKWARD * 3):
        batch.set(
            db.collection("usage_tracking").document(f"rec_{i:03d}"),
            {
                "schema_version": 1,
                "customer_id": customer,
                "scene_id": "scene_1",
                "action": action,
                "timestamp": T0 + dt.timedelta(hours=i % 5),  # ties across customers
                "episodes_generated": episodes,
                "compute_minutes": compute,
                "storage_gb": storage,
                "billable": cost > 0,
                "estimated_cost": cost,
            },
        )
    # Outside the month, and an invalid record inside it: neither is summed.
    batch.set(
        db.collection("usage_tracking").document("rec_april"),
        {
            "schema_version": 1,
            "customer_id": "c_a",
            "scene_id": "s",
            "action": "scene_generated",
            "timestamp": dt.datetime(2025, 4, 1, tzinfo=dt.UTC),
            "billable": True,
            "estimated_cost": 1.0,
        },
    )
    batch.set(
        db.collection("usage_tracking").document("rec_bad"),
        {
            "schema_version": 1,
            "customer_id": "c_a",
            "scene_id": "s",
            "action": "scene_generated",
            "timestamp": T0,
            "billable": True,
            "estimated_cost": -5.0,
        },
    )
    customers = db.collection("customers")
    batch.set(
        customers.document("c_a"),
        {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 10},
    )
    batch.set(customers.document("c_b"), {"schema_version": 1, "bundle_tier": "standard"})
    batch.set(customers.document("c_idle"), {"schema_version": 1, "bundle_tier": "standard"})
    batch.commit()


def _expected(customer: str) -> dict[str, Any]:
    mine = [r for r in AWKWARD * 3 if r[0] == customer]
    return {
        "records": len(mine),
        "episodes": sum(r[2] for r in mine),
        "compute_minutes": sum((Decimal(str(r[3])) for r in mine), Decimal(0)),
        "storage_gb": sum((Decimal(str(r[4])) for r in mine), Decimal(0)),
        "cost_usd": sum((Decimal(str(r[5])) for r in mine), Decimal(0)),
        "scenes_used": sum(r[1] == "scene_generated" for r in mine),
    }


def test_totals_are_the_exact_decimal_sums_of_the_records(firestore_client: Any) -> None:
    _seed(firestore_client)
    stats = ExportStats()
    rows = list(
        export.customer_totals(firestore_client, "2025-03", now=NOW, page_size=4, stats=stats)
    )
    by_id = {r.customer_id: r for r in rows}
    assert [r.customer_id for r in rows] == ["c_a", "c_b", "c_idle", "c_gone"]
    for customer in ("c_a", "c_b", "c_gone"):
        got = by_id[customer]
        assert {k: getattr(got, k) for k in _expected(customer)} == _expected(customer)
    assert by_id["c_a"].cost_usd == Decimal("49.50")  # 3 x (0.1 + 0.2 + 0.7 + 15.5)
    assert by_id["c_a"].compute_minutes == Decimal("10.8")
    # The data is awkward: summed as floats, these totals would be off.
    assert sum(r[5] for r in AWKWARD * 3 if r[0] == "c_a") != 49.5
    assert sum(r[3] for r in AWKWARD * 3 if r[0] == "c_b") != 0.9
    assert by_id["c_b"].compute_minutes == Decimal("0.9")
    assert (by_id["c_a"].scenes_used, by_id["c_a"].monthly_scene_quota) == (6, 10)
    assert by_id["c_gone"].customer_exists is False
    assert by_id["c_idle"].records == 0
    assert by_id["c_idle"].cost_usd == 0
    assert stats.records_read == len(AWKWARD) * 3 + 1
    assert stats.records_skipped == 1
    assert stats.skipped[0].startswith("rec_bad: estimated_cost")

    active = list(export.customer_totals(firestore_client, "2025-03", now=NOW, include_idle=False))
    assert [r.customer_id for r in active] == ["c_a", "c_b", "c_gone"]


def test_record_export_streams_every_valid_record_once_in_time_order(
    firestore_client: Any,
) -> None:
    _seed(firestore_client)
    rows = list(export.record_rows(firestore_client, "2025-03", now=NOW, page_size=5))
    assert len(rows) == len(AWKWARD) * 3
    assert len({r.id for r in rows}) == len(rows)
    assert [r.timestamp for r in rows] == sorted(r.timestamp for r in rows)
    total = sum((r.cost_usd for r in rows), Decimal(0))
    assert total == sum((Decimal(str(r[5])) for r in AWKWARD * 3), Decimal(0))


def test_csv_parses_back_to_the_same_totals(firestore_client: Any) -> None:
    _seed(firestore_client)
    out = io.StringIO()
    written = export.write_csv(export.customer_totals(firestore_client, "2025-03", now=NOW), out)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert written == len(parsed) == 4
    assert list(parsed[0]) == export.columns(CustomerTotals)
    a = next(r for r in parsed if r["customer_id"] == "c_a")
    assert Decimal(a["cost_usd"]) == Decimal("49.50")
    assert a["cost_usd"] == "49.50"
    assert Decimal(a["storage_gb"]) == _expected("c_a")["storage_gb"]
    idle = next(r for r in parsed if r["customer_id"] == "c_idle")
    assert (idle["cost_usd"], idle["monthly_scene_quota"], idle["records"]) == ("0.00", "", "0")

    out = io.StringIO()
    export.write_csv(export.record_rows(firestore_client, "2025-03", now=NOW), out, kind=RecordRow)
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(records) == len(AWKWARD) * 3
    assert records[0]["timestamp"].endswith("Z")


def test_jsonl_is_one_object_per_line_with_exact_amounts(firestore_client: Any) -> None:
    _seed(firestore_client)
    out = io.StringIO()
    export.write_jsonl(export.customer_totals(firestore_client, "2025-03", now=NOW), out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) for o in objects)
    b = next(o for o in objects if o["customer_id"] == "c_b")
    assert b["cost_usd"] == "0.03"
    assert Decimal(b["compute_minutes"]) == Decimal("0.9")
    assert b["records"] == 6
    assert b["monthly_scene_quota"] is None


@pytest.mark.parametrize(
    ("month", "message"),
    [("2025-04", "month='2025-04' is in the future"), ("2025-13", "month='2025-13'")],
)
def test_a_future_or_bad_month_is_refused_naming_it(
    firestore_client: Any, month: str, message: str
) -> None:
    # Refused at the call, before the caller starts writing a file.
    with pytest.raises(ExportError, match=message):
        export.customer_totals(firestore_client, month, now=NOW)
    with pytest.raises(ExportError, match=message):
        export.record_rows(firestore_client, month, now=NOW)
    assert issubclass(ExportError, ValueError)
