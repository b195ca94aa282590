"""Conversion between models and Firestore values: timestamps, server-timestamp sentinels, maps.

Imports google-cloud-firestore lazily so `shared.models` stays cheap for producers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from shared.models import to_plain, validate

M = TypeVar("M", bound=BaseModel)


def server_timestamp() -> Any:
    """Firestore's SERVER_TIMESTAMP sentinel (the server fills in its commit time)."""
    from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415 - keep import lazy

    return SERVER_TIMESTAMP


def to_firestore(model: BaseModel, *, server_timestamps: Iterable[str] = ()) -> dict[str, Any]:
    """Document data for a model: set fields only, enums as strings, chosen fields as sentinels."""
    data = to_plain(model)
    stamps = list(server_timestamps)
    if stamps:
        sentinel = server_timestamp()
        for name in stamps:
            data[name] = sentinel
    return data


def plain_value(value: Any) -> Any:
    """A Firestore read value as plain Python: aware UTC datetimes, dicts, lists."""
    if isinstance(value, datetime):
        # DatetimeWithNanoseconds is a datetime subclass; normalise to a plain aware datetime.
        tz = value.tzinfo or UTC
        return datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=tz,
        ).astimezone(UTC)
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return value


def from_firestore(model: type[M], data: Mapping[str, Any] | None, *, kind: str | None = None) -> M:
    """Validate a document read from Firestore into its model (InvalidDocumentError if bad)."""
    if data is None:
        raise ValueError(f"no data to read a {kind or model.__name__} from (document missing)")
    return validate(model, plain_value(data), kind=kind)


def create_if_absent(ref: Any, data: Mapping[str, Any], *, timeout: float) -> bool:
    """`ref.create(data)`: True when it created the document, False when it already existed.

    AlreadyExists means "already done" (an idempotent write keyed by the event's own id, or a
    document a first run made); every other error is the caller's to classify.
    """
    from google.api_core.exceptions import AlreadyExists  # noqa: PLC0415 - keep import lazy

    try:
        ref.create(dict(data), timeout=timeout)
    except AlreadyExists:
        return False
    return True
