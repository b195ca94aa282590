"""Events at Firestore's limits and fakes for the config triggers and the reset's schedule topic.

Bodies are real serialized `DocumentEventData` (as Eventarc sends them); the fakes record what
the services did and can inject a transient failure.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from cloudevents.http import CloudEvent
from google.events.cloud.firestore_v1.types import (
    ArrayValue,
    Document,
    DocumentEventData,
    MapValue,
    Value,
)

from functions.config.ports import StampOutcome
from functions.reset.ports import AuditState, CustomerDoc, Rejection, ResetWrite
from shared import logs
from shared.errors import TransientError
from tests.events.build_events import value

PROJECT = "demo-blueprint-test"
DB = f"projects/{PROJECT}/databases/(default)/documents"
WRITTEN = "google.cloud.firestore.document.v1.written"
PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
T_WRITE = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)


def to_value(v: Any) -> Value:
    """A Firestore Value from a plain Python value (bytes too)."""
    if isinstance(v, bytes):
        return Value(bytes_value=v)
    if isinstance(v, list):
        return Value(array_value=ArrayValue(values=[to_value(x) for x in v]))
    if isinstance(v, dict):
        return Value(map_value=MapValue(fields={k: to_value(x) for k, x in v.items()}))
    return value(v)


def document(path: str, fields: Mapping[str, Any]) -> Document:
    """A Document message with the given plain fields."""
    return Document(
        name=f"{DB}/{path}",
        fields={k: to_value(v) for k, v in fields.items()},
        create_time=T_WRITE,
        update_time=T_WRITE,
    )


def create_body(path: str, fields: Mapping[str, Any]) -> bytes:
    """Protobuf body of a create event."""
    return bytes(DocumentEventData.serialize(DocumentEventData(value=document(path, fields))))


def update_body(path: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> bytes:
    """Protobuf body of an update event."""
    data = DocumentEventData(value=document(path, after), old_value=document(path, before))
    return bytes(DocumentEventData.serialize(data))


def deep_create_body(path: str, depth: int, base: Mapping[str, Any]) -> bytes:
    """Protobuf body of a create whose `custom_settings` nests `depth` maps, built on the raw
    protobuf (proto-plus would copy it through the decoder, which stops at 100 levels)."""
    message = DocumentEventData.pb(DocumentEventData(value=document(path, base)))
    level = message.value.fields["custom_settings"]
    for _ in range(depth - 1):
        level = level.map_value.fields["n"]
    level.map_value.fields["leaf"].integer_value = 1
    return bytes(message.SerializeToString())


def firestore_headers(path: str, event_id: str = "evt-1", **over: str) -> dict[str, str]:
    """Binary-mode CloudEvent headers of a Firestore trigger (override any, e.g. ce-type)."""
    return {
        "ce-specversion": "1.0",
        "ce-type": WRITTEN,
        "ce-source": f"//firestore.googleapis.com/projects/{PROJECT}/databases/(default)",
        "ce-subject": f"documents/{path}",
        "ce-id": event_id,
        "ce-time": "2026-12-01T12:00:00.123456Z",
        "Content-Type": "application/protobuf",
        **over,
    }


def firestore_event(path: str, body: Any, event_id: str = "evt-1", **attrs: str) -> CloudEvent:
    """A CloudEvent as functions-framework hands it to a Firestore-triggered function."""
    base = {
        "type": WRITTEN,
        "source": f"//firestore.googleapis.com/projects/{PROJECT}/databases/(default)",
        "subject": f"documents/{path}",
        "id": event_id,
        "datacontenttype": "application/protobuf",
        **attrs,
    }
    return CloudEvent(base, body)


def nested(depth: int) -> dict[str, Any]:
    """`depth` levels of maps: {"n": {"n": ... {"leaf": 1}}}."""
    inner: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        inner = {"n": inner}
    return inner


def scene(**over: Any) -> dict[str, Any]:
    """A valid scene document."""
    return {"schema_version": 1, "customer_id": "lab_001", "robot_type": "franka", **over}


def schedule_event(
    data: Any = None,
    *,
    publish_time: Any = "2026-12-01T00:00:00.52Z",
    event_type: str = PUBLISHED,
    message_id: str = "m-1",
    envelope: Any = None,
) -> CloudEvent:
    """A `quota-reset-schedule` delivery; `data` bytes/dict are base64'd, a str is sent as is."""
    if envelope is None:
        message: dict[str, Any] = {"messageId": message_id}
        if isinstance(data, bytes):
            message["data"] = base64.b64encode(data).decode()
        elif data is not None:
            message["data"] = data
        if publish_time is not None:
            message["publishTime"] = publish_time
        envelope = {"message": message, "subscription": "projects/p/subscriptions/s"}
    attrs = {"type": event_type, "source": "//pubsub.googleapis.com/x", "id": message_id}
    event = CloudEvent(attrs, envelope)
    del event["time"]  # the library would default it to the clock
    return event


def job_body() -> bytes:
    """What Cloud Scheduler publishes."""
    return json.dumps({"job": "monthly-quota-reset"}).encode()


class FakeStamper:
    """Stamps everything; `fail` raises it on every call (a refusal or an outage)."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[str] = []

    def stamp(
        self,
        document: str,
        fields: Mapping[str, datetime | None],
        last_update_time: datetime | None,
    ) -> StampOutcome:
        self.calls.append(document)
        if self.fail is not None:
            raise self.fail
        return StampOutcome.STAMPED

    def current(self, document: str) -> tuple[dict[str, Any], datetime] | None:
        if self.fail is not None:
            raise self.fail
        return None


class FakePublisher:
    """Keeps every message; checks Pub/Sub's limits as the real service would."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.messages: list[tuple[bytes, str, dict[str, str]]] = []

    def publish(self, data: bytes, ordering_key: str, attributes: Mapping[str, str]) -> str:
        if self.fail is not None:
            raise self.fail
        assert len(data) <= 10 * 1024 * 1024
        assert len(ordering_key.encode()) <= 1024
        assert all(len(v.encode()) <= 1024 for v in attributes.values())
        self.messages.append((data, ordering_key, dict(attributes)))
        return str(len(self.messages))

    def bodies(self) -> list[dict[str, Any]]:
        """The published JSON bodies."""
        return [json.loads(data) for data, _, _ in self.messages]


class FakeScheduleRepo:
    """An empty customer collection, an audit and the rejection records, in memory."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.rejections: dict[str, Rejection] = {}
        self.audits: dict[str, dict[str, Any]] = {}

    def _maybe_fail(self) -> None:
        if self.fail is not None:
            raise self.fail

    def scan(self, start_after: str | None) -> Iterator[CustomerDoc]:
        self._maybe_fail()
        return iter(())

    def get(self, customer_id: str) -> CustomerDoc | None:
        self._maybe_fail()
        return None

    def write_resets(self, writes: Sequence[ResetWrite]) -> list[int]:
        self._maybe_fail()
        return [0] * len(writes)

    def start_run(self, period: str, run: Mapping[str, Any]) -> AuditState:
        self._maybe_fail()
        self.audits.setdefault(period, {"runs": 0})["runs"] += 1
        return AuditState(None, finished=False, samples=0)

    def record_progress(
        self, period: str, counts: Mapping[str, int], cursor: str | None, issues: list[Any]
    ) -> None:
        self._maybe_fail()

    def finish(self, period: str, run: Mapping[str, Any]) -> None:
        self._maybe_fail()
        self.audits[period]["finished"] = True

    def record_rejection(self, rejection: Rejection) -> bool:
        self._maybe_fail()
        if rejection.id in self.rejections:
            return False
        self.rejections[rejection.id] = rejection
        return True


OUTAGE = TransientError("Firestore: UNAVAILABLE (injected)")


class LogLines(logging.Handler):
    """Collects the suite's log records (with their structured fields)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[str]:
        """The ERROR lines' messages."""
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR]

    def error_records(self) -> list[logging.LogRecord]:
        """The ERROR records."""
        return [r for r in self.records if r.levelno >= logging.ERROR]


@contextmanager
def captured_logs() -> Iterator[LogLines]:
    """Capture what the suite logs inside the block."""
    handler = LogLines()
    logger = logs.get_logger()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
