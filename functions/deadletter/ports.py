"""What the dead-letter service exchanges with Firestore: one Protocol and its dataclasses."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from shared.errors import FieldError, PermanentError


class Source(enum.StrEnum):
    """Which pipeline a dead letter came from (decided by the dead-letter topic)."""

    USAGE = "usage"
    SCHEDULE = "schedule"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-lettered message, as the edge decoded it."""

    source: Source
    dead_letter_message_id: str
    """The dead letter's own id (Pub/Sub republishes it under a new one)."""
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    """The original message's attributes (the `CloudPubSubDeadLetterSource*` ones removed)."""
    source_subscription: str | None = None
    source_project: str | None = None
    delivery_attempts: int | None = None
    source_publish_time: str | None = None
    """RFC 3339 text of the original publish, as Pub/Sub wrote it."""
    dead_lettered_at: datetime | None = None
    """When the dead letter was published (its own publish time)."""
    problem: FieldError | None = None
    """Set when the envelope was unusable (then `data` is the raw envelope)."""


@dataclass(frozen=True, slots=True)
class Existing:
    """A document already at the dead letter's id: its data, and a token for a guarded write."""

    data: Mapping[str, Any]
    token: Any


class UnstorableError(PermanentError):
    """Firestore refused the document itself (InvalidArgument, or a value the client cannot
    encode): store a reduced one."""


class DeadLetterStore(Protocol):
    """Firestore as the dead-letter service needs it (I/O only: the service decides)."""

    def create_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create `usage_rejections/{doc_id}` (+ `rejected_at`); False if it exists.
        Raises UnstorableError if Firestore refuses the document."""
        ...

    def get_rejection(self, doc_id: str) -> Existing | None:
        """The document at `usage_rejections/{doc_id}`, if any."""
        ...

    def complete_rejection(self, doc_id: str, changes: Mapping[str, Any], token: Any) -> bool:
        """Update it unless it changed since `token` was read; False if it did."""
        ...

    def create_reset_dead_letter(self, month: str, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create `quota_resets/{month}/dead_letters/{doc_id}`; False if it exists."""
        ...
