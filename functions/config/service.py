"""The config-write rules over a decoded `Change`: what to stamp, what to announce.

Rules (docs/config-triggers.md):
- created_at / updated_at are server-managed. A change that touches only them is the function's
  own stamp coming back (its echo): no write, no message. This is the loop guard; it compares old
  and new values unless the event carries an update mask (production), then it trusts the mask.
- A user-visible create or update of a valid document stamps `updated_at` (and `created_at` if
  absent), writing only those fields, with the event's update time as precondition: a document
  deleted or changed since is never resurrected or overwritten, and a redelivered event (whose
  document has since been stamped) writes nothing.
- On customers, a change confined to the counters and reset fields that the usage function and
  the monthly reset write (`quota.BOOKKEEPING_FIELDS`) is billing state, not configuration: no
  stamp, no message (otherwise every usage event would cost a trigger write and a message).
- Both of these write only valid values over valid ones: a change to those fields that leaves
  one of them invalid (`created_at: 12345`, `quota_period: "March"`) is a person's write,
  handled as an invalid document; one that repairs an invalid one is a config change.
- Invalid documents are never rewritten: an ERROR log names each field and value.
- An event naming no document, or a path that is no document of the watched collection
  (`customers`, `customers/c1/sub`), is refused (InvalidDocumentError: acknowledged, one ERROR
  line naming the path): no retry would give it a document to stamp.
- A stamp Firestore refuses for good (InvalidArgument: the two timestamps would push a document
  near 1 MiB past the limit) is logged once at ERROR and said in the invalidation's `notes`; the
  event is acknowledged (a redelivery would be refused the same way).
- Every user-visible create, update or delete publishes one invalidation message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel

from functions.config.ports import (
    ConfigKind,
    Decision,
    InvalidationPublisher,
    Outcome,
    Stamper,
    StampOutcome,
)
from functions.edge.documents import Change, ChangeKind
from shared import logs
from shared.errors import FieldError, InvalidDocumentError, PermanentError
from shared.invalidation import Invalidation, bounded_errors
from shared.models import Customer, FeatureFlags, Scene, document_errors
from shared.quota import BOOKKEEPING_FIELDS

CREATED_AT: Final = "created_at"
UPDATED_AT: Final = "updated_at"
_MISSING: Final = object()
MANAGED_FIELDS: Final = frozenset({CREATED_AT, UPDATED_AT})
"""Fields only the triggers write; a change confined to them is not user-visible."""
MAX_RESTAMPS: Final = 3
"""Stamp attempts on newer versions when the event's own version was overwritten unstamped."""
MAX_REASON: Final = 500
"""Characters of Firestore's refusal kept in the log line and the note."""
"""Stamp attempts on newer versions when the event's own version was overwritten unstamped."""

MODEL_OF: Final[dict[ConfigKind, type[BaseModel]]] = {
    ConfigKind.CUSTOMER: Customer,
    ConfigKind.SCENE: Scene,
    ConfigKind.FEATURE_FLAGS: FeatureFlags,
}


def changed_fields(event: Change) -> set[str]:
    """Top-level fields the write changed: from the update mask when present, else by value."""
    if event.update_mask:
        return {_top_level(path) for path in event.update_mask}
    before = event.before or {}
    after = event.after or {}
    return {
        key
        for key in before.keys() | after.keys()
        if not same_value(before.get(key, _MISSING), after.get(key, _MISSING))
    }


def same_value(a: Any, b: Any) -> bool:
    """Firestore value equality: the type counts (1, 1.0 and true differ) and NaN equals NaN
    (else a NaN anywhere makes every echo of the stamp look like a user change: endless loop)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def customer_id_of(kind: ConfigKind, event: Change) -> str:
    """Customer a config document belongs to (the ordering key of its invalidations)."""
    if kind is ConfigKind.SCENE:
        for data in (event.after, event.before):
            if data is not None and isinstance(data.get("customer_id"), str):
                return str(data["customer_id"])
        return ""
    return event.document_id


def handle_config_write(
    kind: ConfigKind,
    event: Change,
    stamper: Stamper,
    publisher: InvalidationPublisher,
    collection: str | None = None,
) -> Outcome:
    """Apply the config-write rules to one decoded event (see the module docstring).

    `collection`: the collection the trigger watches (None: any); an event whose document is
    not `{collection}/{id}` raises InvalidDocumentError.
    """
    change = event.kind
    if change is None:
        return Outcome(Decision.IGNORED_EMPTY)
    check_document_path(event.document, collection)
    errors: list[FieldError] = []
    stamps: tuple[str, ...] = ()
    decision = Decision.DELETED
    refusal: str | None = None
    if change is not ChangeKind.DELETE:
        after = event.after or {}
        if change is ChangeKind.UPDATE:
            ignored = _ignored_update(kind, event)
            if ignored is not None:
                return Outcome(ignored)
        errors = document_errors(MODEL_OF[kind], after)
        if errors:
            decision = Decision.INVALID
            logs.invalid_document(
                event.collection,
                event.document_id,
                errors,
                event_id=event.event_id,
                customer=customer_id_of(kind, event),
            )
        else:
            try:
                decision, stamps = _stamp(kind, event, stamper)
            except PermanentError as exc:
                decision, refusal = Decision.REFUSED_STAMP, _cut(str(exc), MAX_REASON)
                logs.error(
                    f"stamp of {event.document} refused, not retried: {refusal}",
                    collection=event.collection,
                    document=event.document,
                    event_id=event.event_id,
                    customer=customer_id_of(kind, event) or None,
                    reason=refusal,
                )
    notes = (f"stamp refused by Firestore: {refusal}",) if refusal else ()
    invalidation = invalidation_of(kind, event, change, errors, notes)
    publisher.publish(invalidation.body(), invalidation.ordering_key, invalidation.attributes())
    return Outcome(decision, stamps, invalidation, errors, refusal)


def check_document_path(document: str, collection: str | None) -> None:
    """Raise InvalidDocumentError unless `document` is `{collection}/{id}` (a top-level
    document of the watched collection; any collection when None)."""
    parts = document.split("/")
    if len(parts) == 2 and all(parts) and collection in (None, parts[0]):
        return
    if document:
        expected = f"a document of the watched collection: {collection or '{collection}'}/{{id}}"
    else:
        expected = "a document path (the event's value, old value and subject name none)"
    error = FieldError("document", document or None, expected)
    raise InvalidDocumentError("Firestore event", [error])


def invalidation_of(
    kind: ConfigKind,
    event: Change,
    change: ChangeKind,
    errors: list[FieldError],
    notes: tuple[str, ...] = (),
) -> Invalidation:
    """The `config-invalidations` message announcing this change."""
    kept, omitted = bounded_errors([e.as_dict() for e in errors])
    return Invalidation(
        collection=event.collection,
        document_id=event.document_id,
        customer_id=customer_id_of(kind, event),
        change=change.value,
        valid=not errors,
        errors=tuple(kept),
        errors_omitted=omitted,
        event_id=event.event_id,
        update_time=_update_time(event),
        notes=notes,
    )


def _ignored_update(kind: ConfigKind, event: Change) -> Decision | None:
    """Why an update is not a user-visible config change (None: it is one)."""
    changed = changed_fields(event)
    if not changed:
        return Decision.IGNORED_NO_CHANGE
    # The stamp only sets timestamps: a write that removes or nulls one is a user's overwrite.
    if _timestamps_removed(event):
        return None
    if changed <= MANAGED_FIELDS:
        ignored = Decision.IGNORED_ECHO
    elif kind is ConfigKind.CUSTOMER and changed <= MANAGED_FIELDS | BOOKKEEPING_FIELDS:
        # Usage counters and the monthly reset: billing state, not configuration.
        ignored = Decision.IGNORED_BOOKKEEPING
    else:
        return None
    # The stamp and the usage functions write only valid values, over valid ones: a changed
    # field that is invalid after (or was before: a repair clears the readers' marks) is a
    # person's write, handled as any other (an invalid one logged and announced invalid).
    if changed & (_bad_fields(kind, event.after) | _bad_fields(kind, event.before)):
        return None
    return ignored


def _bad_fields(kind: ConfigKind, data: Mapping[str, Any] | None) -> set[str]:
    """Top-level fields of `data` the model finds invalid."""
    if data is None:
        return set()
    return {_top_level(e.field) for e in document_errors(MODEL_OF[kind], data)}


def _stamp(kind: ConfigKind, event: Change, stamper: Stamper) -> tuple[Decision, tuple[str, ...]]:
    """Stamp the event's version; if it changed since and no newer stamp covers this change
    (the newer write was a counter update, which stamps nothing), stamp the newer version."""
    data, version = event.after or {}, event.after_update_time
    for _ in range(MAX_RESTAMPS):
        fields = _stamp_fields(event.before, data)
        result = stamper.stamp(event.document, fields, version)
        if result is StampOutcome.STAMPED:
            return Decision.STAMPED, tuple(fields)
        if result is StampOutcome.GONE or event.after_update_time is None:
            break
        now = stamper.current(event.document)
        if now is None:
            result = StampOutcome.GONE
            break
        data, version = now
        updated = data.get(UPDATED_AT)
        covered = isinstance(updated, datetime) and updated >= event.after_update_time
        if covered or document_errors(MODEL_OF[kind], data):
            break  # stamped since (a redelivery), or a newer invalid version: never rewritten
    return (Decision.GONE if result is StampOutcome.GONE else Decision.STALE), ()


def _stamp_fields(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> dict[str, datetime | None]:
    """updated_at = server time; created_at too when absent or null, keeping an earlier one."""
    if after.get(CREATED_AT) is not None:
        return {UPDATED_AT: None}
    earlier = (before or {}).get(CREATED_AT)
    return {CREATED_AT: earlier if isinstance(earlier, datetime) else None, UPDATED_AT: None}


def _timestamps_removed(event: Change) -> bool:
    """A timestamp there before and gone (or null) now: the stamp never does that."""
    before, after = event.before or {}, event.after or {}
    return any(before.get(name) is not None and after.get(name) is None for name in MANAGED_FIELDS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _top_level(path: str) -> str:
    head = path.split(".", 1)[0] if not path.startswith("`") else path[1:].split("`", 1)[0]
    return head.strip("`")


def _update_time(event: Change) -> str:
    when = event.after_update_time if event.after is not None else event.time
    when = when or event.before_update_time
    return when.isoformat().replace("+00:00", "Z") if when else ""
