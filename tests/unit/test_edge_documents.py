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


def _customer_body(mutate: Any) -> bytes:
    """A protobuf DocumentEventData creating customers/c1, changed by `mutate(message)`."""
    from google.events.cloud.firestore_v1.types import DocumentEventData

    message = DocumentEventData.pb()()
    message.value.name = "projects/p/databases/(default)/documents/customers/c1"
    message.value.fields["schema_version"].integer_value = 1
    message.value.fields["bundle_tier"].string_value = "pro"
    message.value.update_time.seconds = 1_735_689_600
    mutate(message)
    return bytes(message.SerializeToString())


def _set_field(seconds: int, nanos: int = 0) -> Any:
    def mutate(message: Any) -> None:
        stamp = message.value.fields["contract_start"].timestamp_value
        stamp.seconds, stamp.nanos = seconds, nanos

    return mutate


def _set_in_list(seconds: int) -> Any:
    def mutate(message: Any) -> None:
        values = message.value.fields["custom_settings"].map_value.fields["windows"]
        values.array_value.values.add().string_value = "ok"
        values.array_value.values.add().timestamp_value.seconds = seconds

    return mutate


def _set_update_time(seconds: int) -> Any:
    def mutate(message: Any) -> None:
        message.value.update_time.seconds = seconds

    return mutate


def _set_old_update_time(seconds: int) -> Any:
    def mutate(message: Any) -> None:
        message.old_value.name = message.value.name
        message.old_value.fields["schema_version"].integer_value = 1
        message.old_value.update_time.seconds = seconds

    return mutate


@pytest.mark.parametrize(
    ("mutate", "field", "value"),
    [
        (_set_field(253_402_300_800), "value.contract_start", "253402300800"),  # year 10000
        (_set_field(0, 1_000_000_000), "value.contract_start", "1000000000"),
        (_set_field(0, -1), "value.contract_start", "-1"),
        (_set_field(-(10**12)), "value.contract_start", "-1000000000000"),
        (_set_in_list(10**15), "value.custom_settings.windows[1]", "1000000000000000"),
        (_set_update_time(-(10**12)), "value.update_time", "-1000000000000"),
        (_set_old_update_time(253_402_300_800), "old_value.update_time", "253402300800"),
    ],
)
def test_a_timestamp_no_datetime_holds_is_an_undecodable_event(
    mutate: Any, field: str, value: str
) -> None:
    """Protobuf takes any int64 seconds and int32 nanos; a datetime stops at year 9999. Such a
    body is no document a retry could read: refused naming the field and its value (an
    OverflowError or ValueError would have been called transient and redelivered for 24 h)."""
    headers, _ = recorded("customer_create")
    event = from_http(headers, _customer_body(mutate))
    with pytest.raises(InvalidDocumentError, match="DocumentEventData") as caught:
        decode_document_event(event)
    [error] = caught.value.errors
    assert error.field == field
    assert value in str(error)


def test_timestamps_at_the_ends_of_firestores_range_are_decoded() -> None:
    headers, _ = recorded("customer_create")
    for seconds, nanos, year in [(-62_135_596_800, 0, 1), (253_402_300_799, 999_999_999, 9999)]:
        event = from_http(headers, _customer_body(_set_field(seconds, nanos)))
        change = decode_document_event(event)
        assert change.after is not None
        assert change.after["contract_start"].year == year


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
