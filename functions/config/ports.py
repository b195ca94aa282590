"""What the config-write service exchanges with Firestore and Pub/Sub: Protocols and values."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.errors import FieldError
from shared.invalidation import Invalidation


class ConfigKind(enum.StrEnum):
    """The three watched document kinds."""

    CUSTOMER = "customer"
    SCENE = "scene"
    FEATURE_FLAGS = "feature_flags"


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
    """What the service decided, for the log line and tests."""

    IGNORED_EMPTY = "ignored-empty-event"
    IGNORED_ECHO = "ignored-own-stamp"
    IGNORED_NO_CHANGE = "ignored-no-change"
    IGNORED_BOOKKEEPING = "ignored-counters"
    STAMPED = "stamped"
    INVALID = "invalid-not-stamped"
    DELETED = "deleted"
    GONE = "gone-not-stamped"
    STALE = "stale-not-stamped"
    REFUSED_STAMP = "stamp-refused"
    """Firestore refused the stamp for good (e.g. it would push the document past 1 MiB)."""


@dataclass(slots=True)
class Outcome:
    """Result of handling one event."""

    decision: Decision
    stamped_fields: tuple[str, ...] = ()
    invalidation: Invalidation | None = None
    errors: list[FieldError] = field(default_factory=list)
    refusal: str | None = None
    """Why Firestore refused the stamp (decision `stamp-refused`)."""
