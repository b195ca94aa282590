"""The usage service with fakes of its two Protocols: records, counters, rejections, alerts."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from functions import usage
from functions.usage import (
    REJECTION_PAYLOAD_LIMIT,
    CustomerCache,
    Limits,
    Outcome,
    UsageService,
    decode_pubsub,
    prepare,
    read_customer,
)
from ops.jsonschema import SCHEMA_FILE, render
from shared import quota
from shared.errors import TransientError
from shared.ids import message_doc_id, usage_record_id
from shared.models import BundleTier, Customer, UsageEvent, UsageRecord, validate
from shared.pricing import default_rate_card
from shared.types import MAX_EVENT_COUNT
from tests.usage_support import (
    NOW,
    FakePublisher,
    FakeRepository,
    cloud_event,
    event_body,
    expected_cost,
    malformed_bodies,
    message,
)


@pytest.fixture
def repo() -> FakeRepository:
    r = FakeRepository()
    r.put_customer("lab_001", bundle_tier="pro", monthly_scene_quota=10)
    return r


@pytest.fixture
def pub() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def service(repo: FakeRepository, pub: FakePublisher) -> UsageService:
    return UsageService(repo, pub)


@pytest.fixture
def log_lines() -> Iterator[list[logging.LogRecord]]:
    lines: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record)

    handler = Collect()
    logger = logging.getLogger("blueprint")
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)


def scene(n: int, customer: str = "lab_001", **over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": f"scene-{customer}-{n}",
        "customer_id": customer,
        "action": "scene_generated",
        "timestamp": "2025-01-15T10:00:00Z",
        "episodes_generated": None,
        "compute_minutes": None,
        "storage_gb": None,
        "details": None,
    }
    return event_body(**{**fields, **over})


# -- records and cost ----------------------------------------------------------------------


def test_schema_example_is_recorded_once_with_cost_15_50(
    service: UsageService, repo: FakeRepository
) -> None:
    result = service.handle(message(event_body(), "m-42"), NOW)
    assert result.outcome is Outcome.RECORDED
    record = repo.records[result.record_id or ""]
    assert record["estimated_cost"] == 15.50
    assert record["billable"] is True
    assert record["rate_card_version"] == default_rate_card().version
    assert record["pricing_tier"] == "pro"
    assert record["message_id"] == "m-42"
    assert record["event_id"] == "evt-1"
    assert record["details"] == {"batch_size": 10, "quality_level": "high"}
    assert record["timestamp"] == datetime(2025, 1, 10, 14, 30, tzinfo=UTC)
    # Every schema.md field plus the bookkeeping ones, and it is a valid UsageRecord.
    stored = {k: v for k, v in record.items() if k != "recorded_at"}
    validate(UsageRecord, stored)
    assert repo.customers["lab_001"]["total_episodes_generated"] == 100


@pytest.mark.parametrize("tier", list(BundleTier))
def test_each_tier_prices_with_its_own_rates(tier: BundleTier, repo: FakeRepository) -> None:
    repo.put_customer("c_tier", bundle_tier=tier.value)
    service = UsageService(repo, FakePublisher())
    body = event_body(customer_id="c_tier", compute_minutes=12.25, storage_gb=0.7)
    result = service.handle(message(body), NOW)
    record = repo.records[result.record_id or ""]
    rates = default_rate_card().rates[tier]
    expected = expected_cost(
        body,
        {
            "compute_minute": str(rates.compute_minute),
            "storage_gb": str(rates.storage_gb),
            "episode": str(rates.episode),
        },
    )
    assert record["estimated_cost"] == expected
    assert record["pricing_tier"] == tier.value


def test_redelivery_writes_nothing_and_counts_nothing(
    service: UsageService, repo: FakeRepository
) -> None:
    first = service.handle(message(scene(1), "m-1"), NOW)
    again = service.handle(message(scene(1), "m-1"), NOW)
    other_message_same_event = service.handle(message(scene(1), "m-2"), NOW)
    assert first.outcome is Outcome.RECORDED
    assert again.outcome is Outcome.DUPLICATE
    assert other_message_same_event.outcome is Outcome.DUPLICATE
    assert len(repo.records) == 1
    assert repo.customers["lab_001"]["total_scenes_generated"] == 1


def test_without_event_id_the_record_id_comes_from_the_tuple(
    service: UsageService, repo: FakeRepository
) -> None:
    body = scene(1, event_id=None)
    service.handle(message(body, "m-1"), NOW)
    service.handle(message(body, "m-2"), NOW)
    assert list(repo.records) == [usage_record_id(UsageEvent.model_validate(body))]


def test_scene_counts_this_month_by_month_and_total(
    service: UsageService, repo: FakeRepository
) -> None:
    result = service.handle(message(scene(1, episodes_generated=7)), NOW)
    doc = repo.customers["lab_001"]
    assert doc["scenes_generated_this_month"] == 1
    assert doc["scene_counts_by_month"] == {"2025-01": 1}
    assert doc["total_scenes_generated"] == 1
    assert doc["total_episodes_generated"] == 7
    assert result.counters[("scenes_generated_this_month",)] == 1


def test_event_of_a_month_whose_reset_is_pending_counts_only_by_month(
    service: UsageService, repo: FakeRepository
) -> None:
    repo.put_customer(
        "lab_001", bundle_tier="pro", quota_period="2024-12", scenes_generated_this_month=40
    )
    service.handle(message(scene(1)), NOW)
    doc = repo.customers["lab_001"]
    assert doc["scenes_generated_this_month"] == 40
    assert doc["scene_counts_by_month"] == {"2025-01": 1}


def test_unknown_action_is_recorded_unbillable_with_a_warning(
    service: UsageService, repo: FakeRepository, log_lines: list[logging.LogRecord]
) -> None:
    result = service.handle(message(event_body(action="teleport_applied")), NOW)
    record = repo.records[result.record_id or ""]
    assert record["billable"] is False
    assert record["estimated_cost"] == 0.0
    warnings = [r for r in log_lines if r.levelno == logging.WARNING]
    assert any("teleport_applied" in r.getMessage() for r in warnings)


def test_partly_invalid_customer_still_records_priced_as_standard(
    repo: FakeRepository, log_lines: list[logging.LogRecord]
) -> None:
    repo.put_customer("odd", bundle_tier="platinum", total_scenes_generated=3)
    result = UsageService(repo, FakePublisher()).handle(message(event_body(customer_id="odd")), NOW)
    assert repo.records[result.record_id or ""]["pricing_tier"] == "standard"
    errors = [r for r in log_lines if r.levelno == logging.ERROR]
    assert any("bundle_tier" in r.getMessage() and "platinum" in r.getMessage() for r in errors)


def test_read_customer_keeps_valid_fields() -> None:
    customer, errors = read_customer(
        {"schema_version": 1, "bundle_tier": "pro", "monthly_scene_quota": "lots", "x": 1}
    )
    assert customer.bundle_tier is BundleTier.PRO
    assert customer.monthly_scene_quota is None
    assert {e.field for e in errors} == {"monthly_scene_quota", "x"}


# -- rejections ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "body"), sorted(malformed_bodies().items()))
def test_malformed_message_is_stored_once_and_never_counted(
    name: str, body: bytes, service: UsageService, repo: FakeRepository
) -> None:
    before = json.dumps(repo.customers, sort_keys=True)
    first = service.handle(message(body, f"m-{name}"), NOW)
    second = service.handle(message(body, f"m-{name}"), NOW)
    assert first.outcome is Outcome.REJECTED, name
    assert second.outcome is Outcome.REJECTED_BEFORE
    assert repo.records == {}
    assert json.dumps(repo.customers, sort_keys=True) == before
    doc = repo.rejections[message_doc_id(f"m-{name}")]
    assert doc["message_id"] == f"m-{name}"
    assert doc["reason"]
    assert doc["errors"]
    assert doc["payload_bytes"] == len(body)
    # The reason names each field (or the body as a whole) and the value it held.
    assert all(e["field"] and "expected" in e for e in doc["errors"])
    for e in doc["errors"]:
        assert f"{e['field']}={e['value']}" in doc["reason"], (name, doc["reason"])


def test_rejection_reason_names_field_and_value(
    service: UsageService, repo: FakeRepository
) -> None:
    service.handle(message(event_body(episodes_generated=-3), "m-neg"), NOW)
    doc = repo.rejections[message_doc_id("m-neg")]
    assert "episodes_generated=-3" in doc["reason"]
    assert doc["customer_id"] == "lab_001"
    assert doc["payload"] == json.dumps(event_body(episodes_generated=-3))
    assert doc["payload_encoding"] == "utf-8"


def test_counts_beyond_64_bits_are_rejected_naming_the_field(
    service: UsageService, repo: FakeRepository
) -> None:
    # Firestore stores 64-bit integers: the client would refuse the record with a message
    # naming no field; the model must refuse it first, naming field and value.
    result = service.handle(message(event_body(episodes_generated=2**63), "m-big-int"), NOW)
    assert result.outcome is Outcome.REJECTED
    assert result.rejection is not None
    assert result.rejection.kind == "invalid_event"
    assert f"episodes_generated={2**63}" in result.rejection.reason
    # One event may count at most MAX_EVENT_COUNT: the counters it adds to cannot saturate.
    over = service.handle(
        message(event_body(episodes_generated=MAX_EVENT_COUNT + 1), "m-over"), NOW
    )
    assert over.rejection is not None
    assert f"episodes_generated={MAX_EVENT_COUNT + 1}: expected at most" in over.rejection.reason
    largest = service.handle(message(event_body(episodes_generated=MAX_EVENT_COUNT), "m-max"), NOW)
    assert largest.outcome is Outcome.RECORDED


def test_huge_finite_amounts_are_recorded_not_redelivered_forever(
    service: UsageService, repo: FakeRepository
) -> None:
    # A cost of 1e26 or more once made Decimal raise: a valid event that could never be acked.
    body = event_body(compute_minutes=1e300, storage_gb=1.7976931348623157e308)
    result = service.handle(message(body, "m-huge"), NOW)
    assert result.outcome is Outcome.RECORDED
    cost = repo.records[result.record_id or ""]["estimated_cost"]
    assert cost == float(Decimal("1e300") * Decimal("0.30") + Decimal("1.7976931348623157e308") / 2)


def test_unknown_customer_and_schema_version_kinds(service: UsageService) -> None:
    unknown = service.handle(message(event_body(customer_id="ghost")), NOW)
    version = service.handle(message(event_body(schema_version=7), "m-2"), NOW)
    assert unknown.rejection
    assert unknown.rejection.kind == "unknown_customer"
    assert "customer_id='ghost'" in unknown.rejection.reason
    assert version.rejection
    assert version.rejection.kind == "unknown_schema_version"


def test_oversized_body_is_truncated_on_a_character_boundary(
    service: UsageService, repo: FakeRepository
) -> None:
    body = json.dumps(event_body(details={"note": "é" * 40_000})).encode()
    service.handle(message(body, "m-big"), NOW)
    doc = repo.rejections[message_doc_id("m-big")]
    assert doc["kind"] == "oversized"
    assert doc["payload_bytes"] == len(body)
    assert doc["payload_truncated"] is True
    stored = doc["payload"].encode()
    assert len(stored) <= REJECTION_PAYLOAD_LIMIT
    assert body.startswith(stored)


def test_binary_payload_is_kept_as_base64(service: UsageService, repo: FakeRepository) -> None:
    raw = b"\x00\xff\xfe binary"
    service.handle(message(raw, "m-bin"), NOW)
    doc = repo.rejections[message_doc_id("m-bin")]
    assert doc["payload_encoding"] == "base64"
    assert base64.b64decode(doc["payload"]) == raw


def test_future_timestamp_limit() -> None:
    limits = Limits(max_future=timedelta(seconds=300))
    soon = (NOW + timedelta(seconds=299)).isoformat()
    late = (NOW + timedelta(seconds=301)).isoformat()
    assert not isinstance(
        prepare(message(event_body(timestamp=soon)), NOW, limits), usage.Rejection
    )
    rejected = prepare(message(event_body(timestamp=late)), NOW, limits)
    assert isinstance(rejected, usage.Rejection)
    assert rejected.kind == "future_timestamp"
    assert rejected.errors[0].field == "timestamp"


# -- transient failures --------------------------------------------------------------------


def test_transient_commit_failure_raises_and_redelivery_records(
    service: UsageService, repo: FakeRepository
) -> None:
    repo.fail_commits = 1
    with pytest.raises(ConnectionError):
        service.handle(message(scene(1)), NOW)
    assert repo.records == {}
    assert service.handle(message(scene(1)), NOW).outcome is Outcome.RECORDED
    assert repo.customers["lab_001"]["total_scenes_generated"] == 1


def test_guarded_commit_retries_when_the_reset_moves_the_period(repo: FakeRepository) -> None:
    # 23:55 on Jan 31: a reset may run between our read and our commit.
    now = datetime(2025, 1, 31, 23, 55, tzinfo=UTC)
    repo.put_customer("lab_001", bundle_tier="pro", quota_period="2025-01")
    moved = threading.Event()

    def reset_once(customer_id: str) -> None:
        if not moved.is_set():
            moved.set()
            with repo.lock:
                repo.customers[customer_id]["quota_period"] = "2025-02"
                repo.versions[customer_id] += 1

    repo.on_read = reset_once
    body = scene(1, timestamp="2025-01-31T23:54:00Z")
    UsageService(repo, FakePublisher()).handle(message(body), now)
    assert repo.conflicts == 1
    doc = repo.customers["lab_001"]
    # Second read saw period 2025-02: the January event counts only in January's count.
    assert doc["scene_counts_by_month"] == {"2025-01": 1}
    assert "scenes_generated_this_month" not in doc


def test_plan_guards_an_event_whose_month_reset_is_pending() -> None:
    customer = Customer(schema_version=1, bundle_tier=BundleTier.PRO, quota_period="2025-01")
    plan = quota.plan_scene_count(customer, datetime(2025, 2, 1, 0, 1, tzinfo=UTC), NOW)
    assert plan.guard
    assert not plan.increment_this_month
    past = quota.plan_scene_count(
        Customer(schema_version=1, bundle_tier=BundleTier.PRO, quota_period="2025-02"),
        datetime(2025, 1, 20, tzinfo=UTC),
        NOW,
    )
    assert not past.guard


# -- quota alerts --------------------------------------------------------------------------


def test_alerts_at_80_and_100_percent_once_each_and_over_quota_still_recorded(
    service: UsageService, repo: FakeRepository, pub: FakePublisher
) -> None:
    for n in range(1, 13):
        service.handle(message(scene(n), f"m-{n}"), NOW)
        service.handle(message(scene(n), f"m-{n}"), NOW)  # redelivery
    assert len(repo.records) == 12
    assert repo.customers["lab_001"]["scenes_generated_this_month"] == 12
    sent = sorted((p["threshold_percent"], p["scenes_generated"]) for p, _ in pub.sent)
    assert sent == [(80, 8), (100, 10)]
    assert {a["alert_id"] for _, a in pub.sent} == {"lab_001_2025-01_80", "lab_001_2025-01_100"}
    assert all(m["state"] == "published" for m in repo.markers.values())


def test_crash_between_commit_and_publish_still_alerts_once_on_redelivery(
    service: UsageService, repo: FakeRepository, pub: FakePublisher
) -> None:
    for n in range(1, 8):
        service.handle(message(scene(n), f"m-{n}"), NOW)
    pub.fail_next = 1
    with pytest.raises(ConnectionError):
        service.handle(message(scene(8), "m-8"), NOW)  # crosses 80 %, publish fails
    assert repo.customers["lab_001"]["scenes_generated_this_month"] == 8
    # Redelivered at once: the first attempt's claim is fresh, so come back later.
    with pytest.raises(TransientError):
        service.handle(message(scene(8), "m-8"), NOW + timedelta(seconds=1))
    later = service.handle(message(scene(8), "m-8"), NOW + timedelta(seconds=61))
    assert later.outcome is Outcome.DUPLICATE
    assert later.alerts == ("lab_001_2025-01_80",)
    service.handle(message(scene(8), "m-8"), NOW + timedelta(seconds=120))
    assert [p["threshold_percent"] for p, _ in pub.sent] == [80]
    assert repo.customers["lab_001"]["scenes_generated_this_month"] == 8


def test_crash_before_the_marker_is_created_alerts_on_redelivery(
    service: UsageService, repo: FakeRepository, pub: FakePublisher
) -> None:
    for n in range(1, 8):
        service.handle(message(scene(n), f"m-{n}"), NOW)
    original = repo.create_alert_marker

    def crash(alert_id: str, data: Any) -> bool:
        raise ConnectionError("fake: died before the marker")

    repo.create_alert_marker = crash  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        service.handle(message(scene(8), "m-8"), NOW)
    repo.create_alert_marker = original  # type: ignore[method-assign]
    assert service.handle(message(scene(8), "m-8"), NOW).alerts == ("lab_001_2025-01_80",)
    assert len(pub.sent) == 1


def test_unlimited_quota_never_alerts(repo: FakeRepository, pub: FakePublisher) -> None:
    repo.put_customer("big", bundle_tier="foundation", monthly_scene_quota=-1)
    service = UsageService(repo, pub)
    for n in range(5):
        service.handle(message(scene(n, "big"), f"m-{n}"), NOW)
    assert pub.sent == []
    assert repo.customers["big"]["total_scenes_generated"] == 5


def test_concurrent_workers_alert_once_per_threshold(
    repo: FakeRepository, pub: FakePublisher
) -> None:
    repo.put_customer("hot", bundle_tier="pro", monthly_scene_quota=50)
    service = UsageService(repo, pub)
    bodies = [scene(n, "hot") for n in range(200)]

    def work(k: int) -> None:
        for i in range(k, len(bodies), 8):
            service.handle(message(bodies[i], f"m-{i}"), NOW)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert repo.customers["hot"]["scenes_generated_this_month"] == 200
    assert sorted(p["threshold_percent"] for p, _ in pub.sent) == [80, 100]


# -- the edge ------------------------------------------------------------------------------


def test_handle_cloud_event_decodes_and_records(
    service: UsageService, repo: FakeRepository
) -> None:
    data = json.dumps(event_body()).encode()
    result = usage.handle_cloud_event(cloud_event(data, "777", origin="test"), service, NOW)
    assert result.outcome is Outcome.RECORDED
    assert repo.records[result.record_id or ""]["message_id"] == "777"


def test_handle_cloud_event_reraises_transient_failures(
    service: UsageService, repo: FakeRepository
) -> None:
    repo.fail_commits = 1
    with pytest.raises(ConnectionError):
        usage.handle_cloud_event(cloud_event(json.dumps(event_body()).encode()), service, NOW)


def test_decode_pubsub_variants() -> None:
    msg = decode_pubsub(cloud_event(b'{"a": 1}', "9", k="v").data, "9")
    assert (msg.message_id, msg.data, dict(msg.attributes)) == ("9", b'{"a": 1}', {"k": "v"})
    assert msg.publish_time == "2025-01-15T12:00:00.000Z"
    snake = decode_pubsub(
        {"message": {"data": base64.b64encode(b"x").decode(), "message_id": "s1"}}, "ce"
    )
    assert snake.message_id == "s1"
    bad = decode_pubsub({"message": {"data": "!!not base64!!", "messageId": "b1"}}, "ce")
    assert bad.problem is not None
    assert bad.problem.field == "message.data"
    no_message = decode_pubsub(b"not json at all", "ce-9")
    assert no_message.problem is not None
    assert no_message.message_id == "ce-9"


def test_bad_envelope_is_rejected(service: UsageService, repo: FakeRepository) -> None:
    event = cloud_event(b"{}", "env-1")
    event.data["message"]["data"] = "%%%"
    result = usage.handle_cloud_event(event, service, NOW)
    assert result.outcome is Outcome.REJECTED
    assert repo.rejections[message_doc_id("env-1")]["kind"] == "bad_envelope"


def test_committed_json_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render()


def test_record_cost_decimal_matches_float_exactly(
    service: UsageService, repo: FakeRepository
) -> None:
    result = service.handle(message(event_body(compute_minutes=0.1, storage_gb=0.2)), NOW)
    cost = repo.records[result.record_id or ""]["estimated_cost"]
    assert Decimal(str(cost)) == Decimal(str(cost)).quantize(Decimal("0.01"))


def test_record_ids_are_pinned() -> None:
    # Ids are keys of stored billing records: they must never change between versions.
    by_tuple = UsageEvent.model_validate(event_body(event_id=None, details=None))
    by_event_id = UsageEvent.model_validate(
        event_body(event_id="job 42/ü..x", scene_id="s", action="scene_generated")
    )
    assert usage_record_id(by_tuple) == (
        "lab_001_scene_kitchen_v2_episodes_generated_20250110T143000.000000Z_41ba4594037b6cd9e48576c9"
    )
    assert usage_record_id(by_event_id) == "lab_001_job-42-..x_bf12637aed701cce1a49248e"


def test_customer_cache_saves_reads_but_guarded_commits_read_fresh(repo: FakeRepository) -> None:
    reads: list[str] = []
    repo.on_read = reads.append
    service = UsageService(
        repo, FakePublisher(), customer_cache=CustomerCache(timedelta(seconds=1))
    )
    for n in range(5):
        service.handle(message(scene(n), f"m-{n}"), NOW + timedelta(milliseconds=100 * n))
    assert len(reads) == 1
    service.handle(message(scene(9), "m-9"), NOW + timedelta(seconds=2))  # entry expired
    assert len(reads) == 2
    # 23:55 on the last day: the plan is guarded, so the cached read is not good enough.
    late = datetime(2025, 1, 31, 23, 55, tzinfo=UTC)
    service.handle(message(scene(20, timestamp="2025-01-31T23:54:00Z"), "m-20"), late)
    service.handle(message(scene(21, timestamp="2025-01-31T23:54:00Z"), "m-21"), late)
    # The first read at 23:55 is fresh anyway (the entry expired); the second finds a cached
    # entry but its commit is guarded, so it reads again instead of trusting it.
    assert len(reads) == 4
    assert repo.customers["lab_001"]["scenes_generated_this_month"] == 8


# -- legacy documents and thresholds reached without an event crossing them -----------------


def legacy_customer(repo: FakeRepository, scenes: int, quota_: int = 100) -> None:
    """schema.md's example customer: only its fields, counter = scenes so far this month."""
    repo.put_customer(
        "lab_001",
        bundle_tier="pro",
        organization_name="AI Research Lab",
        email="contact@ailab.edu",
        monthly_scene_quota=quota_,
        scenes_generated_this_month=scenes,
        support_tier="priority",
        contract_start=datetime(2025, 1, 1, tzinfo=UTC),
        contract_end=datetime(2026, 1, 1, tzinfo=UTC),
        feature_overrides={"tactile_sensors": True},
        created_at=datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
        updated_at=datetime(2025, 1, 10, 14, 22, tzinfo=UTC),
        quota_reset_at=datetime(2025, 1, 1, 0, 0, 5, tzinfo=UTC),
    )


def test_legacy_document_counts_from_its_seed(
    service: UsageService, repo: FakeRepository, pub: FakePublisher
) -> None:
    legacy_customer(repo, scenes=45)
    for n in range(1, 56):
        service.handle(message(scene(n), f"m-{n}"), NOW)
    assert repo.customers["lab_001"]["scenes_generated_this_month"] == 100
    assert repo.customers["lab_001"]["total_scenes_generated"] == 55
    sent = [(p["threshold_percent"], p["scenes_generated"]) for p, _ in pub.sent]
    assert sent == [(80, 80), (100, 100)]


def test_threshold_passed_before_the_suite_alerts_once_without_a_redelivery(
    service: UsageService, repo: FakeRepository, pub: FakePublisher
) -> None:
    # The seed is already past 80 %: the first event of the month says so, once; it must not
    # depend on whether Pub/Sub happened to redeliver something.
    legacy_customer(repo, scenes=85)
    for n in range(1, 4):
        service.handle(message(scene(n), f"m-{n}"), NOW)
    service.handle(message(scene(1), "m-1"), NOW)  # a redelivery publishes nothing more
    assert [(p["threshold_percent"], p["scenes_generated"]) for p, _ in pub.sent] == [(80, 86)]
    assert pub.sent[0][0]["threshold_scenes"] == 80


def test_quota_lowered_mid_month_alerts_on_the_next_event(
    service: UsageService, repo: FakeRepository, pub: FakePublisher
) -> None:
    for n in range(1, 6):
        service.handle(message(scene(n), f"m-{n}"), NOW)
    assert pub.sent == []  # 5 of 10
    with repo.lock:
        repo.customers["lab_001"]["monthly_scene_quota"] = 4
    service.handle(message(scene(6), "m-6"), NOW)
    service.handle(message(scene(7), "m-7"), NOW)
    assert sorted(p["threshold_percent"] for p, _ in pub.sent) == [80, 100]


def test_first_delivery_leaves_an_alert_claimed_by_another_message_to_it(
    service: UsageService, repo: FakeRepository, pub: FakePublisher
) -> None:
    # Another message claimed the 80 % alert a moment ago and is publishing it: this event
    # (also past 80 %) is recorded and acknowledged; the claimer's own delivery, or its
    # redelivery, publishes. No failed delivery, no second alert.
    for n in range(1, 8):
        service.handle(message(scene(n), f"m-{n}"), NOW)
    repo.create_alert_marker(
        "lab_001_2025-01_80", {"state": "pending", "claimed_by": "m-other", "claimed_at": NOW}
    )
    result = service.handle(message(scene(8), "m-8"), NOW + timedelta(seconds=1))
    assert result.outcome is Outcome.RECORDED
    assert result.alerts == ()
    assert pub.sent == []


SCHEMA_MD_RECORD_FIELDS = {
    "schema_version",
    "customer_id",
    "scene_id",
    "action",
    "timestamp",
    "details",
    "episodes_generated",
    "compute_minutes",
    "storage_gb",
    "billable",
    "estimated_cost",
}


def test_every_record_carries_every_schema_md_field(
    service: UsageService, repo: FakeRepository
) -> None:
    # A bare scene_generated event (no amounts, no details) still yields a record with all of
    # schema.md's fields (null where the event had nothing), plus rate card and message id.
    result = service.handle(message(scene(1), "m-bare"), NOW)
    record = repo.records[result.record_id or ""]
    assert set(record) >= SCHEMA_MD_RECORD_FIELDS | {"rate_card_version", "message_id"}
    assert record["details"] is None
    assert record["compute_minutes"] is None
    assert record["message_id"] == "m-bare"
    validate(UsageRecord, {k: v for k, v in record.items() if k != "recorded_at"})


# -- documents that predate the suite at the first month boundary ---------------------------

OCTOBER_WRITE = datetime(2026, 10, 28, 9, 0, tzinfo=UTC)
NOVEMBER_START = datetime(2026, 11, 1, 0, 0, 40, tzinfo=UTC)


def october_legacy(repo: FakeRepository, scenes: int = 95) -> None:
    """A document the old pipeline last wrote in October: no quota_period, no quota_reset_at."""
    repo.put_customer(
        "lab_001",
        written_at=OCTOBER_WRITE,
        bundle_tier="pro",
        monthly_scene_quota=100,
        scenes_generated_this_month=scenes,
    )
    repo.clock = NOVEMBER_START  # the usage commits happen in November


def test_new_month_event_on_a_legacy_document_does_not_add_to_last_months_count(
    repo: FakeRepository, pub: FakePublisher
) -> None:
    october_legacy(repo)
    service = UsageService(repo, pub)
    first = scene(1, timestamp="2026-11-01T00:00:30Z")
    assert service.handle(message(first, "m-1"), NOVEMBER_START).outcome is Outcome.RECORDED
    doc = repo.customers["lab_001"]
    assert doc["quota_period"] == "2026-10"  # recorded in the same commit
    assert doc["scene_counts_by_month"] == {"2026-11": 1}
    assert doc["scenes_generated_this_month"] == 95
    assert pub.sent == []
    # The commit moved the update time into November; the document now says its period.
    later = NOVEMBER_START + timedelta(seconds=5)
    service.handle(message(scene(2, timestamp="2026-11-01T00:00:44Z"), "m-2"), later)
    assert repo.customers["lab_001"]["scene_counts_by_month"] == {"2026-11": 2}
    assert repo.customers["lab_001"]["scenes_generated_this_month"] == 95
    assert pub.sent == []
    # The reset for November derives the counter from November's events; counting goes on.
    customer = read_customer(repo.customers["lab_001"])[0]
    plan = quota.plan_reset(customer, "2026-11", last_write=repo.versions["lab_001"])
    assert plan == quota.ResetPlan(2)
    repo.put_customer(
        "lab_001",
        written_at=later,
        **{
            **repo.customers["lab_001"],
            "scenes_generated_this_month": 2,
            "quota_period": "2026-11",
        },
    )
    for n in range(3, 81):
        service.handle(message(scene(n, timestamp="2026-11-01T00:00:45Z"), f"m-{n}"), later)
    assert [(p["threshold_percent"], p["scenes_generated"]) for p, _ in pub.sent] == [(80, 80)]
    assert pub.sent[0][0]["month"] == "2026-11"


def test_legacy_document_written_this_month_counts_on_from_its_seed(
    repo: FakeRepository, pub: FakePublisher
) -> None:
    repo.put_customer(
        "lab_001",
        written_at=datetime(2026, 11, 10, 8, tzinfo=UTC),
        bundle_tier="pro",
        monthly_scene_quota=100,
        scenes_generated_this_month=45,
    )
    now = datetime(2026, 11, 12, 9, tzinfo=UTC)
    repo.clock = now
    service = UsageService(repo, pub, customer_cache=CustomerCache(timedelta(seconds=60)))
    for n in range(1, 36):
        service.handle(message(scene(n, timestamp="2026-11-12T08:00:00Z"), f"m-{n}"), now)
    doc = repo.customers["lab_001"]
    assert (doc["quota_period"], doc["scenes_generated_this_month"]) == ("2026-11", 80)
    assert [(p["threshold_percent"], p["scenes_generated"]) for p, _ in pub.sent] == [(80, 80)]
    assert repo.conflicts == 0


def test_episodes_only_event_on_a_legacy_document_records_its_period_too(
    repo: FakeRepository, pub: FakePublisher
) -> None:
    # Any usage commit moves the update time: the first one (here an episodes event) must say
    # which month the counter holds, or a later November scene would count on October's 95.
    october_legacy(repo)
    service = UsageService(repo, pub)
    episodes = event_body(event_id="ep-1", timestamp="2026-11-01T00:00:10Z")
    service.handle(message(episodes, "m-ep"), NOVEMBER_START)
    assert repo.customers["lab_001"]["quota_period"] == "2026-10"
    service.handle(message(scene(1, timestamp="2026-11-01T00:00:30Z"), "m-1"), NOVEMBER_START)
    assert repo.customers["lab_001"]["scenes_generated_this_month"] == 95
    assert pub.sent == []


def test_two_events_adopting_the_period_at_once_commit_it_once(
    repo: FakeRepository, pub: FakePublisher
) -> None:
    october_legacy(repo)
    service = UsageService(repo, pub)
    other = threading.Event()

    def concurrent_event(customer_id: str) -> None:
        # Another delivery adopts the period between this one's read and commit.
        if not other.is_set():
            other.set()
            service.handle(
                message(scene(2, timestamp="2026-11-01T00:00:31Z"), "m-2"), NOVEMBER_START
            )

    repo.on_read = concurrent_event
    service.handle(message(scene(1, timestamp="2026-11-01T00:00:30Z"), "m-1"), NOVEMBER_START)
    doc = repo.customers["lab_001"]
    assert repo.conflicts == 1  # the first read's guarded commit failed and was planned again
    assert doc["quota_period"] == "2026-10"
    assert (doc["scene_counts_by_month"], doc["scenes_generated_this_month"]) == (
        {"2026-11": 2},
        95,
    )


def test_log_lines_name_the_configured_collections(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import usage
    from shared.settings import get_settings

    monkeypatch.setenv("BLUEPRINT_USAGE_REJECTIONS_COLLECTION", "usage_rejections_v2")
    monkeypatch.setenv("BLUEPRINT_CUSTOMERS_COLLECTION", "customers_v2")
    get_settings.cache_clear()
    try:
        service = usage.default_service()
    finally:
        get_settings.cache_clear()
    assert service.log_names.usage_rejections == "usage_rejections_v2"
    assert service.log_names.customers == "customers_v2"
    assert service.log_names.usage_tracking == "usage_tracking"
