"""The usage function's last-error note: written on the last attempt only, never in the way of
the original error, under the id the dead-letter recorder computes (fakes for Firestore)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from functions.deadletter.adapters import FirestoreNoteStore
from functions.deadletter.note import LAST_ERROR_LIMIT, LastErrorNote, error_text, note_id
from functions.deadletter.note import short_subscription as short
from functions.deadletter.ports import Existing, Source
from functions.deadletter.service import (
    LAST_ERROR_FIELDS,
    DeadLetterService,
    Outcome,
    dead_letter_of,
    doc_id_of,
)
from functions.edge.pubsub import decode_envelope
from functions.usage.entry import handle_cloud_event
from functions.usage.service import UsageService
from shared.settings import load_settings
from tests.usage_support import FakeRepository, event_body

PROJECT = "demo-x"
SUBSCRIPTION = "on-usage-event-push"
PUBLISHED = "2026-12-01T23:27:14.024Z"
"""As the emulator writes it, in the push envelope and in the dead letter's attribute alike."""
MAX = 10


class FakeRejections:
    """`usage_rejections` as both the note writer and the dead-letter recorder see it."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self.fail: Exception | None = None
        self.notes = 0

    def merge_note(self, doc_id: str, fields: Mapping[str, Any]) -> None:
        if self.fail is not None:
            raise self.fail
        self.docs.setdefault(doc_id, {}).update(fields, last_error_at="SERVER_TIMESTAMP")
        self.versions[doc_id] = self.versions.get(doc_id, 0) + 1
        self.notes += 1

    def create_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        if doc_id in self.docs:
            return False
        self.docs[doc_id] = {**data, "rejected_at": "SERVER_TIMESTAMP"}
        self.versions[doc_id] = 1
        return True

    def get_rejection(self, doc_id: str) -> Existing | None:
        if doc_id not in self.docs:
            return None
        return Existing(dict(self.docs[doc_id]), self.versions[doc_id])

    def complete_rejection(self, doc_id: str, changes: Mapping[str, Any], token: Any) -> bool:
        if self.versions.get(doc_id) != token:
            return False
        self.docs[doc_id].update(changes, rejected_at="SERVER_TIMESTAMP")
        self.versions[doc_id] += 1
        return True

    def create_reset_dead_letter(self, month: str, doc_id: str, data: Mapping[str, Any]) -> bool:
        raise AssertionError("not a reset")


def push(
    data: bytes, attempt: int | None, published: str = PUBLISHED, **attributes: str
) -> CloudEvent:
    """The CloudEvent of a usage push (the envelope as Pub/Sub sends it, `deliveryAttempt`
    only when given)."""
    envelope: dict[str, Any] = {
        "subscription": f"projects/{PROJECT}/subscriptions/{SUBSCRIPTION}",
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": "17",
            "publishTime": published,
        },
    }
    if attempt is not None:
        envelope["deliveryAttempt"] = attempt
    head = {
        "id": "17",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": f"//pubsub.googleapis.com/projects/{PROJECT}/topics/usage-events",
        "specversion": "1.0",
    }
    return CloudEvent(head, envelope)


def dead_letter_envelope(data: bytes, attempts: int, **attributes: str) -> dict[str, Any]:
    """What the emulator publishes on the dead-letter topic for that message (measured: the
    original bytes and attributes plus Pub/Sub's four, the subscription's SHORT name, the
    original publish time as the same text; a new message id)."""
    return {
        "subscription": f"projects/{PROJECT}/subscriptions/record-dead-letters-push",
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": {
                **attributes,
                "CloudPubSubDeadLetterSourceSubscription": SUBSCRIPTION,
                "CloudPubSubDeadLetterSourceSubscriptionProject": PROJECT,
                "CloudPubSubDeadLetterSourceDeliveryCount": str(attempts),
                "CloudPubSubDeadLetterSourceTopicPublishTime": PUBLISHED,
            },
            "messageId": "901",
            "publishTime": "2026-12-01T23:28:00.500Z",
        },
    }


@pytest.fixture
def failing() -> UsageService:
    repo = FakeRepository()
    repo.put_customer("lab_001", bundle_tier="pro")
    repo.fail_commits = 1_000  # Firestore refuses every commit: a transient failure
    return UsageService(repo)


BODY = json.dumps(event_body()).encode()


def test_the_last_attempt_notes_the_error_and_still_raises(failing: UsageService) -> None:
    store = FakeRejections()
    notes = LastErrorNote(store, max_attempts=MAX)
    with pytest.raises(ConnectionError, match="Firestore unreachable"):
        handle_cloud_event(push(BODY, MAX, origin="drill"), failing, notes=notes)
    (doc_id,) = store.docs
    assert doc_id.startswith(f"dl_{SUBSCRIPTION}_")
    assert store.docs[doc_id] == {
        "kind": "dead_letter",
        "last_error": "ConnectionError: fake: Firestore unreachable",
        "last_delivery_attempt": MAX,
        "last_error_at": "SERVER_TIMESTAMP",
    }
    assert set(LAST_ERROR_FIELDS) <= set(store.docs[doc_id])


@pytest.mark.parametrize("attempt", [None, 1, MAX - 1])
def test_earlier_attempts_or_no_attempt_write_nothing(
    failing: UsageService, attempt: int | None
) -> None:
    store = FakeRejections()
    with pytest.raises(ConnectionError):
        handle_cloud_event(push(BODY, attempt), failing, notes=LastErrorNote(store, MAX))
    assert store.notes == 0


def test_a_delivery_that_succeeds_or_is_rejected_on_its_last_attempt_notes_nothing() -> None:
    repo = FakeRepository()
    repo.put_customer("lab_001", bundle_tier="pro")
    store = FakeRejections()
    notes = LastErrorNote(store, MAX)
    assert handle_cloud_event(push(BODY, MAX), UsageService(repo), notes=notes) is not None
    assert handle_cloud_event(push(b"not json", MAX), UsageService(repo), notes=notes)
    assert store.notes == 0
    assert len(repo.records) == len(repo.rejections) == 1


def test_a_note_that_cannot_be_written_logs_a_warning_and_the_original_error_is_raised(
    failing: UsageService, caplog: pytest.LogCaptureFixture
) -> None:
    store = FakeRejections()
    store.fail = TimeoutError("deadline 2 s exceeded")
    with caplog.at_level(logging.WARNING), pytest.raises(ConnectionError, match="unreachable"):
        handle_cloud_event(push(BODY, MAX), failing, notes=LastErrorNote(store, MAX))
    assert not store.docs
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("NOT noted" in w and "TimeoutError: deadline 2 s" in w for w in warned), warned


def test_the_note_is_under_the_id_the_recorder_computes_and_the_recorder_keeps_it(
    failing: UsageService,
) -> None:
    store = FakeRejections()
    # The usage push carries the publish time with another precision: the same instant.
    event = push(BODY, MAX, published="2026-12-01T23:27:14.024000Z", origin="drill")
    with pytest.raises(ConnectionError):
        handle_cloud_event(event, failing, notes=LastErrorNote(store, MAX))
    letter = dead_letter_of(
        decode_envelope(dead_letter_envelope(BODY, MAX, origin="drill")), Source.USAGE
    )
    assert list(store.docs) == [doc_id_of(letter)]
    result = DeadLetterService(store).handle(letter, datetime(2026, 12, 1, tzinfo=UTC))
    assert result.outcome is Outcome.RECORDED
    doc = store.docs[doc_id_of(letter)]
    assert doc["last_error"] == "ConnectionError: fake: Firestore unreachable"
    assert doc["last_delivery_attempt"] == MAX
    assert doc["last_error_at"] == "SERVER_TIMESTAMP"
    assert doc["dead_letter_message_id"] == "901"
    assert doc["delivery_attempts"] == MAX
    assert doc["attributes"] == {"origin": "drill"}


def test_other_messages_get_other_ids() -> None:
    def nid(data: bytes = BODY, published: str = PUBLISHED, **attrs: str) -> str | None:
        return note_id(decode_envelope(push(data, MAX, published, **attrs).data))

    base = nid()
    assert base is not None
    assert len({base, nid(b"{}"), nid(published="2026-12-01T23:27:14.025Z"), nid(o="x")}) == 4


def test_an_envelope_without_subscription_or_publish_time_notes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeRejections()
    envelope = dict(push(BODY, MAX).data)
    del envelope["subscription"]
    with caplog.at_level(logging.WARNING):
        assert not LastErrorNote(store, MAX).failed(decode_envelope(envelope), OSError("x"))
    assert store.notes == 0
    assert any("cannot be noted" in r.getMessage() for r in caplog.records)


def test_subscription_short_name_and_error_text() -> None:
    assert short(f"projects/{PROJECT}/subscriptions/{SUBSCRIPTION}") == SUBSCRIPTION
    assert short(SUBSCRIPTION) == SUBSCRIPTION
    assert short(None) is None
    assert short("") is None
    text = error_text(RuntimeError("x" * 1000))
    assert text.startswith("RuntimeError: xxx")
    assert len(text) == LAST_ERROR_LIMIT


class _Ref:
    def __init__(self, calls: list[tuple[str, str, dict[str, Any], dict[str, Any]]]) -> None:
        self.calls = calls
        self.path = ("", "")

    def collection(self, name: str) -> _Ref:
        self.path = (name, "")
        return self

    def document(self, doc_id: str) -> _Ref:
        self.path = (self.path[0], doc_id)
        return self

    def set(self, data: dict[str, Any], **kw: Any) -> None:
        self.calls.append((*self.path, data, kw))


def test_the_firestore_note_is_one_merge_without_retry_under_a_short_deadline() -> None:
    from google.cloud.firestore_v1 import SERVER_TIMESTAMP

    calls: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    settings = load_settings(
        {
            "BLUEPRINT_USAGE_REJECTIONS_COLLECTION": "rej",
            "BLUEPRINT_FIRESTORE_TIMEOUT_SECONDS": "30",
        }
    )
    FirestoreNoteStore(settings, _Ref(calls), timeout=2.0).merge_note("dl_x", {"kind": "k"})
    ((collection, doc_id, data, kw),) = calls
    assert (collection, doc_id) == ("rej", "dl_x")
    assert data == {"kind": "k", "last_error_at": SERVER_TIMESTAMP}
    assert kw == {"merge": True, "retry": None, "timeout": 2.0}
