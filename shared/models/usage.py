"""Usage: the event producers publish on `usage-events` and the record written for it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, JsonValue, Strict

from shared.models.base import Action, Document
from shared.models.vocabulary import BundleTier
from shared.types import DocumentId, EventCount, NonNegFloat, StrictBool, UtcDatetime


def _not_bool_or_float(value: Any) -> Any:
    # Literal[1] alone takes JSON `true` and `1.0` (True == 1.0 == 1 in Python).
    if isinstance(value, bool | float):
        # ValueError, not TypeError: pydantic turns only the former into a field error.
        raise ValueError(f"expected the integer 1, got {type(value).__name__} {value!r}")  # noqa: TRY004
    return value


class UsageEvent(Document):
    """One usage event as the pipeline publishes it on `usage-events` (JSON body)."""

    schema_version: Annotated[Literal[1], BeforeValidator(_not_bool_or_float)]
    """Schema version of the event (1)."""
    event_id: Annotated[str, Strict(), Field(min_length=1, max_length=256)] | None = None
    """Producer's idempotency key; the same key is recorded once (recommended)."""
    customer_id: DocumentId
    """Customer the usage is billed to."""
    scene_id: DocumentId
    """Scene the usage belongs to."""
    action: Action
    """What happened: scene_generated, episodes_generated, upsell_applied, ..."""
    timestamp: UtcDatetime
    """When it happened (RFC 3339 with a time zone)."""
    episodes_generated: EventCount | None = None
    """Episodes generated, if applicable (at most 10^12: the 64-bit counters add events up)."""
    compute_minutes: NonNegFloat | None = None
    """Compute time used, in minutes."""
    storage_gb: NonNegFloat | None = None
    """Storage consumed, in GB."""
    details: dict[str, JsonValue] | None = None
    """Additional context."""


class UsageRecord(Document):
    """`usage_tracking/{id}`: one billable action, written once per usage event."""

    schema_version: Literal[1]
    """Schema version of this document (1)."""
    customer_id: DocumentId
    """Customer id."""
    scene_id: DocumentId
    """Scene id."""
    action: Action
    """Action type."""
    timestamp: UtcDatetime
    """When the action occurred."""
    details: dict[str, Any] | None = None
    """Additional context."""
    episodes_generated: EventCount | None = None
    """Number of episodes (if applicable; at most 10^12, as the event's)."""
    compute_minutes: NonNegFloat | None = None
    """Compute time used, in minutes."""
    storage_gb: NonNegFloat | None = None
    """Storage consumed, in GB."""
    billable: StrictBool
    """Whether this action is billable (false for actions the rate card does not know)."""
    estimated_cost: NonNegFloat
    """Estimated cost in USD, rounded half-up to cents."""
    rate_card_version: Annotated[str, Strict(), Field(min_length=1)] | None = None
    """Version of the rate card that priced this record."""
    pricing_tier: BundleTier | None = None
    """Tier whose rates priced this record."""
    event_id: Annotated[str, Strict(), Field(min_length=1, max_length=256)] | None = None
    """Producer's idempotency key, if it sent one."""
    message_id: Annotated[str, Strict(), Field(min_length=1)] | None = None
    """Pub/Sub message id the event arrived in."""
    payload_sha256: Annotated[str, Strict(), Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    """SHA-256 of the canonical event JSON (delivery metadata excluded): tells a redelivery of
    this event from a different event sent under the same `event_id`."""
    recorded_at: UtcDatetime | None = None
    """When the record was written (server time)."""
    # The fold's bookkeeping, on every record (docs/counters.md, The documents): written by
    # the usage function, read by the fold and the month-close recount.
    fold_key: Annotated[str, Strict(), Field(min_length=1)] | None = None
    """`{customer_id}_{YYYY-MM}`: its customer-month's summary id (the recount's filter)."""
    fold_bucket: Annotated[int, Strict(), Field(ge=0)] | None = None
    """Its customer-month's fold bucket (the prefix of the fold's scan)."""
    scenes_generated: Annotated[int, Strict(), Field(ge=0, le=1)] | None = None
    """1 for a `scene_generated` record, else 0 (summed by the fold and the recount)."""
    cost_cents: Annotated[int, Strict(), Field(ge=0)] | None = None
    """`estimated_cost` in integer cents (summed by the fold and the recount)."""
