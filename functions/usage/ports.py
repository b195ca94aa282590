"""What the usage service exchanges with its adapters: dataclasses and the repository Protocol.

Adapters and the service both import this module; neither imports the other.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Protocol

from shared import names
from shared.errors import FieldError, PermanentError
from shared.models import BundleTier, UsageEvent

MAX_REASON_ERRORS: Final = 20


class UnstorableRecordError(PermanentError):
    """Firestore refused the record itself (InvalidArgument): reject the message for good."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits (from settings)."""

    max_body_bytes: int = 65536
    max_future: timedelta = timedelta(seconds=300)


@dataclass(frozen=True, slots=True)
class LogNames:
    """Collection names the log lines report (the configured ones, not the defaults)."""

    customers: str = names.CUSTOMERS
    usage_tracking: str = names.USAGE_TRACKING
    usage_rejections: str = names.USAGE_REJECTIONS


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message is refused for good."""

    kind: str
    errors: tuple[FieldError, ...]
    facts: Mapping[str, str] = field(default_factory=dict)
    """Extra fields of the rejection document (e.g. both payload hashes of a conflict)."""

    @property
    def reason(self) -> str:
        """One line naming each bad field and value."""
        shown = "; ".join(str(e) for e in self.errors[:MAX_REASON_ERRORS])
        more = len(self.errors) - MAX_REASON_ERRORS
        return f"{self.kind}: {shown}" + (f" (+{more} more)" if more > 0 else "")


@dataclass(slots=True)
class Prepared:
    """A valid usage event and its record id."""

    event: UsageEvent
    record_id: str


@dataclass(frozen=True, slots=True)
class PricingCustomer:
    """What an event needs from its customer: that it exists, and the tier that prices it."""

    customer_id: str
    tier: BundleTier


class UsageRepository(Protocol):
    """Firestore as the usage service needs it. Errors other than the ones named here come
    out classified (`shared.errors.classify`): TransientError or PermanentError."""

    def get_customer(self, customer_id: str) -> Mapping[str, Any] | None:
        """The customer document's data, or None when it does not exist."""

    def create_record(self, record_id: str, record: Mapping[str, Any]) -> bool:
        """Create `usage_tracking/{record_id}` with `recorded_at` = the commit time (server).

        True when created; False when it already exists (nothing written). Raises
        UnstorableRecordError when Firestore refuses the data.
        """

    def get_stored_sha256(self, record_id: str) -> str | None:
        """`payload_sha256` of `usage_tracking/{record_id}`; None when the record does not
        exist or holds none."""

    def store_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create `usage_rejections/{doc_id}` (+ rejected_at); False if it already existed."""


class Outcome(enum.StrEnum):
    """What handling one message did."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    CONFLICT = "conflicting_duplicate"
    """Recorded before under the same id with a different payload: the first stands."""
    REJECTED = "rejected"
    REJECTED_BEFORE = "rejected_before"


@dataclass(frozen=True, slots=True)
class Result:
    """Outcome of one message, for callers and tests."""

    outcome: Outcome
    record_id: str | None = None
    rejection: Rejection | None = None
