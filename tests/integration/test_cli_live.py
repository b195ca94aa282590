"""The operators' CLI on the real Firestore emulator: migrate, usage report, seed-demo."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from devstack.emulators import Emulators
from ops.cli import main
from shared.firestore_values import to_firestore
from shared.ids import usage_record_id
from shared.models import BundleTier, UsageEvent, UsageRecord
from shared.pricing import default_rate_card, estimate_cost

EXPORT = Path(__file__).parents[1] / "fixtures" / "migration"
BROKEN = {"mig_cust_007", "mig_cust_031", "mig_scene_0010", "mig_scene_0055", "mig_scene_0099"}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    captured = capsys.readouterr()
    return code, out.getvalue(), captured.err


def count(client: Any, collection: str) -> int:
    return sum(1 for _ in client.collection(collection).list_documents())


def test_migrate_fixture_export(
    clean_firestore: Emulators, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["migrate", str(EXPORT), "--no-progress"], capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert "5 of 173 records are invalid; nothing written" in err
    named = {line.split("\t")[1].split("/")[1] for line in out.splitlines()[2:]}
    assert named == BROKEN
    for collection in ("customers", "scenes", "feature_flags"):
        assert count(firestore_client, collection) == 0

    code, out, err = run(["migrate", str(EXPORT), "--skip-invalid", "--dry-run"], capsys)
    assert code == 0
    assert "would write 214 documents" in out
    assert count(firestore_client, "customers") == 0

    code, out, err = run(["migrate", str(EXPORT), "--skip-invalid", "--batch-size", "50"], capsys)
    assert code == 0, err
    assert "wrote 214 documents" in out
    assert count(firestore_client, "customers") == 48
    assert count(firestore_client, "scenes") == 117
    assert count(firestore_client, "feature_flags") == 49
    flags = firestore_client.collection("feature_flags").document("mig_cust_004").get().to_dict()
    assert flags["sim2real"] is False
    assert flags["audio_narration"] is False
    scene = firestore_client.collection("scenes").document("mig_scene_0001").get().to_dict()
    assert scene["custom_settings"]["lighting_variation"] in {"low", "high"}
    customer = firestore_client.collection("customers").document("mig_cust_001").get().to_dict()
    assert customer["contract_start"] == datetime(2025, 1, 1, tzinfo=UTC)

    code, out, err = run(["migrate", str(EXPORT), "--skip-invalid"], capsys)
    assert code == 0
    assert "wrote 0 documents" in out
    assert "customers: 0 new, 0 changed, 48 unchanged" in out


def _seed_month(client: Any, customer_id: str) -> list[UsageRecord]:
    """Records of March 2025 for the customer, plus noise outside the month and customer."""
    rng = random.Random(7)
    card = default_rate_card()
    client.collection("customers").document(customer_id).set(
        {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 40}
    )
    in_month: list[UsageRecord] = []
    moments = [datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC)]
    moments += [
        datetime(2025, 3, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 31 * 24 * 60))
        for _ in range(58)
    ]
    noise = [
        (customer_id, datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC)),
        (customer_id, datetime(2025, 4, 1, tzinfo=UTC)),
        ("someone_else", datetime(2025, 3, 15, tzinfo=UTC)),
    ]
    batch = client.batch()
    for n, (who, when) in enumerate([(customer_id, m) for m in moments] + noise):
        action = rng.choice(["scene_generated", "episodes_generated", "upsell_applied", "odd"])
        event = UsageEvent(
            schema_version=1,
            event_id=f"rep-{n}",
            customer_id=who,
            scene_id=f"scene_{n % 5}",
            action=action,
            timestamp=when,
            episodes_generated=rng.randrange(0, 200),
            compute_minutes=round(rng.uniform(0, 90), 2),
            storage_gb=round(rng.uniform(0, 5), 3),
        )
        cost = estimate_cost(event, BundleTier.PRO, card)
        record = UsageRecord(
            schema_version=1,
            customer_id=who,
            scene_id=event.scene_id,
            action=action,
            timestamp=when,
            episodes_generated=event.episodes_generated,
            compute_minutes=event.compute_minutes,
            storage_gb=event.storage_gb,
            billable=cost.billable,
            estimated_cost=float(cost.amount),
            rate_card_version=cost.rate_card_version,
            event_id=event.event_id,
        )
        ref = client.collection("usage_tracking").document(usage_record_id(event))
        batch.set(ref, to_firestore(record))
        if who == customer_id and when.month == 3:
            in_month.append(record)
    batch.commit()
    return in_month


def test_usage_report_matches_the_records_to_the_cent(
    clean_firestore: Emulators,
    firestore_client: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    records = _seed_month(firestore_client, "rep_cust")
    chart = tmp_path / "daily.png"
    code, out, err = run(
        ["usage", "report", "--customer", "rep_cust", "--month", "2025-03", "--csv"], capsys
    )
    assert code == 0, err
    table = {row["action"]: row for row in csv.DictReader(io.StringIO(out))}
    expected_cost = sum((Decimal(str(r.estimated_cost)) for r in records), Decimal("0.00"))
    assert Decimal(table["TOTAL"]["cost_usd"]) == expected_cost
    assert int(table["TOTAL"]["records"]) == len(records) == 60
    assert int(table["TOTAL"]["episodes"]) == sum(r.episodes_generated or 0 for r in records)
    assert Decimal(table["TOTAL"]["compute_minutes"]) == sum(
        Decimal(repr(r.compute_minutes)) for r in records
    )
    for action in {r.action for r in records}:
        mine = [r for r in records if r.action == action]
        assert int(table[action]["records"]) == len(mine)
        assert Decimal(table[action]["cost_usd"]) == sum(
            (Decimal(str(r.estimated_cost)) for r in mine), Decimal("0.00")
        )

    code, out, err = run(
        ["usage", "report", "--customer", "rep_cust", "--month", "2025-03", "--chart", str(chart)],
        capsys,
    )
    assert code == 0, err
    scenes = sum(r.action == "scene_generated" for r in records)
    assert f"quota used: {scenes} of 40 scenes" in out
    assert "TOTAL" in out
    assert str(expected_cost) in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"chart written: {chart}" in err


def test_seed_demo_twice(
    clean_firestore: Emulators, firestore_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["seed-demo"], capsys)
    assert code == 0
    assert "wrote 4 configuration documents" in out
    assert "1 usage records" in out
    code, out, _ = run(["seed-demo"], capsys)
    assert "wrote 0 configuration documents" in out
    assert "0 usage records" in out
    code, out, _ = run(["config", "scene", "scene_kitchen_v2"], capsys)
    assert code == 0
    assert "clamped vla_models" in out
    assert "tier pro" in out
