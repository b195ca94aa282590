"""The demo story: the seeded customer's contract is in force, and a counter that started the
month before its records (the seeded 45, or a customer migrated mid-month) is explained by the
usage report instead of disagreeing with it silently."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ops.examples import example_models
from ops.usage_report import build_report, render_table, report_json
from shared.models import Customer


def _scene(day: str) -> tuple[str, dict[str, Any]]:
    record = {
        "schema_version": 1,
        "customer_id": "lab_001",
        "scene_id": "s",
        "action": "scene_generated",
        "timestamp": f"{day}T10:00:00Z",
        "billable": True,
        "estimated_cost": 1.0,
    }
    return f"r-{day}", record


def test_the_demo_customers_contract_is_in_force() -> None:
    customer = example_models()["customers"]["lab_001"]
    assert isinstance(customer, Customer)
    now = datetime.now(UTC)
    assert customer.contract_start is not None
    assert customer.contract_start <= now
    assert customer.contract_end is not None
    assert customer.contract_end > now


SEEDED = {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": 100}


def test_a_counter_beyond_the_records_is_the_months_start() -> None:
    # After the fold: the counter holds the seed + the two records, the period is known.
    customer = {**SEEDED, "scenes_generated_this_month": 47, "quota_period": "2026-12"}
    report = build_report(
        "lab_001", "2026-12", [_scene("2026-12-02"), _scene("2026-12-03")], customer
    )
    assert report.started_at == 45
    text = render_table(report)
    assert (
        "quota used: 47 of 100 scenes (47.0 %): started the month at 45 (counted before the "
        "records) + 2 scene_generated records"
    ) in text
    assert "says 47" not in text  # explained, not a bare disagreement
    quota = report_json(report)["quota"]
    assert (quota["scenes_generated"], quota["customer_counter"], quota["started_month_at"]) == (
        2,
        47,
        45,
    )


def test_a_seed_without_bookkeeping_counts_the_month_of_its_last_write() -> None:
    # Just loaded by `make run` / seed-demo: no quota_period; the document's update time tells
    # the month its 45 counts (the legacy rule, as the fold reads it).
    customer = {**SEEDED, "scenes_generated_this_month": 45}
    written = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)
    report = build_report("lab_001", "2026-12", [], customer, written)
    assert report.started_at == 45
    assert report.quota_text.startswith("45 of 100 scenes (45.0 %): started the month at 45")
    # Another month's report: that counter is not about it.
    other = build_report("lab_001", "2026-11", [], customer, written)
    assert other.counter is None
    assert other.started_at is None
    assert other.quota_text == "0 of 100 scenes (0.0 %)"


def test_records_the_fold_has_not_counted_yet_are_noted() -> None:
    customer = {**SEEDED, "scenes_generated_this_month": 1, "quota_period": "2026-12"}
    report = build_report(
        "lab_001", "2026-12", [_scene("2026-12-02"), _scene("2026-12-03")], customer
    )
    assert report.started_at is None
    assert report.quota_text == "2 of 100 scenes (2.0 %)"
    assert "note: the customer's counter for 2026-12 says 1 (not yet counted" in render_table(
        report
    )
