"""Validate documents into models (errors name each field and value), and models back to data."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import FieldError, InvalidDocumentError

M = TypeVar("M", bound=BaseModel)


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Turn a pydantic error into FieldErrors: dotted path, value received, what was expected."""
    out = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"]) or "(document)"
        expected = err["msg"]
        if err["type"] == "extra_forbidden":
            expected = "no such field in the schema"
        elif err["type"] == "missing":
            expected = "a value (the field is required)"
        elif expected.startswith("Value error, "):
            expected = expected.removeprefix("Value error, ")
        # A missing field's "input" is the whole enclosing document: report no value instead.
        value = None if err["type"] == "missing" else err.get("input")
        out.append(FieldError(path, value, expected))
    return out


def validate(model: type[M], data: Mapping[str, Any], *, kind: str | None = None) -> M:
    """Validate a document; raise InvalidDocumentError naming each bad field and value."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidDocumentError(kind or model.__name__, field_errors(exc)) from None


def validate_json(model: type[M], body: str | bytes, *, kind: str | None = None) -> M:
    """Validate a JSON text; raise InvalidDocumentError naming each bad field and value."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidDocumentError(kind or model.__name__, field_errors(exc)) from None


def document_errors(model: type[BaseModel], data: Mapping[str, Any]) -> list[FieldError]:
    """The validation errors of a document, empty when it is valid."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return field_errors(exc)
    return []


def to_plain(model: BaseModel) -> dict[str, Any]:
    """Plain dict of set fields (enums as strings, datetimes kept), by alias."""
    data: dict[str, Any] = _plain(model.model_dump(mode="python", exclude_none=True, by_alias=True))
    return data


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
