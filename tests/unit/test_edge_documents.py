"""The Firestore edge decoder reads a body as its content type declares; the config adapters
report Firestore and Pub/Sub failures as the shared error classes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent, from_http
from google.api_core import exceptions as gexc
from google.protobuf import json_format

from functions.config.adapters import FirestoreStamper, PubSubInvalidationPublisher
from functions.config.ports import StampOutcome
from functions.edge.documents import ChangeKind, decode_document_event, parse_document_event_data
from shared.errors import InvalidDocumentError, PermanentError, TransientError
from shared.firestore_values import create_if_absent

EVENTS = Path(__file__).resolve().parents[1] / "events"


def recorded(name: str) -> tuple[dict[str, str], bytes]:
    headers = json.loads((EVENTS / f"{name}.headers.json").read_text())
    return headers, (EVENTS / f"{name}.body").read_bytes()


def json_bytes_of(name: str) -> bytes:
    headers, body = recorded(name)
    message = parse_document_event_data(body, headers["Content-Type"])
    return json.dumps(json_format.MessageToDict(message)).encode()


def test_json_bytes_declared_json_are_read_as_json() -> None:
    body = json_bytes_of("customer_create")
    message = parse_document_event_data(body, "application/json; charset=utf-8")
    assert message.value.name.endswith("/customers/lab_001")


def test_the_declared_type_wins_over_what_the_bytes_look_like() -> None:
    json_body = json_bytes_of("customer_create")
    with pytest.raises(InvalidDocumentError, match="DocumentEventData"):
        parse_document_event_data(json_body, "application/protobuf")
    _, protobuf_body = recorded("customer_create")
    with pytest.raises(InvalidDocumentError, match="DocumentEventData"):
        parse_document_event_data(protobuf_body, "application/json")


def test_undeclared_bytes_are_protobuf_then_json() -> None:
    _, protobuf_body = recorded("customer_create")
    assert parse_document_event_data(protobuf_body).value.name.endswith("/customers/lab_001")
    assert parse_document_event_data(json_bytes_of("customer_create")).HasField("value")


def test_a_json_cloudevent_arrives_parsed_and_is_decoded() -> None:
    headers, body = recorded("scene_create_json")
    event = from_http(headers, body)
    assert isinstance(event.data, dict)  # functions-framework's CloudEvent parsed the JSON
    change = decode_document_event(event)
    assert (change.kind, change.document) == (ChangeKind.CREATE, "scenes/scene_kitchen_v2")


def test_event_time_is_parsed_as_rfc3339() -> None:
    attrs = {
        "type": "google.cloud.firestore.document.v1.written",
        "source": "s",
        "id": "e1",
        "time": "2025-02-01T12:00:00.5Z",
    }
    change = decode_document_event(CloudEvent(attrs, None))
    assert change.time == datetime(2025, 2, 1, 12, 0, 0, 500000, tzinfo=UTC)
    assert change.kind is None


# --- adapters: facts and classified errors ---------------------------------------------------


class _Doc:
    def __init__(self, error: Exception | None, exists: bool = True) -> None:
        self.error = error
        self.exists = exists
        self.updates: list[dict[str, Any]] = []

    def update(self, values: dict[str, Any], option: Any, timeout: float) -> None:
        assert timeout > 0
        if self.error is not None:
            raise self.error
        self.updates.append(values)

    def get(self, retry: Any, timeout: float) -> Any:
        assert timeout > 0
        doc = self

        class Snap:
            exists = doc.exists
            update_time = datetime(2025, 1, 1, tzinfo=UTC)

            def to_dict(self) -> dict[str, Any]:
                return {"a": 1}

        return Snap()


class _Client:
    def __init__(self, doc: _Doc) -> None:
        self.doc = doc

    def write_option(self, **kwargs: Any) -> Any:
        return kwargs

    def document(self, path: str) -> _Doc:
        return self.doc


T = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "exists", "outcome"),
    [
        (None, True, StampOutcome.STAMPED),
        (gexc.NotFound("gone"), True, StampOutcome.GONE),
        (gexc.FailedPrecondition("changed"), True, StampOutcome.STALE),
        (gexc.FailedPrecondition("deleted"), False, StampOutcome.GONE),
    ],
)
def test_stamper_reports_what_the_write_did(
    error: Exception | None, exists: bool, outcome: StampOutcome
) -> None:
    stamper = FirestoreStamper(_Client(_Doc(error, exists)))
    assert stamper.stamp("customers/c1", {"updated_at": None}, T) is outcome


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (gexc.ServiceUnavailable("down"), TransientError),
        (gexc.DeadlineExceeded("slow"), TransientError),
        (gexc.PermissionDenied("no"), PermanentError),
    ],
)
def test_stamper_failures_are_classified_once(error: Exception, raised: type[Exception]) -> None:
    stamper = FirestoreStamper(_Client(_Doc(error)))
    with pytest.raises(raised, match="stamping customers/c1"):
        stamper.stamp("customers/c1", {"updated_at": None}, T)


class _Future:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def result(self, timeout: float) -> str:
        if self.error is not None:
            raise self.error
        return "m-1"


class _Publisher:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.resumed: list[str] = []

    def publish(self, topic: str, data: bytes, ordering_key: str, **attrs: str) -> _Future:
        return _Future(self.error)

    def resume_publish(self, topic: str, ordering_key: str) -> None:
        self.resumed.append(ordering_key)


def test_publisher_failure_resumes_the_ordering_key_and_is_transient() -> None:
    client = _Publisher(gexc.ServiceUnavailable("down"))
    publisher = PubSubInvalidationPublisher(client, "projects/p/topics/t")
    with pytest.raises(TransientError, match="projects/p/topics/t"):
        publisher.publish(b"{}", "lab_001", {})
    assert client.resumed == ["lab_001"]
    assert PubSubInvalidationPublisher(_Publisher(None), "t").publish(b"{}", "k", {}) == "m-1"


class _Creatable:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create(self, data: dict[str, Any], timeout: float) -> None:
        if self.created:
            raise gexc.AlreadyExists("exists")
        self.created.append(data)


def test_create_if_absent_treats_already_exists_as_done() -> None:
    ref = _Creatable()
    assert create_if_absent(ref, {"a": 1}, timeout=5) is True
    assert create_if_absent(ref, {"a": 2}, timeout=5) is False
    assert ref.created == [{"a": 1}]
