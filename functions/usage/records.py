"""The documents one usage event writes (pure): its record, or its rejection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.edge.payloads import payload_fields
from functions.edge.pubsub import Message
from functions.usage.ports import MAX_REASON_ERRORS, PricingCustomer, Rejection
from shared.counters import record_fields
from shared.errors import FieldError, InvalidDocumentError
from shared.firestore_values import plain_value
from shared.ids import payload_sha256
from shared.models import BundleTier, Customer, UsageEvent, validate
from shared.pricing import CostEstimate
from shared.times import month_of


def read_customer(
    customer_id: str, data: Mapping[str, Any]
) -> tuple[PricingCustomer, list[FieldError]]:
    """What pricing needs from a stored customer document, keeping what is valid.

    Usage of a customer whose document is partly invalid is still recorded (it happened): an
    invalid tier prices as `standard`, and the bad fields are reported.
    """
    plain = plain_value(data)
    try:
        customer = validate(Customer, plain, kind="customer")
        return PricingCustomer(customer_id, customer.bundle_tier), []
    except InvalidDocumentError as exc:
        errors = list(exc.errors)
    try:
        tier = BundleTier(plain.get("bundle_tier", BundleTier.STANDARD.value))
    except (ValueError, TypeError):
        tier = BundleTier.STANDARD
    return PricingCustomer(customer_id, tier), errors


def build_record(
    event: UsageEvent, cost: CostEstimate, message_id: str, buckets: int
) -> dict[str, Any]:
    """The `usage_tracking` document (without `recorded_at`, which the server stamps): the
    data model's fields, and what the fold needs to find and sum it (`shared.counters`)."""
    record: dict[str, Any] = {
        "schema_version": 1,
        "customer_id": event.customer_id,
        "scene_id": event.scene_id,
        "action": event.action,
        "timestamp": event.timestamp,
        "billable": cost.billable,
        "estimated_cost": float(cost.amount),
        "rate_card_version": cost.rate_card_version,
        "pricing_tier": cost.tier.value,
        "message_id": message_id,
        "payload_sha256": payload_sha256(event),
    }
    # The data model's fields are always there (null where the event had nothing: not applicable,
    # not 0), so every record has the same shape; event_id only when the producer sent one.
    record["episodes_generated"] = event.episodes_generated
    record["compute_minutes"] = event.compute_minutes
    record["storage_gb"] = event.storage_gb
    record["details"] = event.details
    if event.event_id is not None:
        record["event_id"] = event.event_id
    month = month_of(event.timestamp)
    record.update(record_fields(event.customer_id, month, event.action, cost.amount, buckets))
    return record


def rejection_document(message: Message, rejection: Rejection) -> dict[str, Any]:
    """The `usage_rejections` document (without `rejected_at`, which the server stamps)."""
    doc: dict[str, Any] = {
        "schema_version": 1,
        "message_id": message.message_id,
        "kind": rejection.kind,
        "reason": rejection.reason,
        "errors": [e.as_dict() for e in rejection.errors[:MAX_REASON_ERRORS]],
        **payload_fields(message.data),
        "attributes": dict(message.attributes),
        **rejection.facts,
    }
    if message.publish_time is not None:
        doc["publish_time"] = message.publish_time
    return doc
