"""The usage service with a fake repository: records, their fold fields, rejections, the cache."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from functions.edge.payloads import PAYLOAD_LIMIT
from functions.usage import entry
from functions.usage.cache import CustomerCache
from functions.usage.intake import prepare
from functions.usage.ports import Limits, Outcome, PricingCustomer, Rejection
from functions.usage.service import UsageService
from ops.jsonschema import SCHEMA_FILE, render
from shared.counters import Sums, counter_doc_id, fold_bucket
from shared.errors import PermanentError
from shared.ids import message_doc_id, usage_record_id
from shared.models import BundleTier, UsageEvent, UsageRecord, validate
from shared.pricing import default_rate_card
from shared.types import MAX_EVENT_COUNT
from tests.usage_support import (
    NOW,
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
def service(repo: FakeRepository) -> UsageService:
    return UsageService(repo)


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
    # Every field of the data model plus the bookkeeping ones, and it is a valid UsageRecord.
    stored = {k: v for k, v in record.items() if k != "recorded_at"}
    validate(UsageRecord, stored)
    # Counted through its record in January (the event's month), never on the customer document.
    assert repo.totals("lab_001", "2025-01") == Sums(
        records=1,
        scenes_generated=0,
        episodes_generated=100,
        cost_cents=1550,
        compute_minutes=45.5,
        storage_gb=2.3,
    )
    assert repo.customers["lab_001"] == {
        "schema_version": 1,
        "bundle_tier": "pro",
        "monthly_scene_quota": 10,
    }


@pytest.mark.parametrize("tier", list(BundleTier))
def test_each_tier_prices_with_its_own_rates(tier: BundleTier, repo: FakeRepository) -> None:
    repo.put_customer("c_tier", bundle_tier=tier.value)
    service = UsageService(repo)
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
    assert repo.totals("lab_001", "2025-01") == Sums(records=1, scenes_generated=1)


def test_without_event_id_the_record_id_comes_from_the_tuple(
    service: UsageService, repo: FakeRepository
) -> None:
    body = scene(1, event_id=None)
    service.handle(message(body, "m-1"), NOW)
    service.handle(message(body, "m-2"), NOW)
    assert list(repo.records) == [usage_record_id(UsageEvent.model_validate(body))]


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
    result = UsageService(repo).handle(message(event_body(customer_id="odd")), NOW)
    assert repo.records[result.record_id or ""]["pricing_tier"] == "standard"
    errors = [r for r in log_lines if r.levelno == logging.ERROR]
    assert any("bundle_tier" in r.getMessage() and "platinum" in r.getMessage() for r in errors)


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


def test_huge_finite_amounts_are_priced_and_answered_not_redelivered_forever(
    service: UsageService, repo: FakeRepository
) -> None:
    # A cost of 1e26 or more once made Decimal raise: a valid event that could never be acked.
    # Priced exactly, it is refused for good: no 64-bit cents counter can add it up.
    body = event_body(compute_minutes=1e300, storage_gb=1.7976931348623157e308)
    result = service.handle(message(body, "m-huge"), NOW)
    assert result.outcome is Outcome.REJECTED
    assert result.rejection is not None
    assert result.rejection.kind == "invalid_event"
    assert "storage_gb=1.7976931348623157e+308: an amount costing at most" in (
        result.rejection.reason
    )
    # The largest amounts a single event may carry are recorded, priced exactly.
    body = event_body(compute_minutes=1e12, storage_gb=1e12, episodes_generated=MAX_EVENT_COUNT)
    largest = service.handle(message(body, "m-largest"), NOW)
    assert largest.outcome is Outcome.RECORDED
    cost = repo.records[largest.record_id or ""]["estimated_cost"]
    assert cost == float(Decimal("1e12") * (Decimal("0.30") + Decimal("0.50") + Decimal("0.007")))


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
    assert len(stored) <= PAYLOAD_LIMIT
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
    assert not isinstance(prepare(message(event_body(timestamp=soon)), NOW, limits), Rejection)
    rejected = prepare(message(event_body(timestamp=late)), NOW, limits)
    assert isinstance(rejected, Rejection)
    assert rejected.kind == "future_timestamp"
    assert rejected.errors[0].field == "timestamp"


def test_transient_commit_failure_raises_and_redelivery_records(
    service: UsageService, repo: FakeRepository
) -> None:
    repo.fail_commits = 1
    with pytest.raises(ConnectionError):
        service.handle(message(scene(1)), NOW)
    assert repo.records == {}
    assert service.handle(message(scene(1)), NOW).outcome is Outcome.RECORDED
    assert repo.totals("lab_001", "2025-01") == Sums(records=1, scenes_generated=1)


def test_handle_cloud_event_decodes_and_records(
    service: UsageService, repo: FakeRepository
) -> None:
    data = json.dumps(event_body()).encode()
    result = entry.handle_cloud_event(cloud_event(data, "777", origin="test"), service, NOW)
    assert result is not None
    assert result.outcome is Outcome.RECORDED
    assert repo.records[result.record_id or ""]["message_id"] == "777"


def test_handle_cloud_event_reraises_transient_failures(
    service: UsageService, repo: FakeRepository
) -> None:
    repo.fail_commits = 1
    with pytest.raises(ConnectionError):
        entry.handle_cloud_event(cloud_event(json.dumps(event_body()).encode()), service, NOW)


def test_bad_envelope_is_rejected(service: UsageService, repo: FakeRepository) -> None:
    event = cloud_event(b"{}", "env-1")
    event.data["message"]["data"] = "%%%"
    result = entry.handle_cloud_event(event, service, NOW)
    assert result is not None
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
    # Ids are keys of stored billing records: they must not change between versions (they
    # changed once, to lead with the hash: docs/usage.md says what that means for redelivery).
    by_tuple = UsageEvent.model_validate(event_body(event_id=None, details=None))
    by_event_id = UsageEvent.model_validate(
        event_body(event_id="job 42/ü..x", scene_id="s", action="scene_generated")
    )
    assert usage_record_id(by_tuple) == (
        "41ba4594037b6cd9e48576c9_lab_001_scene_kitchen_v2_episodes_generated_20250110T143000.000000Z"
    )
    assert usage_record_id(by_event_id) == "bf12637aed701cce1a49248e_lab_001_job-42-..x"


def test_every_record_carries_every_schema_md_field(
    service: UsageService, repo: FakeRepository
) -> None:
    # A bare scene_generated event (no amounts, no details) still yields a record with all of
    # The data model's fields (null where the event had nothing), plus rate card and message id.
    result = service.handle(message(scene(1), "m-bare"), NOW)
    record = repo.records[result.record_id or ""]
    assert set(record) >= SCHEMA_MD_RECORD_FIELDS | {"rate_card_version", "message_id"}
    assert record["details"] is None
    assert record["compute_minutes"] is None
    assert record["message_id"] == "m-bare"
    validate(UsageRecord, {k: v for k, v in record.items() if k != "recorded_at"})


def test_log_lines_name_the_configured_collections(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import get_settings

    monkeypatch.setenv("BLUEPRINT_USAGE_REJECTIONS_COLLECTION", "usage_rejections_v2")
    monkeypatch.setenv("BLUEPRINT_CUSTOMERS_COLLECTION", "customers_v2")
    get_settings.cache_clear()
    try:
        service = entry.build_service(get_settings())
    finally:
        get_settings.cache_clear()
    assert service.log_names.usage_rejections == "usage_rejections_v2"
    assert service.log_names.customers == "customers_v2"
    assert service.log_names.usage_tracking == "usage_tracking"


# -- what each record carries for the fold --------------------------------------------------


def test_each_record_carries_its_own_months_fold_fields(repo: FakeRepository) -> None:
    service = UsageService(repo, fold_buckets=8)
    january = service.handle(message(scene(1, episodes_generated=7), "m-1"), NOW)
    december = scene(2, timestamp="2024-12-31T23:59:59.999Z")
    last_year = service.handle(message(december, "m-2"), NOW)
    episodes = service.handle(message(event_body(event_id="e3"), "m-3"), NOW)
    jan, dec, eps = (repo.records[r.record_id or ""] for r in (january, last_year, episodes))
    # Each record names the month of its own timestamp, not of the time it was handled.
    assert (jan["fold_key"], dec["fold_key"]) == ("lab_001_2025-01", "lab_001_2024-12")
    assert eps["fold_key"] == counter_doc_id("lab_001", "2025-01")
    assert jan["fold_bucket"] == eps["fold_bucket"] == fold_bucket("lab_001", "2025-01", 8)
    assert dec["fold_bucket"] == fold_bucket("lab_001", "2024-12", 8)
    assert all(0 <= r["fold_bucket"] < 8 for r in (jan, dec, eps))
    # A scene counts 1, any other action 0; the cost in integer cents, as estimated_cost.
    assert (jan["scenes_generated"], dec["scenes_generated"], eps["scenes_generated"]) == (1, 1, 0)
    assert (jan["cost_cents"], eps["cost_cents"]) == (5, 1550)  # 7 episodes x 0.007 = 0.05
    assert eps["estimated_cost"] == 15.50
    assert repo.totals("lab_001", "2025-01") == Sums(
        records=2,
        scenes_generated=1,
        episodes_generated=107,
        cost_cents=1555,
        compute_minutes=45.5,
        storage_gb=2.3,
    )
    assert repo.totals("lab_001", "2024-12") == Sums(records=1, scenes_generated=1)


def test_the_fold_buckets_setting_reaches_the_records(
    repo: FakeRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.settings import get_settings

    monkeypatch.setenv("BLUEPRINT_USAGE_FOLD_BUCKETS", "3")
    get_settings.cache_clear()
    try:
        deployed = entry.build_service(get_settings())
    finally:
        get_settings.cache_clear()
    service = dataclasses.replace(deployed, repository=repo)
    for n in range(12):
        customer = f"c{n}"
        repo.put_customer(customer, bundle_tier="pro")
        service.handle(message(scene(n, customer=customer), f"m-{n}"), NOW)
    buckets = {r["customer_id"]: r["fold_bucket"] for r in repo.records.values()}
    assert buckets == {c: fold_bucket(c, "2025-01", 3) for c in buckets}
    assert len(buckets) == 12
    assert set(buckets.values()) <= {0, 1, 2}


def test_an_event_writes_its_record_and_nothing_else(repo: FakeRepository) -> None:
    service = UsageService(repo)
    for n in range(5):
        assert service.handle(message(scene(n), f"m-{n}"), NOW).outcome is Outcome.RECORDED
    assert repo.commits == 5
    assert len(repo.records) == 5
    assert repo.rejections == {}
    assert repo.customers["lab_001"] == {
        "schema_version": 1,
        "bundle_tier": "pro",
        "monthly_scene_quota": 10,
    }


def test_customer_cache_reads_once_per_ttl_and_never_caches_an_unknown_customer() -> None:
    clock = [100.0]
    repo = FakeRepository()
    repo.put_customer("c", bundle_tier="pro")
    service = UsageService(repo, customer_cache=CustomerCache(60, clock=lambda: clock[0]))
    for n in range(5):
        service.handle(message(scene(n, customer="c"), f"m-{n}"), NOW)
    assert repo.reads == 1
    clock[0] += 61
    service.handle(message(scene(9, customer="c"), "m-9"), NOW)
    assert repo.reads == 2
    # A customer created a moment after its first event was refused is found on the next one.
    assert service.handle(message(scene(1, customer="new"), "n-1"), NOW).outcome == "rejected"
    repo.put_customer("new", bundle_tier="enterprise")
    recorded = service.handle(message(scene(2, customer="new"), "n-2"), NOW)
    assert recorded.outcome is Outcome.RECORDED
    assert repo.records[recorded.record_id or ""]["pricing_tier"] == "enterprise"


def test_customer_cache_is_bounded_and_thread_safe() -> None:
    cache = CustomerCache(60, max_entries=50)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for n in range(500):
                cache.put(PricingCustomer(f"c{t}-{n}", BundleTier.PRO))
                cache.get(f"c{t}-{n - 1}")
                if n % 7 == 0:
                    cache.invalidate(f"c{t}-{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache._entries) <= 50


def test_eight_threads_record_every_event_once(repo: FakeRepository) -> None:
    service = UsageService(repo, customer_cache=CustomerCache(60))
    messages = [message(scene(n), f"m-{n}") for n in range(400)] * 2

    def work(chunk: list[Any]) -> None:
        for m in chunk:
            service.handle(m, NOW)

    threads = [threading.Thread(target=work, args=(messages[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(repo.records) == 400
    assert repo.totals("lab_001", "2025-01") == Sums(records=400, scenes_generated=400)
    assert repo.reads == 1


@pytest.mark.parametrize(
    "error",
    [PermanentError("usage commit: PermissionDenied: 403"), gexc.Unknown("Stream removed")],
)
def test_a_storage_fault_is_redelivered_never_acknowledged(
    log_lines: list[logging.LogRecord], error: Exception
) -> None:
    # The event is valid; a deployment that cannot write (or a call cut short) is not its
    # fault. Acknowledged, it would be lost: redelivered, then dead-lettered, it is kept.
    class Refusing(FakeRepository):
        def create_record(self, *args: Any, **kwargs: Any) -> bool:
            raise error

    refusing = Refusing()
    refusing.put_customer("lab_001", bundle_tier="pro")
    event = cloud_event(json.dumps(event_body()).encode(), "p-1")
    with pytest.raises(type(error)):
        entry.handle_cloud_event(event, UsageService(refusing), NOW)
    assert any("Pub/Sub will redeliver" in r.getMessage() for r in log_lines)
    assert refusing.records == {}


def test_the_usage_path_publishes_nothing_and_writes_no_customer(repo: FakeRepository) -> None:
    # Quota alerts and the customer's counters belong to the fold now (docs/counters.md).
    from functions.usage import adapters

    with open(adapters.__file__, encoding="utf-8") as handle:
        source = handle.read()
    assert "publish" not in source
    assert "customers_collection" in source  # read only
    before = json.dumps(repo.customers, sort_keys=True)
    UsageService(repo).handle(message(scene(1, monthly_scene_quota=None), "m-1"), NOW)
    assert json.dumps(repo.customers, sort_keys=True) == before
