"""Regressions of the usage service: deep bodies, date edges, conflicting duplicates, wrong
CloudEvent types, amounts beyond 64 bits (against the fakes)."""

from __future__ import annotations

import json

import pytest

from functions.usage.entry import handle_cloud_event
from functions.usage.ports import Outcome, UnstorableRecordError
from functions.usage.service import UsageService
from shared.ids import message_doc_id
from tests.usage_support import NOW, FakeRepository, cloud_event, event_body, message


@pytest.fixture
def repo() -> FakeRepository:
    fake = FakeRepository()
    fake.put_customer("lab_001", bundle_tier="pro")
    return fake


@pytest.mark.parametrize("body", [b"[" * 1000, b'{"a":' * 1000, b"[" * 60_000])
def test_deeply_nested_body_is_rejected_and_stored(repo: FakeRepository, body: bytes) -> None:
    result = UsageService(repo).handle(message(body, "deep"), NOW)
    assert result.outcome is Outcome.REJECTED
    doc = repo.rejections[message_doc_id("deep")]
    assert doc["kind"] == "not_json"
    assert doc["payload_bytes"] == len(body)


@pytest.mark.parametrize(
    "timestamp", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "20250110"]
)
def test_timestamps_at_the_edges_are_rejected_naming_the_field(
    repo: FakeRepository, timestamp: str
) -> None:
    result = UsageService(repo).handle(message(event_body(timestamp=timestamp), "edge"), NOW)
    assert result.outcome is Outcome.REJECTED
    doc = repo.rejections[message_doc_id("edge")]
    assert [e["field"] for e in doc["errors"]] == ["timestamp"]


def test_same_event_id_other_payload_is_a_conflicting_duplicate(
    repo: FakeRepository, caplog: pytest.LogCaptureFixture
) -> None:
    service = UsageService(repo)
    first = service.handle(message(event_body(event_id="k"), "m-a"), NOW)
    again = service.handle(message(event_body(event_id="k"), "m-b"), NOW)
    other = service.handle(message(event_body(event_id="k", episodes_generated=7), "m-c"), NOW)
    assert (first.outcome, again.outcome, other.outcome) == (
        Outcome.RECORDED,
        Outcome.DUPLICATE,
        Outcome.CONFLICT,
    )
    (record,) = repo.records.values()
    assert record["episodes_generated"] == 100  # the first stands
    assert list(repo.rejections) == [message_doc_id("m-c")]
    doc = repo.rejections[message_doc_id("m-c")]
    assert doc["kind"] == "conflicting_duplicate"
    assert doc["existing_payload_sha256"] == record["payload_sha256"]
    assert doc["payload_sha256"] != record["payload_sha256"]
    assert len(doc["payload_sha256"]) == 64
    assert repo.totals("lab_001", "2025-01").records == 1
    # Redelivery of the conflicting message: the same rejection, nothing new.
    assert service.handle(message(event_body(event_id="k", episodes_generated=7), "m-c"), NOW)
    assert len(repo.rejections) == 1


def test_record_without_a_hash_is_a_plain_duplicate(repo: FakeRepository) -> None:
    service = UsageService(repo)
    service.handle(message(event_body(event_id="old"), "m-1"), NOW)
    for record in repo.records.values():
        record.pop("payload_sha256")  # written before hashes were stored
    result = service.handle(message(event_body(event_id="old", episodes_generated=1), "m-2"), NOW)
    assert result.outcome is Outcome.DUPLICATE


def test_payload_hash_ignores_delivery_metadata_and_time_zone(repo: FakeRepository) -> None:
    service = UsageService(repo)
    service.handle(message(event_body(event_id="tz"), "m-1", source="a"), NOW)
    later = event_body(event_id="tz", timestamp="2025-01-10T15:30:00+01:00")
    assert service.handle(message(json.dumps(later), "m-2", source="b"), NOW).outcome is (
        Outcome.DUPLICATE
    )


def test_wrong_ce_type_is_refused_not_processed(repo: FakeRepository) -> None:
    event = cloud_event(json.dumps(event_body()).encode(), "ct-1")
    event["type"] = "google.cloud.storage.object.v1.finalized"
    result = handle_cloud_event(event, UsageService(repo), NOW)
    assert result is not None
    assert result.outcome is Outcome.REJECTED
    assert not repo.records
    doc = repo.rejections[message_doc_id("ct-1")]
    assert doc["kind"] == "wrong_event_type"
    assert "google.cloud.storage.object.v1.finalized" in doc["reason"]


@pytest.mark.parametrize("version", ["true", "1.0", "false"])
def test_schema_version_true_or_a_float_is_not_version_1(
    repo: FakeRepository, version: str
) -> None:
    """JSON `true` and `1.0` equal 1 in Python: Literal[1] alone recorded them (found by
    tests/unit/test_usage_entry_properties.py)."""
    body = json.dumps(event_body()).replace('"schema_version": 1', f'"schema_version": {version}')
    result = UsageService(repo).handle(message(body, "v"), NOW)
    assert result.outcome is Outcome.REJECTED
    doc = repo.rejections[message_doc_id("v")]
    assert doc["kind"] == "unknown_schema_version"
    assert [e["field"] for e in doc["errors"]] == ["schema_version"]
    assert not repo.records


@pytest.mark.parametrize("field", ["compute_minutes", "storage_gb"])
def test_an_amount_costing_beyond_the_64_bit_counters_is_rejected_naming_it(
    repo: FakeRepository, field: str
) -> None:
    """1e18 compute minutes is valid JSON and finite, but its cost in cents (3e19) does not fit
    the record's 64-bit `cost_cents` (nor the month's sum of them): refused before the write,
    naming the amount, not stored as `unstorable` naming `(record)`."""
    body = event_body(**{field: 1e18})
    result = UsageService(repo).handle(message(body, "big"), NOW)
    assert result.outcome is Outcome.REJECTED
    doc = repo.rejections[message_doc_id("big")]
    assert doc["kind"] == "invalid_event"
    assert [e["field"] for e in doc["errors"]] == [field]
    assert f"{field}=1e+18: an amount costing at most 100000000000000 cents" in doc["reason"]
    assert (repo.records, repo.commits) == ({}, 0)


def test_the_adapter_refuses_integers_beyond_64_bits_as_the_fake_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client encodes a record before sending it: an integer beyond 64 bits fails there,
    and the adapter answers UnstorableRecordError (the fake's rule), without a round trip."""
    from google.cloud import firestore

    from functions.usage.adapters import FirestoreUsageRepository
    from shared.settings import load_settings

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens there
    client = firestore.Client(project="demo-offline")
    adapter = FirestoreUsageRepository(
        load_settings({"BLUEPRINT_FIRESTORE_TIMEOUT_SECONDS": "1"}), client
    )
    with pytest.raises(UnstorableRecordError, match="out of range"):
        adapter.create_record("r", {"details": {"n": 2**63}})
    with pytest.raises(UnstorableRecordError, match="out of range"):
        FakeRepository().create_record("r", {"details": {"n": 2**63}})
