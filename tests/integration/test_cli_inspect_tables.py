"""The human output of `blueprint inspect ...` through the real CLI on the Firestore emulator:
each kind's table has its columns, and each cell says what the stored document holds."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from devstack.emulators import Emulators
from tests.cli_support import run

pytestmark = pytest.mark.usefixtures("cli_logs")

T0 = dt.datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=dt.UTC)
LONG_VALUE = "'" + "x" * 300 + "'"


def _table(out: str) -> list[dict[str, str]]:
    """The rows of the one rich table in `out`, as header -> cell (no cell may wrap)."""
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("┃"))
    names = [cell.strip() for cell in header.strip("┃").split("┃")]
    body = [line for line in lines if line.startswith("│")]
    rows = [[cell.strip() for cell in line.strip("│").split("│")] for line in body]
    assert all(len(r) == len(names) for r in rows), out
    return [dict(zip(names, r, strict=True)) for r in rows]


def _shown(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    code, out, err = run(["inspect", *argv], capsys)
    assert code == 0, err
    return _table(out)


def _write(db: Any, collection: str, docs: dict[str, dict[str, Any]]) -> None:
    batch = db.batch()
    for doc_id, data in docs.items():
        batch.set(db.collection(collection).document(doc_id), data)
    batch.commit()


def _record(cost: float, minute: int, **extra: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "customer_id": "tbl_cust",
        "scene_id": "scene_kitchen",
        "action": "episodes_generated",
        "timestamp": T0 + dt.timedelta(minutes=minute),
        "billable": True,
        "estimated_cost": cost,
        **extra,
    }


def test_customers_show_tier_quota_counts_contract_and_status(
    seeded: Emulators, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(
        firestore_client,
        "customers",
        {
            "tbl_active": {
                "schema_version": 1,
                "bundle_tier": "pro",
                "monthly_scene_quota": 250,
                "scenes_generated_this_month": 7,
                "total_scenes_generated": 12345,
                "contract_start": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                "contract_end": dt.datetime(2999, 1, 1, tzinfo=dt.UTC),
            },
            "tbl_unlimited": {"schema_version": 1, "bundle_tier": "enterprise"},
            "tbl_bad": {"schema_version": 1, "bundle_tier": "platinum"},
        },
    )
    rows = {r["id"]: r for r in _shown(["customers", "--all"], capsys)}
    assert "lab_001" in rows  # seed-demo's
    assert rows["tbl_active"] == {
        "id": "tbl_active",
        "tier": "pro",
        "quota": "250",
        "this month": "7",
        "total": "12,345",
        "contract start": "2025-01-01 00:00:00Z",
        "contract end": "2999-01-01 00:00:00Z",
        "status": "active",
    }
    assert (rows["tbl_unlimited"]["quota"], rows["tbl_unlimited"]["status"]) == ("unlimited", "-")
    assert (rows["tbl_bad"]["tier"], rows["tbl_bad"]["status"]) == (
        "platinum",
        "invalid: bundle_tier",
    )
    one = _shown(["customers", "tbl_active"], capsys)
    assert one == [rows["tbl_active"]]


def test_usage_shows_the_record_and_its_cost_in_dollars_to_the_cent(
    seeded: Emulators, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    long_id = "tbl_cust_scene_kitchen_episodes_generated_20250304T050607Z_41ba4594037b6cd9"
    _write(
        firestore_client,
        "usage_tracking",
        {
            long_id: _record(1.23, 0, episodes_generated=100, compute_minutes=45.5, storage_gb=2.3),
            "short": _record(1234.5, 1, episodes_generated=None, storage_gb=0.125),
            "free": _record(0.0, 2, compute_minutes=0.0),
        },
    )
    rows = _shown(["usage", "--customer", "tbl_cust", "--month", "2025-03"], capsys)
    assert [r["record"] for r in rows] == ["…4594037b6cd9", "short", "free"]
    assert rows[0] == {
        "record": "…4594037b6cd9",
        "timestamp": "2025-03-04 05:06:07Z",
        "action": "episodes_generated",
        "scene": "scene_kitchen",
        "episodes": "100",
        "compute min": "45.5",
        "storage GB": "2.3",
        "cost": "$1.23",
    }
    assert (rows[1]["cost"], rows[1]["episodes"], rows[1]["storage GB"]) == (
        "$1,234.50",
        "-",
        "0.125",
    )
    assert (rows[2]["cost"], rows[2]["compute min"], rows[2]["storage GB"]) == ("$0.00", "0", "-")


def _rejection(
    kind: str, minute: int, errors: list[dict[str, str]], **extra: Any
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": kind,
        "customer_id": "tbl_cust",
        "reason": f"{kind}: see errors",
        "errors": errors,
        "rejected_at": T0 + dt.timedelta(minutes=minute),
        **extra,
    }


def test_rejections_show_kind_field_value_and_reason_replay_only_when_there_is_one(
    seeded: Emulators, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_time = {"field": "timestamp", "value": "'yesterday'", "expected": "RFC 3339"}
    _write(
        firestore_client,
        "usage_rejections",
        {
            "rej_time": _rejection("invalid_event", 1, [bad_time]),
            "rej_long": _rejection(
                "invalid_event",
                2,
                [{"field": "scene_id", "value": LONG_VALUE, "expected": "an id"}, bad_time],
            ),
            "rej_dead": _rejection(
                "dead_letter",
                0,
                [{"field": "(delivery)", "value": "10", "expected": "an acknowledged delivery"}],
            ),
        },
    )
    rows = _shown(["rejections"], capsys)
    assert set(rows[0]) == {"rejected at", "kind", "customer", "field", "value", "reason"}
    assert [(r["kind"], r["field"], r["value"]) for r in rows] == [
        ("invalid_event", "scene_id (+1)", "'" + "x" * 38 + "…"),
        ("invalid_event", "timestamp", "'yesterday'"),
        ("dead_letter", "(delivery)", "10"),
    ]
    assert rows[1]["rejected at"] == "2025-03-04 05:07:07Z"
    assert rows[1]["customer"] == "tbl_cust"
    assert rows[1]["reason"] == "invalid_event: see errors"

    firestore_client.collection("usage_rejections").document("rej_dead").update(
        {"replayed_at": T0 + dt.timedelta(days=1), "replay_outcome": "recorded"}
    )
    dead = _shown(["dead-letters"], capsys)
    assert [(r["kind"], r["replayed at"], r["replay outcome"]) for r in dead] == [
        ("dead_letter", "2025-03-05 05:06:07Z", "recorded")
    ]
    every = _shown(["rejections", "--kind", "invalid_event"], capsys)
    assert "replay outcome" not in every[0]  # no invalid_event was replayed


def test_alerts_show_threshold_state_and_time(
    seeded: Emulators, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = {"customer_id": "tbl_cust", "month": "2025-03", "created_at": T0}
    _write(
        firestore_client,
        "quota_alerts",
        {
            "tbl_cust_2025-03_80": {
                **marker,
                "threshold_percent": 80,
                "state": "published",
                "published_at": T0 + dt.timedelta(seconds=5),
            },
            "tbl_cust_2025-03_100": {**marker, "threshold_percent": 100, "state": "pending"},
        },
    )
    rows = _shown(["alerts", "--customer", "tbl_cust"], capsys)
    assert [(r["month"], r["threshold"], r["state"], r["time"]) for r in rows] == [
        ("2025-03", "100 %", "pending", "2025-03-04 05:06:07Z"),
        ("2025-03", "80 %", "sent", "2025-03-04 05:06:12Z"),
    ]
    assert {r["customer"] for r in rows} == {"tbl_cust"}


def test_resets_show_month_status_and_counts_and_json_is_unchanged(
    seeded: Emulators, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = {"skipped": 2, "unlimited": 3, "invalid": 1, "errors": 0}
    _write(
        firestore_client,
        "quota_resets",
        {
            "2025-02": {
                "period": "2025-02",
                "customers_reset": 1500,
                "runs": 2,
                "cursor": None,
                "finished_at": T0,
                **counts,
            },
            "2025-03": {"period": "2025-03", "customers_reset": 40, "runs": 1, "cursor": "c9"},
        },
    )
    rows = _shown(["resets"], capsys)
    assert [r["month"] for r in rows] == ["2025-03", "2025-02"]
    assert rows[1] == {
        "month": "2025-02",
        "status": "finished",
        "reset": "1,500",
        "skipped": "2",
        "unlimited": "3",
        "invalid": "1",
        "errors": "0",
        "runs": "2",
        "finished at": "2025-03-04 05:06:07Z",
    }
    assert (rows[0]["status"], rows[0]["reset"], rows[0]["finished at"]) == (
        "in progress",
        "40",
        "-",
    )

    code, out, err = run(["inspect", "resets", "--json"], capsys)
    assert code == 0, err
    page = json.loads(out)
    assert page["next_cursor"] is None
    assert [(i["id"], i["data"]["customers_reset"]) for i in page["items"]] == [
        ("2025-03", 40),
        ("2025-02", 1500),
    ]


def test_a_page_that_is_not_the_last_says_its_cursor(
    seeded: Emulators, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(firestore_client, "customers", {f"tbl_{n}": {"n": n} for n in range(3)})
    code, out, err = run(["inspect", "customers", "--page-size", "2"], capsys)
    assert code == 0, err
    assert len(_table(out)) == 2
    last = out.strip().splitlines()[-1]
    assert last.startswith("next page: --cursor ")
    cursor = last.removeprefix("next page: --cursor ")
    code, out, err = run(["inspect", "customers", "--page-size", "2", "--cursor", cursor], capsys)
    assert code == 0, err
    assert _table(out)
