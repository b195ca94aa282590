"""Config-write triggers: stamp `created_at`/`updated_at` and publish cache invalidations.

`handle_config_write` is the whole rule set, a plain function over a decoded `DocumentEvent`
with Firestore and Pub/Sub behind two small Protocols (`Stamper`, `InvalidationPublisher`);
the real adapters at the bottom do I/O only and create their clients on first use.

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
- Invalid documents are never rewritten: an ERROR log names each field and value.
- Every user-visible create, update or delete publishes one invalidation message.
"""

from __future__ import annotations

import enum
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from pydantic import BaseModel

from functions.events import ChangeKind, DocumentEvent
from shared import logs
from shared.errors import FieldError, TransientError
from shared.models import Customer, FeatureFlags, Scene, document_errors
from shared.quota import BOOKKEEPING_FIELDS

CREATED_AT: Final = "created_at"
UPDATED_AT: Final = "updated_at"
_MISSING: Final = object()
MANAGED_FIELDS: Final = frozenset({CREATED_AT, UPDATED_AT})
"""Fields only the triggers write; a change confined to them is not user-visible."""


class ConfigKind(enum.StrEnum):
    """The three watched document kinds."""

    CUSTOMER = "customer"
    SCENE = "scene"
    FEATURE_FLAGS = "feature_flags"


MODEL_OF: Final[dict[ConfigKind, type[BaseModel]]] = {
    ConfigKind.CUSTOMER: Customer,
    ConfigKind.SCENE: Scene,
    ConfigKind.FEATURE_FLAGS: FeatureFlags,
}


class StampOutcome(enum.StrEnum):
    """What a stamp write did."""

    STAMPED = "stamped"
    GONE = "gone"
    """The document no longer exists (deleted since the event): nothing written."""
    STALE = "stale"
    """The document changed since the event (a newer write, or this event redelivered)."""


class Stamper(Protocol):
    """Writes the timestamp fields of a document, and nothing else."""

    def stamp(
        self,
        document: str,
        fields: Mapping[str, datetime | None],
        last_update_time: datetime | None,
    ) -> StampOutcome:
        """Set each field to its value (None: the server time), if the document still exists
        at `last_update_time` (any version when None)."""

    def current(self, document: str) -> tuple[dict[str, Any], datetime] | None:
        """The document's data and update time now, or None when it does not exist."""


class InvalidationPublisher(Protocol):
    """Publishes one message on `config-invalidations`."""

    def publish(self, data: bytes, ordering_key: str, attributes: Mapping[str, str]) -> str:
        """Publish and wait for the message id; raise TransientError when Pub/Sub is down."""


class Decision(enum.StrEnum):
    """What the handler decided, for the log line and tests."""

    IGNORED_EMPTY = "ignored-empty-event"
    IGNORED_ECHO = "ignored-own-stamp"
    IGNORED_NO_CHANGE = "ignored-no-change"
    IGNORED_BOOKKEEPING = "ignored-counters"
    STAMPED = "stamped"
    INVALID = "invalid-not-stamped"
    DELETED = "deleted"
    GONE = "gone-not-stamped"
    STALE = "stale-not-stamped"


@dataclass(frozen=True, slots=True)
class Invalidation:
    """The body of one `config-invalidations` message."""

    collection: str
    document_id: str
    customer_id: str
    change: ChangeKind
    valid: bool
    errors: list[dict[str, str]]
    event_id: str
    update_time: str

    def as_json(self) -> dict[str, Any]:
        """JSON body."""
        return {
            "collection": self.collection,
            "document_id": self.document_id,
            "customer_id": self.customer_id,
            "change": self.change.value,
            "valid": self.valid,
            "errors": self.errors,
            "event_id": self.event_id,
            "update_time": self.update_time,
        }

    def attributes(self) -> dict[str, str]:
        """The same keys as string attributes (for subscription filters), each cut to the
        1024 bytes Pub/Sub allows (the body keeps the full values)."""
        values = {
            "collection": self.collection,
            "document_id": self.document_id,
            "customer_id": self.customer_id,
            "change": self.change.value,
            "valid": "true" if self.valid else "false",
            "errors": json.dumps(self.errors, separators=(",", ":")),
            "event_id": self.event_id,
            "update_time": self.update_time,
        }
        return {key: fit_pubsub_limit(value) for key, value in values.items()}

    @property
    def ordering_key(self) -> str:
        """Customer id, cut to the 1024 bytes Pub/Sub allows."""
        return fit_pubsub_limit(self.customer_id)


PUBSUB_VALUE_LIMIT: Final = 1024
"""Bytes Pub/Sub allows in an attribute value or an ordering key."""


def fit_pubsub_limit(value: str, limit: int = PUBSUB_VALUE_LIMIT) -> str:
    """`value` if it fits in `limit` UTF-8 bytes, else its longest prefix that does plus "..."."""
    raw = value.encode()
    if len(raw) <= limit:
        return value
    return raw[: limit - 3].decode("utf-8", errors="ignore") + "..."


@dataclass(slots=True)
class Outcome:
    """Result of handling one event."""

    decision: Decision
    stamped_fields: tuple[str, ...] = ()
    invalidation: Invalidation | None = None
    errors: list[FieldError] = field(default_factory=list)


def changed_fields(event: DocumentEvent) -> set[str]:
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


def customer_id_of(kind: ConfigKind, event: DocumentEvent) -> str:
    """Customer a config document belongs to (the ordering key of its invalidations)."""
    if kind is ConfigKind.SCENE:
        for data in (event.after, event.before):
            if data is not None and isinstance(data.get("customer_id"), str):
                return str(data["customer_id"])
        return ""
    return event.document_id


def handle_config_write(
    kind: ConfigKind,
    event: DocumentEvent,
    stamper: Stamper,
    publisher: InvalidationPublisher,
) -> Outcome:
    """Apply the config-write rules to one decoded event (see the module docstring)."""
    change = event.kind
    if change is None:
        return Outcome(Decision.IGNORED_EMPTY)
    errors: list[FieldError] = []
    stamps: tuple[str, ...] = ()
    decision = Decision.DELETED
    if change is not ChangeKind.DELETE:
        after = event.after or {}
        if change is ChangeKind.UPDATE:
            changed = changed_fields(event)
            if not changed:
                return Outcome(Decision.IGNORED_NO_CHANGE)
            # The stamp only sets timestamps: a write that removes one is a user's overwrite.
            if not _timestamps_removed(event):
                if changed <= MANAGED_FIELDS:
                    return Outcome(Decision.IGNORED_ECHO)
                if kind is ConfigKind.CUSTOMER and changed <= MANAGED_FIELDS | BOOKKEEPING_FIELDS:
                    # Usage counters and the monthly reset: billing state, not configuration.
                    return Outcome(Decision.IGNORED_BOOKKEEPING)
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
            decision, stamps = _stamp(kind, event, stamper)
    invalidation = Invalidation(
        collection=event.collection,
        document_id=event.document_id,
        customer_id=customer_id_of(kind, event),
        change=change,
        valid=not errors,
        errors=[e.as_dict() for e in errors],
        event_id=event.event_id,
        update_time=_update_time(event),
    )
    publisher.publish(
        json.dumps(invalidation.as_json(), separators=(",", ":")).encode(),
        invalidation.ordering_key,
        invalidation.attributes(),
    )
    return Outcome(decision, stamps, invalidation, errors)


MAX_RESTAMPS: Final = 3
"""Stamp attempts on newer versions when the event's own version was overwritten unstamped."""


def _stamp(
    kind: ConfigKind, event: DocumentEvent, stamper: Stamper
) -> tuple[Decision, tuple[str, ...]]:
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
    """updated_at = server time; created_at too when absent, keeping an earlier one if any."""
    if CREATED_AT in after:
        return {UPDATED_AT: None}
    earlier = (before or {}).get(CREATED_AT)
    return {CREATED_AT: earlier if isinstance(earlier, datetime) else None, UPDATED_AT: None}


def _timestamps_removed(event: DocumentEvent) -> bool:
    before, after = event.before or {}, event.after or {}
    return any(name in before and name not in after for name in MANAGED_FIELDS)


def _top_level(path: str) -> str:
    head = path.split(".", 1)[0] if not path.startswith("`") else path[1:].split("`", 1)[0]
    return head.strip("`")


def _update_time(event: DocumentEvent) -> str:
    when = event.after_update_time if event.after is not None else event.time
    when = when or event.before_update_time
    return when.isoformat().replace("+00:00", "Z") if when else ""


# --------------------------------------------------------------------------------------------
# Entry-point glue: decode -> one service call -> one log line.


def run_trigger(function: str, kind: ConfigKind, cloud_event: Any) -> Outcome:
    """What each of the three entry points does (kept here so they stay one line)."""
    from functions.events import decode_document_event  # noqa: PLC0415 -- cheap, local

    started = time.perf_counter()
    event = decode_document_event(cloud_event)
    outcome = handle_config_write(kind, event, firestore_stamper(), invalidation_publisher())
    logs.info(
        f"{function} {event.document}: {outcome.decision.value}",
        function=function,
        decision=outcome.decision.value,
        event_id=event.event_id,
        collection=event.collection,
        document=event.document,
        customer=customer_id_of(kind, event) or None,
        change=event.kind.value if event.kind else None,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return outcome


# --------------------------------------------------------------------------------------------
# Real adapters (I/O only), created on first use.


class FirestoreStamper:
    """`Stamper` over google-cloud-firestore."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        """The Firestore client (created on first use)."""
        if self._client is None:
            from google.cloud.firestore_v1 import Client  # noqa: PLC0415 -- lazy, cold start

            from shared.settings import get_settings  # noqa: PLC0415

            self._client = Client(project=get_settings().project_id)
        return self._client

    def stamp(
        self,
        document: str,
        fields: Mapping[str, datetime | None],
        last_update_time: datetime | None,
    ) -> StampOutcome:
        """Update only `fields` (None: SERVER_TIMESTAMP), if the doc exists at that version."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        from shared.settings import get_settings  # noqa: PLC0415

        client = self.client
        option = (
            client.write_option(last_update_time=last_update_time)
            if last_update_time is not None
            else client.write_option(exists=True)
        )
        try:
            client.document(document).update(
                {
                    name: SERVER_TIMESTAMP if value is None else value
                    for name, value in fields.items()
                },
                option=option,
                timeout=get_settings().firestore_timeout_seconds,
            )
        except gexc.NotFound:
            return StampOutcome.GONE
        except gexc.FailedPrecondition:
            # Either deleted or changed since the event; a read tells which (cheap, rare).
            snapshot = client.document(document).get()
            return StampOutcome.STALE if snapshot.exists else StampOutcome.GONE
        except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError) as exc:
            raise TransientError(f"Firestore unavailable while stamping {document}: {exc}") from exc
        return StampOutcome.STAMPED

    def current(self, document: str) -> tuple[dict[str, Any], datetime] | None:
        """The document's data and update time now (None when it does not exist)."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415

        from shared.settings import get_settings  # noqa: PLC0415

        try:
            snapshot = self.client.document(document).get(
                timeout=get_settings().firestore_timeout_seconds
            )
        except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError) as exc:
            raise TransientError(f"Firestore unavailable while reading {document}: {exc}") from exc
        if not snapshot.exists:
            return None
        return dict(snapshot.to_dict() or {}), snapshot.update_time


class PubSubInvalidationPublisher:
    """`InvalidationPublisher` over google-cloud-pubsub, message ordering enabled."""

    def __init__(self, client: Any = None, topic: str | None = None) -> None:
        self._client = client
        self._topic = topic

    @property
    def client(self) -> Any:
        """The PublisherClient (created on first use)."""
        if self._client is None:
            from google.cloud.pubsub_v1 import PublisherClient  # noqa: PLC0415 -- lazy
            from google.cloud.pubsub_v1.types import (  # noqa: PLC0415
                BatchSettings,
                PublisherOptions,
            )

            # One message per invocation, and the handler waits for it: batching would only
            # add its 10 ms collection delay to every event.
            self._client = PublisherClient(
                batch_settings=BatchSettings(max_messages=1),
                publisher_options=PublisherOptions(enable_message_ordering=True),
            )
        return self._client

    @property
    def topic(self) -> str:
        """Full topic path of `config-invalidations` (from settings)."""
        if self._topic is None:
            from shared.names import topic_path  # noqa: PLC0415
            from shared.settings import get_settings  # noqa: PLC0415

            settings = get_settings()
            self._topic = topic_path(settings.project_id, settings.config_invalidations_topic)
        return self._topic

    def publish(self, data: bytes, ordering_key: str, attributes: Mapping[str, str]) -> str:
        """Publish and wait; a failure resumes the ordering key and raises TransientError."""
        client = self.client
        try:
            future = client.publish(self.topic, data, ordering_key=ordering_key, **attributes)
            return str(future.result(timeout=30))
        except Exception as exc:
            if ordering_key:
                client.resume_publish(self.topic, ordering_key)
            raise TransientError(f"publishing to {self.topic} failed: {exc}") from exc


_STAMPER: FirestoreStamper | None = None
_PUBLISHER: PubSubInvalidationPublisher | None = None


def firestore_stamper() -> FirestoreStamper:
    """The process-wide stamper (its client is created on first use)."""
    global _STAMPER  # noqa: PLW0603 -- lazy process-wide client
    if _STAMPER is None:
        _STAMPER = FirestoreStamper()
    return _STAMPER


def invalidation_publisher() -> PubSubInvalidationPublisher:
    """The process-wide invalidation publisher (its client is created on first use)."""
    global _PUBLISHER  # noqa: PLW0603 -- lazy process-wide client
    if _PUBLISHER is None:
        _PUBLISHER = PubSubInvalidationPublisher()
    return _PUBLISHER
