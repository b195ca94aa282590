"""The dead-letter recorder: what it stores, under which id, once (fakes for Firestore)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from google.api_core import exceptions as gexc

from functions.deadletter import entry
from functions.deadletter.ports import Existing, Source, UnstorableError
from functions.deadletter.service import (
    LAST_ERROR_FIELDS,
    DeadLetterService,
    Outcome,
    dead_letter_of,
    doc_id_of,
    reset_month,
)
from functions.edge.payloads import PAYLOAD_LIMIT
from functions.edge.pubsub import decode_envelope
from shared.errors import TransientError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EVENT = {"customer_id": "lab_001", "event_id": "job-1", "action": "scene_generated"}


class FakeStore:
    """In-memory `usage_rejections` and reset dead letters; can inject failures."""

    def __init__(self) -> None:
        self.rejections: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.resets: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes = 0
        self.fail: Exception | None = None
        self.refuse_large = False

    def create_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        if self.fail is not None:
            raise self.fail
        if self.refuse_large and "payload" in data:
            raise UnstorableError("too big")
        if doc_id in self.rejections:
            return False
        self.rejections[doc_id] = dict(data)
        self.versions[doc_id] = 1
        self.writes += 1
        return True

    def get_rejection(self, doc_id: str) -> Existing | None:
        if doc_id not in self.rejections:
            return None
        return Existing(dict(self.rejections[doc_id]), self.versions[doc_id])

    def complete_rejection(self, doc_id: str, changes: Mapping[str, Any], token: Any) -> bool:
        if self.versions.get(doc_id) != token:
            return False
        self.rejections[doc_id].update(changes)
        self.versions[doc_id] += 1
        self.writes += 1
        return True

    def create_reset_dead_letter(self, month: str, doc_id: str, data: Mapping[str, Any]) -> bool:
        if (month, doc_id) in self.resets:
            return False
        self.resets[(month, doc_id)] = dict(data)
        self.writes += 1
        return True


def envelope(
    data: bytes,
    *,
    message_id: str = "900",
    subscription: str = "on-usage-event-push",
    count: str = "10",
    published: str = "2026-11-30T23:59:58.123Z",
    **attrs: str,
) -> dict[str, Any]:
    attributes = {
        "CloudPubSubDeadLetterSourceSubscription": subscription,
        "CloudPubSubDeadLetterSourceSubscriptionProject": "demo-x",
        "CloudPubSubDeadLetterSourceDeliveryCount": count,
        "CloudPubSubDeadLetterSourceTopicPublishTime": published,
        **attrs,
    }
    return {
        "subscription": "projects/demo-x/subscriptions/record-dead-letters-push",
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": message_id,
            "publishTime": "2026-12-01T00:00:09.000Z",
        },
    }


def letter(data: bytes = json.dumps(EVENT).encode(), source: Source = Source.USAGE, **kw: Any):  # type: ignore[no-untyped-def]
    return dead_letter_of(decode_envelope(envelope(data, **kw)), source)


def test_a_usage_dead_letter_is_stored_with_what_pubsub_says() -> None:
    store = FakeStore()
    result = DeadLetterService(store).handle(letter(origin="pipeline"), NOW)
    assert result.outcome is Outcome.RECORDED
    doc = store.rejections[str(result.doc_id)]
    assert doc["kind"] == "dead_letter"
    assert json.loads(doc["payload"]) == EVENT
    assert doc["payload_encoding"] == "utf-8"
    assert doc["source_subscription"] == "on-usage-event-push"
    assert doc["source_project"] == "demo-x"
    assert doc["delivery_attempts"] == 10
    assert doc["publish_time"] == datetime(2026, 11, 30, 23, 59, 58, 123000, tzinfo=UTC)
    # The original's attributes only: Pub/Sub's CloudPubSubDeadLetterSource* are fields.
    assert doc["attributes"] == {"origin": "pipeline"}
    assert doc["customer_id"] == "lab_001"
    assert doc["event_id"] == "job-1"
    assert doc["dead_letter_message_id"] == "900"
    assert doc["last_error"] is None
    assert "10 delivery attempts on on-usage-event-push" in doc["reason"]


def test_a_redelivered_or_doubly_dead_lettered_message_writes_once() -> None:
    store = FakeStore()
    service = DeadLetterService(store)
    first = service.handle(letter(), NOW)
    # Pub/Sub may dead-letter one message twice, under a new dead-letter message id.
    again = service.handle(letter(message_id="901"), NOW)
    redelivered = service.handle(letter(), NOW)
    assert first.outcome is Outcome.RECORDED
    assert again.outcome is redelivered.outcome is Outcome.ALREADY_RECORDED
    assert first.doc_id == again.doc_id == redelivered.doc_id
    assert store.writes == 1


def test_distinct_originals_get_distinct_ids() -> None:
    base = doc_id_of(letter())
    assert doc_id_of(letter(b'{"other": 1}')) != base
    assert doc_id_of(letter(published="2026-11-30T23:59:58.124Z")) != base
    assert doc_id_of(letter(subscription="other-push")) != base
    assert doc_id_of(letter(extra="x")) != base
    # Same instant written with another precision: the same original.
    assert doc_id_of(letter(published="2026-11-30T23:59:58.123000Z")) == base


def test_the_usage_functions_last_error_note_is_completed_not_overwritten() -> None:
    store = FakeStore()
    dead = letter()
    doc_id = doc_id_of(dead)
    note = {
        "kind": "dead_letter",
        "last_error": "DeadlineExceeded: 504",
        "last_delivery_attempt": 10,
    }
    store.create_rejection(doc_id, note)
    result = DeadLetterService(store).handle(dead, NOW)
    assert result.outcome is Outcome.RECORDED
    doc = store.rejections[doc_id]
    assert doc["last_error"] == "DeadlineExceeded: 504"
    assert doc["last_delivery_attempt"] == 10
    assert doc["source_subscription"] == "on-usage-event-push"
    assert set(LAST_ERROR_FIELDS) <= set(doc)
    assert DeadLetterService(store).handle(dead, NOW).outcome is Outcome.ALREADY_RECORDED


def test_a_message_already_rejected_with_another_kind_is_left_alone() -> None:
    store = FakeStore()
    dead = letter()
    store.create_rejection(doc_id_of(dead), {"kind": "invalid_event", "reason": "x"})
    assert DeadLetterService(store).handle(dead, NOW).outcome is Outcome.ALREADY_REJECTED
    assert store.rejections[doc_id_of(dead)]["kind"] == "invalid_event"


def test_a_note_changed_meanwhile_is_retried_not_clobbered() -> None:
    store = FakeStore()
    dead = letter()
    store.create_rejection(doc_id_of(dead), {"kind": "dead_letter", "last_error": "x"})
    real_get = store.get_rejection

    def stale(doc_id: str) -> Existing | None:
        got = real_get(doc_id)
        store.versions[doc_id] += 1  # someone wrote after our read
        return got

    store.get_rejection = stale  # type: ignore[method-assign]
    with pytest.raises(TransientError):
        DeadLetterService(store).handle(dead, NOW)


def test_payload_is_bounded_like_other_rejections() -> None:
    store = FakeStore()
    big = b'{"customer_id": "' + "é".encode() * PAYLOAD_LIMIT + b'"}'
    doc = store.rejections[str(DeadLetterService(store).handle(letter(big), NOW).doc_id)]
    assert doc["payload_truncated"] is True
    assert doc["payload_bytes"] == len(big)
    assert len(doc["payload"].encode()) <= PAYLOAD_LIMIT
    binary = b"\xff\xfe" * 10
    doc = store.rejections[str(DeadLetterService(store).handle(letter(binary), NOW).doc_id)]
    assert doc["payload_encoding"] == "base64"
    assert base64.b64decode(doc["payload"]) == binary


def test_a_document_firestore_refuses_is_stored_reduced() -> None:
    store = FakeStore()
    store.refuse_large = True
    result = DeadLetterService(store).handle(letter(), NOW)
    assert result.outcome is Outcome.RECORDED
    doc = store.rejections[str(result.doc_id)]
    assert doc["kind"] == "dead_letter"
    assert doc["source_subscription"] == "on-usage-event-push"


def test_an_unusable_envelope_is_still_recorded() -> None:
    store = FakeStore()
    dead = dead_letter_of(decode_envelope({"message": "hi"}, "ev-1"), Source.USAGE)
    result = DeadLetterService(store).handle(dead, NOW)
    doc = store.rejections[str(result.doc_id)]
    assert doc["kind"] == "dead_letter"
    assert any(e["field"] == "message" for e in doc["errors"])


def test_a_reset_dead_letter_goes_under_its_months_audit_not_usage_rejections() -> None:
    store = FakeStore()
    dead = letter(
        b'{"job": "monthly-quota-reset"}',
        Source.SCHEDULE,
        subscription="reset-monthly-quotas-push",
        published="2026-12-01T00:00:00.050Z",
    )
    result = DeadLetterService(store).handle(dead, NOW)
    assert result.outcome is Outcome.RECORDED
    assert store.rejections == {}
    assert list(store.resets) == [("2026-12", result.doc_id)]
    assert DeadLetterService(store).handle(dead, NOW).outcome is Outcome.ALREADY_RECORDED
    assert store.writes == 1


def test_reset_month_prefers_the_bodys_period() -> None:
    dead = letter(b'{"period": "2026-10"}', Source.SCHEDULE, subscription="reset-monthly-quotas")
    assert reset_month(dead, NOW) == "2026-10"
    dead = letter(b'{"period": "nope"}', Source.SCHEDULE, published="2026-11-01T00:00:00Z")
    assert reset_month(dead, NOW) == "2026-11"
    dead = letter(b"[" * 1000, Source.SCHEDULE, published="garbage")
    assert reset_month(dead, NOW) == "2026-12"


def test_another_schedules_dead_letter_is_logged_only() -> None:
    store = FakeStore()
    dead = letter(b"{}", Source.SCHEDULE, subscription="usage-fold-push")
    assert DeadLetterService(store).handle(dead, NOW).outcome is Outcome.LOGGED
    assert store.writes == 0


def cloud_event(topic: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        {
            "id": "900",
            "source": f"//pubsub.googleapis.com/projects/demo-x/topics/{topic}",
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "specversion": "1.0",
        },
        data,
    )


def test_entry_routes_by_topic_and_classifies_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    store = FakeStore()
    service = DeadLetterService(store)
    result = entry.handle_cloud_event(
        cloud_event(
            "schedules-dead-letter", envelope(b"{}", subscription="reset-monthly-quotas-x")
        ),
        service,
        NOW,
    )
    assert result is not None
    assert result.outcome is Outcome.RECORDED
    assert store.resets
    result = entry.handle_cloud_event(
        cloud_event("usage-events-dead-letter", envelope(b"{}")), service, NOW
    )
    assert result is not None
    assert store.rejections
    # Transient: raise (Pub/Sub redelivers); permanent: logged, acknowledged.
    store.fail = gexc.ServiceUnavailable("down")  # type: ignore[no-untyped-call]
    with pytest.raises(gexc.ServiceUnavailable):
        entry.handle_cloud_event(cloud_event("usage-events-dead-letter", envelope(b"1")), service)
    store.fail = gexc.PermissionDenied("no")  # type: ignore[no-untyped-call]
    assert (
        entry.handle_cloud_event(cloud_event("usage-events-dead-letter", envelope(b"2")), service)
        is None
    )


@pytest.mark.parametrize("count", ["²", "99999999999999999999", "-1", ""])
def test_an_odd_delivery_count_is_left_out_not_a_crash(count: str) -> None:
    # "²" is a digit to str.isdigit() but not to int(); a 20-digit count is no 64-bit integer.
    assert letter(count=count).delivery_attempts is None
    assert letter(count="10").delivery_attempts == 10


def test_a_body_naming_its_customer_with_a_lone_surrogate_keeps_the_payload_only() -> None:
    # json.loads reads "\ud800" as text no UTF-8 can hold: Firestore's client cannot send it.
    body = b'{"customer_id": "\\ud800", "event_id": "evt-1"}'
    store = FakeStore()
    doc = store.rejections[str(DeadLetterService(store).handle(letter(body), NOW).doc_id)]
    assert "customer_id" not in doc
    assert doc["event_id"] == "evt-1"
    assert doc["payload"] == body.decode()


def test_a_note_completed_with_a_document_firestore_refuses_is_completed_reduced() -> None:
    store = FakeStore()
    dead = letter()
    doc_id = doc_id_of(dead)
    store.create_rejection(doc_id, {"kind": "dead_letter", "last_error": "PermissionDenied"})
    real_complete = store.complete_rejection

    def refuse_payloads(doc_id: str, changes: Mapping[str, Any], token: Any) -> bool:
        if "payload" in changes:
            raise UnstorableError("InvalidArgument: attribute key")
        return real_complete(doc_id, changes, token)

    store.complete_rejection = refuse_payloads  # type: ignore[method-assign]
    assert DeadLetterService(store).handle(dead, NOW).outcome is Outcome.RECORDED
    doc = store.rejections[doc_id]
    assert doc["last_error"] == "PermissionDenied"
    assert doc["source_subscription"] == "on-usage-event-push"
    assert "payload" not in doc
    assert DeadLetterService(store).handle(dead, NOW).outcome is Outcome.ALREADY_RECORDED
