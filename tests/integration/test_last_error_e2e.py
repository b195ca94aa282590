"""A usage message that always fails transiently ends as a `dead_letter` rejection carrying
its last error: the real Pub/Sub emulator redelivers and dead-letters it, the usage entry notes
the error in the real Firestore emulator on the last attempt, the suite's `record-dead-letters`
completes that note."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from google.cloud.firestore_v1.base_query import FieldFilter
from werkzeug.serving import make_server

from devstack.emulators import free_port
from functions.deadletter.adapters import FirestoreNoteStore
from functions.deadletter.note import NOTE_TIMEOUT_SECONDS, LastErrorNote
from functions.usage.adapters import FirestoreUsageRepository
from functions.usage.entry import handle_cloud_event
from functions.usage.service import UsageService
from shared.errors import TransientError

ATTEMPTS = 5
"""The test subscription's `max_delivery_attempts` (Pub/Sub's minimum)."""


class CommitUnavailable(FirestoreUsageRepository):
    """The real adapter, except that every record's write fails as Firestore's 503 would."""

    def get_customer(self, customer_id: str) -> Mapping[str, Any] | None:
        return {"schema_version": 1, "bundle_tier": "pro"}

    def create_record(self, record_id: str, record: Mapping[str, Any]) -> bool:
        raise TransientError(f"create usage_tracking/{record_id}: 503 UNAVAILABLE (injected)")


class Endpoint:
    """The usage entry behind a push endpoint. The emulator's push envelope carries no
    `deliveryAttempt` (measured), so this numbers the pushes of each message as production
    Pub/Sub does when the subscription has a dead-letter policy."""

    def __init__(self, service: UsageService, notes: LastErrorNote) -> None:
        self.service = service
        self.notes = notes
        self.pushes: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        envelope = json.loads(body)
        with self._lock:
            self.pushes.append(envelope)
            envelope.setdefault("deliveryAttempt", len(self.pushes))
        message = envelope["message"]
        event = CloudEvent(
            {
                "id": message["messageId"],
                "type": "google.cloud.pubsub.topic.v1.messagePublished",
                "source": "//pubsub.googleapis.com/projects/p/topics/t",
                "specversion": "1.0",
            },
            envelope,
        )
        try:
            handle_cloud_event(event, self.service, notes=self.notes)
        except Exception:
            start_response("500 Internal Server Error", [("Content-Length", "0")])
            return [b""]
        start_response("204 No Content", [])
        return [b""]


@pytest.fixture
def endpoint(local_suite: Any) -> Iterator[tuple[str, Endpoint]]:
    suite = local_suite
    service = UsageService(CommitUnavailable(suite.settings, suite.firestore))
    store = FirestoreNoteStore(suite.settings, suite.firestore, timeout=NOTE_TIMEOUT_SECONDS)
    app = Endpoint(service, LastErrorNote(store, max_attempts=ATTEMPTS))
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/push", app
    server.shutdown()
    thread.join(timeout=10)


def _recorded(suite: Any, subscription: str, timeout: float) -> list[Any]:
    rejections = suite.firestore.collection(suite.settings.usage_rejections_collection)
    deadline = time.monotonic() + timeout
    while True:
        docs = [
            d
            for d in rejections.where(
                filter=FieldFilter("source_subscription", "==", subscription)
            ).stream(timeout=10)
        ]
        if docs or time.monotonic() > deadline:
            return docs
        time.sleep(0.2)


def test_a_message_that_keeps_failing_is_dead_lettered_with_its_last_error(
    local_suite: Any, endpoint: tuple[str, Endpoint]
) -> None:
    suite = local_suite
    url, app = endpoint
    topic = suite.pubsub.create_topic()
    subscription = suite.pubsub.create_subscription(
        topic,
        push_endpoint=url,
        dead_letter_topic=suite.settings.usage_events_dead_letter_topic,
        max_delivery_attempts=ATTEMPTS,
    )
    cid = f"le_{uuid.uuid4().hex[:8]}"
    body = json.dumps(
        {
            "schema_version": 1,
            "event_id": "le-1",
            "customer_id": cid,
            "scene_id": "scene_kitchen_v2",
            "action": "episodes_generated",
            "timestamp": "2025-01-10T14:30:00Z",
            "episodes_generated": 1,
        }
    )
    suite.publish(topic, body, origin="drill")

    docs = _recorded(suite, subscription, timeout=90)
    assert len(docs) == 1, docs
    doc = docs[0].to_dict()
    assert doc["kind"] == "dead_letter"
    assert doc["dead_letter_message_id"]  # the recorder stored it, completing the note
    assert doc["delivery_attempts"] == ATTEMPTS
    assert doc["customer_id"] == cid
    assert doc["attributes"] == {"origin": "drill"}
    assert doc["last_error"].startswith("TransientError: create usage_tracking/")
    assert "503 UNAVAILABLE (injected)" in doc["last_error"]
    assert doc["last_delivery_attempt"] == ATTEMPTS
    assert isinstance(doc["last_error_at"], datetime)
    assert isinstance(doc["rejected_at"], datetime)
    assert doc["last_error_at"] <= doc["rejected_at"]
    assert len(app.pushes) == ATTEMPTS
    assert base64.b64decode(app.pushes[-1]["message"]["data"]).decode() == body

    # A late note (a delivery after the dead-lettering) merges: the recorded letter stays whole.
    app.notes.store.merge_note(docs[0].id, {"kind": "dead_letter", "last_error": "late"})
    after = docs[0].reference.get(timeout=10).to_dict()
    assert after["last_error"] == "late"
    assert {k: v for k, v in after.items() if not k.startswith("last_error")} == {
        k: v for k, v in doc.items() if not k.startswith("last_error")
    }
