"""Firestore `DocumentEventData` (protobuf or its JSON form) -> one `Change(before, after)`.

Eventarc delivers a binary-mode CloudEvent whose `datacontenttype` says how the body is encoded:
`application/protobuf` (what Eventarc and the local relay send) or `application/json` (the
proto's JSON form). The decoder follows the declared type rather than guessing from the first
bytes: a protobuf body can start with `\\n{` (field 1 of length 123). The Firestore emulator's
base64 text body is decoded by the devstack relay before it reaches a function.

Nothing downstream sees bytes, protobuf or base64: values become plain Python (aware UTC
datetimes, ints, floats, str, bytes, lists, dicts; references as their path strings; geo points
as `{"latitude", "longitude"}`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.events.cloud.firestore_v1.types import DocumentEventData
from google.protobuf import json_format  # type: ignore[import-untyped]

from shared.errors import FieldError, InvalidDocumentError
from shared.times import parse_rfc3339

_DOCUMENTS_MARKER: Final = "/documents/"
_KIND: Final = "DocumentEventData"
_MIN_SECONDS: Final = -62_135_596_800
"""0001-01-01T00:00:00Z, the earliest time Firestore (and a Python datetime) holds."""
_MAX_SECONDS: Final = 253_402_300_799
"""9999-12-31T23:59:59Z, the latest."""
_NANOS_PER_SECOND: Final = 1_000_000_000
FIRESTORE_EVENT_TYPES: Final = frozenset(
    f"google.cloud.firestore.document.v1.{what}{auth}"
    for what in ("written", "created", "updated", "deleted")
    for auth in ("", ".withAuthContext")
)
"""CloudEvent types whose body is a DocumentEventData (Eventarc's Firestore triggers)."""


class ChangeKind(enum.StrEnum):
    """What a write did to the document."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One `google.cloud.firestore.document.v1.written` event: the document before and after."""

    event_id: str
    event_type: str
    source: str
    time: datetime | None
    """The CloudEvent's `time` (UTC)."""
    document: str
    """Document path relative to the database, e.g. `customers/c1`."""
    before: dict[str, Any] | None
    """Old value's fields (None on create)."""
    after: dict[str, Any] | None
    """New value's fields (None on delete)."""
    update_mask: tuple[str, ...]
    """Changed field paths as production sends them; empty from the emulator."""
    before_update_time: datetime | None = None
    after_update_time: datetime | None = None
    """Update time of the new value (nanosecond precision kept, usable as a precondition)."""

    @property
    def kind(self) -> ChangeKind | None:
        """create / update / delete, or None for an event with neither value nor old value."""
        if self.before is None and self.after is None:
            return None
        if self.before is None:
            return ChangeKind.CREATE
        if self.after is None:
            return ChangeKind.DELETE
        return ChangeKind.UPDATE

    @property
    def collection(self) -> str:
        """Collection id of the document (the last one, for nested paths)."""
        parts = self.document.split("/")
        return parts[-2] if len(parts) >= 2 else ""

    @property
    def document_id(self) -> str:
        """Document id (last path segment)."""
        return self.document.rsplit("/", 1)[-1]


def decode_document_event(event: Any) -> Change:
    """A CloudEvent (as functions-framework hands it over) -> Change.

    Raises InvalidDocumentError when the body is not a DocumentEventData in the declared form,
    or holds a timestamp no datetime can hold (the error names the field and its value).
    """
    attrs = _attributes(event)
    event_type = str(attrs.get("type") or "")
    if event_type not in FIRESTORE_EVENT_TYPES:
        # Another event's body read as a document would be a guess, never a fact: refuse it.
        expected = "a google.cloud.firestore.document.v1 event type (written, created, ...)"
        raise InvalidDocumentError(
            "CloudEvent", [FieldError("ce-type", event_type[:120] or None, expected)]
        )
    data = event.data if hasattr(event, "data") else event.get_data()
    message = parse_document_event_data(data, str(attrs.get("datacontenttype") or ""))
    value = message.value if message.HasField("value") else None
    old = message.old_value if message.HasField("old_value") else None
    name = (value.name if value is not None else "") or (old.name if old is not None else "")
    return Change(
        event_id=str(attrs.get("id", "")),
        event_type=str(attrs.get("type", "")),
        source=str(attrs.get("source", "")),
        time=parse_rfc3339(attrs.get("time"), naive_is_utc=True),
        document=_relative_path(name) or _document_from_attributes(attrs),
        before=None if old is None else fields_to_python(old.fields, "old_value"),
        after=None if value is None else fields_to_python(value.fields, "value"),
        update_mask=tuple(message.update_mask.field_paths),
        before_update_time=None if old is None else _ts(old.update_time, "old_value.update_time"),
        after_update_time=None if value is None else _ts(value.update_time, "value.update_time"),
    )


def parse_document_event_data(data: Any, content_type: str = "") -> Any:
    """The raw protobuf DocumentEventData of a body, read as its content type declares.

    A mapping (functions-framework's CloudEvent parses any JSON body) or text is the JSON form.
    Bytes are JSON when the type says JSON and protobuf when it says protobuf; bytes of no
    declared type are protobuf (Eventarc's binary mode), then JSON if they are not protobuf.
    """
    if data is None or data in (b"", ""):
        return DocumentEventData.pb()()
    if isinstance(data, Mapping):
        return _read(data, _Form.DICT)
    if isinstance(data, str):
        return _read(data, _Form.JSON)
    if not isinstance(data, bytes | bytearray | memoryview):
        expected = "bytes, a JSON text or a dict"
        raise InvalidDocumentError(_KIND, [FieldError("(body)", type(data).__name__, expected)])
    raw = bytes(data)
    declared = content_type.lower()
    if "json" in declared:
        form = _Form.JSON
    elif "protobuf" in declared:
        form = _Form.PROTOBUF
    else:
        try:
            return _read(raw, _Form.PROTOBUF)
        except InvalidDocumentError:
            form = _Form.JSON
    return _read(raw, form)


class _Form(enum.Enum):
    DICT = "dict"
    JSON = "json"
    PROTOBUF = "protobuf"


def _read(data: Any, form: _Form) -> Any:
    """One DocumentEventData read in `form`; a failure as InvalidDocumentError."""
    message = DocumentEventData.pb()()
    try:
        if form is _Form.PROTOBUF:
            message.ParseFromString(data)
        elif form is _Form.DICT:
            json_format.ParseDict(data, message, ignore_unknown_fields=True)
        else:
            text = data if isinstance(data, str) else data.decode("utf-8")
            json_format.Parse(text, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, UnicodeDecodeError) as exc:
        expected = f"a DocumentEventData protobuf or JSON: {exc}"
        raise InvalidDocumentError(
            _KIND, [FieldError("(body)", _preview(data), expected)]
        ) from None
    except Exception as exc:  # protobuf's DecodeError is not a ValueError
        expected = f"a DocumentEventData protobuf: {exc}"
        raise InvalidDocumentError(
            _KIND, [FieldError("(body)", _preview(data), expected)]
        ) from None
    return message


def fields_to_python(fields: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """A protobuf `map<string, Value>` as a plain dict (`path`: where the map is, for errors)."""
    return {
        str(key): value_to_python(value, _join(path, str(key))) for key, value in fields.items()
    }


def value_to_python(value: Any, path: str = "") -> Any:  # noqa: PLR0911 -- one return per kind
    """One protobuf Firestore `Value` as a plain Python value.

    Raises InvalidDocumentError naming `path` for a timestamp no datetime can hold.
    """
    kind = value.WhichOneof("value_type")
    if kind is None or kind == "null_value":
        return None
    if kind == "timestamp_value":
        return _ts(value.timestamp_value, path)
    if kind == "map_value":
        return fields_to_python(value.map_value.fields, path)
    if kind == "array_value":
        return [value_to_python(v, f"{path}[{i}]") for i, v in enumerate(value.array_value.values)]
    if kind == "geo_point_value":
        point = value.geo_point_value
        return {"latitude": point.latitude, "longitude": point.longitude}
    if kind == "reference_value":
        return _relative_path(value.reference_value) or value.reference_value
    return getattr(value, kind)


def _ts(ts: Any, path: str) -> datetime:
    """Aware UTC datetime keeping the nanoseconds (usable as an update-time precondition).

    A protobuf Timestamp may carry any int64 seconds and int32 nanos; one outside Firestore's
    range (years 1 to 9999, nanos 0 to 999,999,999) is no document a retry could read: it is
    refused as InvalidDocumentError naming `path` and the value.
    """
    seconds, nanos = int(ts.seconds), int(ts.nanos)
    if _MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < _NANOS_PER_SECOND:
        try:
            return cast(datetime, DatetimeWithNanoseconds.from_timestamp_pb(ts))  # type: ignore[no-untyped-call]
        except (OverflowError, ValueError):
            pass
    expected = "a timestamp from 0001-01-01 to 9999-12-31 UTC, nanos from 0 to 999999999"
    value = {"seconds": seconds, "nanos": nanos}
    raise InvalidDocumentError(_KIND, [FieldError(path or "(timestamp)", value, expected)])


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _relative_path(name: str) -> str:
    if _DOCUMENTS_MARKER in name:
        return name.split(_DOCUMENTS_MARKER, 1)[1]
    return ""


def _document_from_attributes(attrs: Mapping[str, Any]) -> str:
    document = str(attrs.get("document") or "")
    if document:
        return document
    subject = str(attrs.get("subject") or "")
    return subject.removeprefix("documents/")


def _attributes(event: Any) -> dict[str, Any]:
    if hasattr(event, "get_attributes"):
        return dict(event.get_attributes())
    if isinstance(event, Mapping):
        return dict(event)
    return {}


def _preview(data: Any) -> str:
    text = data if isinstance(data, str) else repr(data)
    return text[:120]
