"""The `config-invalidations` message: one model for the trigger that publishes it and the
`CustomerConfigService` that reads it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

PUBSUB_VALUE_LIMIT: Final = 1024
"""Bytes Pub/Sub allows in an attribute value or an ordering key."""
MAX_ERRORS: Final = 20
"""Field errors carried in one message; the rest are counted in `errors_omitted`."""
MAX_ERROR_TEXT: Final = 300
"""Characters of one error's value kept in a message."""


def fit_pubsub_limit(value: str, limit: int = PUBSUB_VALUE_LIMIT) -> str:
    """`value` if it fits in `limit` UTF-8 bytes, else its longest prefix that does plus "..."."""
    raw = value.encode()
    if len(raw) <= limit:
        return value
    return raw[: limit - 3].decode("utf-8", errors="ignore") + "..."


def _cut_text(value: str, limit: int = MAX_ERROR_TEXT) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def bounded_errors(
    errors: Sequence[Mapping[str, str]], limit: int = MAX_ERRORS
) -> tuple[list[dict[str, str]], int]:
    """At most `limit` errors with each text cut, and how many were left out."""
    kept = [{k: _cut_text(str(v)) for k, v in e.items()} for e in errors[:limit]]
    return kept, max(0, len(errors) - limit)


@dataclass(frozen=True, slots=True)
class Invalidation:
    """One message of `config-invalidations`."""

    collection: str
    document_id: str
    customer_id: str | None = None
    change: str | None = None
    """`create`, `update` or `delete` (the write that changed the document)."""
    valid: bool = True
    """False: the document failed validation; readers fall back to defaults."""
    errors: tuple[Mapping[str, str], ...] = ()
    """The field errors (field, value, expected) of an invalid document, at most MAX_ERRORS."""
    errors_omitted: int = 0
    """How many further field errors the document had."""
    update_time: str | None = None
    event_id: str | None = None
    notes: tuple[str, ...] = field(default=())
    """What else a reader should know, e.g. that Firestore refused the stamp."""

    @property
    def error_fields(self) -> tuple[str, ...]:
        """The field paths of the errors."""
        return tuple(str(e.get("field", e)) for e in self.errors)

    def as_json(self) -> dict[str, Any]:
        """The JSON body."""
        body: dict[str, Any] = {
            "collection": self.collection,
            "document_id": self.document_id,
            "customer_id": self.customer_id or "",
            "change": self.change or "",
            "valid": self.valid,
            "errors": [dict(e) for e in self.errors],
            "event_id": self.event_id or "",
            "update_time": self.update_time or "",
        }
        if self.errors_omitted:
            body["errors_omitted"] = self.errors_omitted
        if self.notes:
            body["notes"] = list(self.notes)
        return body

    def body(self) -> bytes:
        """The JSON body as bytes."""
        return json.dumps(self.as_json(), separators=(",", ":"), default=str).encode()

    def attributes(self) -> dict[str, str]:
        """The same keys as string attributes (for subscription filters), each cut to the
        1024 bytes Pub/Sub allows (the body keeps the full values)."""
        values = {
            "collection": self.collection,
            "document_id": self.document_id,
            "customer_id": self.customer_id or "",
            "change": self.change or "",
            "valid": "true" if self.valid else "false",
            "errors": json.dumps([dict(e) for e in self.errors], separators=(",", ":")),
            "event_id": self.event_id or "",
            "update_time": self.update_time or "",
        }
        return {key: fit_pubsub_limit(value) for key, value in values.items()}

    @property
    def ordering_key(self) -> str:
        """Customer id, cut to the 1024 bytes Pub/Sub allows."""
        return fit_pubsub_limit(self.customer_id or "")


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value not in (None, ""):
            return value
    return None


def _errors(raw: Any) -> tuple[Mapping[str, str], ...]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = [raw]
    if not isinstance(raw, list | tuple):
        return ()
    return tuple(
        {str(k): str(v) for k, v in e.items()} if isinstance(e, Mapping) else {"field": str(e)}
        for e in raw
    )


def parse_invalidation(data: bytes, attributes: Mapping[str, str]) -> Invalidation | None:
    """Decode a message (JSON body, attributes as fallback); None when it names no document."""
    body: dict[str, Any] = {}
    if data:
        try:
            loaded = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):
            loaded = None
        if isinstance(loaded, dict):
            body = loaded
    merged: dict[str, Any] = {**attributes, **body}
    collection = _first(merged, "collection", "collection_id")
    document = _first(merged, "document_id", "doc_id", "document", "id")
    if isinstance(document, str) and "/" in document:
        # A path: `customers/c1` or `.../documents/customers/c1`.
        parts = document.strip("/").split("/")
        collection, document = collection or parts[-2], parts[-1]
    if not isinstance(collection, str) or not isinstance(document, str):
        return None
    valid = merged.get("valid", True)
    if isinstance(valid, str):
        valid = valid.strip().lower() not in {"false", "0", "no"}
    customer = _first(merged, "customer_id", "customer")
    omitted = merged.get("errors_omitted", 0)
    notes = merged.get("notes") or ()
    return Invalidation(
        collection=collection,
        document_id=document,
        customer_id=customer if isinstance(customer, str) else None,
        change=_first(merged, "change_kind", "change", "kind"),
        valid=bool(valid),
        errors=_errors(merged.get("errors") or ()),
        errors_omitted=omitted if isinstance(omitted, int) and not isinstance(omitted, bool) else 0,
        update_time=_first(merged, "update_time", "updated_at"),
        event_id=_first(merged, "event_id"),
        notes=tuple(str(n) for n in notes) if isinstance(notes, list | tuple) else (),
    )
