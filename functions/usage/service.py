"""The usage service: one message -> one `usage_tracking` record, exactly once.

decode (the entry) -> validate (`intake.prepare`) -> customer (per-instance cache) -> price ->
`create(usage_tracking/{id})` -> log. The record is the only write; it carries what the fold
needs to find and sum it (`shared.counters`, docs/counters.md). `AlreadyExists` means recorded
before (a redelivery). Bad input is stored in `usage_rejections` and acknowledged."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from functions.edge.pubsub import Message
from functions.usage.cache import CustomerCache
from functions.usage.intake import prepare, wrong_type
from functions.usage.ports import (
    Limits,
    LogNames,
    Outcome,
    PricingCustomer,
    Rejection,
    Result,
    UnstorableRecordError,
    UsageRepository,
)
from functions.usage.records import build_record, read_customer, rejection_document
from shared import logs
from shared.errors import FieldError
from shared.ids import message_doc_id
from shared.models import UsageEvent
from shared.pricing import CostEstimate, RateCard, cost_problem, estimate_cost


@dataclass(frozen=True, slots=True)
class UsageService:
    """The usage service's collaborators and knobs. Immutable; its customer cache is
    thread-safe: one service serves every thread."""

    repository: UsageRepository
    limits: Limits = field(default_factory=Limits)
    card: RateCard | None = None
    customer_cache: CustomerCache | None = None
    """None: read the customer for every event."""
    fold_buckets: int = 16
    """The fold's buckets (`settings.usage_fold_buckets`): each record names its own."""
    log_names: LogNames = field(default_factory=LogNames)

    def handle(self, message: Message, now: datetime) -> Result:
        """Record one usage message exactly once (see module doc)."""
        prepared = wrong_type(message) or prepare(message, now, self.limits)
        if isinstance(prepared, Rejection):
            return self._reject(message, prepared, None)
        event = prepared.event
        customer = self._customer(event.customer_id)
        if customer is None:
            missing = FieldError("customer_id", event.customer_id, "an existing customer document")
            return self._reject(message, Rejection("unknown_customer", (missing,)), event)
        cost = estimate_cost(event, customer.tier, self.card)
        too_costly = cost_problem(event, cost)
        if too_costly is not None:  # the month's integer sums must stay within 64 bits
            return self._reject(message, Rejection("invalid_event", (too_costly,)), event)
        record = build_record(event, cost, message.message_id, self.fold_buckets)
        try:
            created = self.repository.create_record(prepared.record_id, record)
        except UnstorableRecordError as exc:
            refused = FieldError("(record)", str(exc)[:300], "data Firestore accepts")
            return self._reject(message, Rejection("unstorable", (refused,)), event)
        if not created:
            return self._recorded_before(message, prepared.record_id, record, event)
        self._log_recorded(message, prepared.record_id, event, cost)
        return Result(Outcome.RECORDED, prepared.record_id)

    def _log_recorded(
        self, message: Message, record_id: str, event: UsageEvent, cost: CostEstimate
    ) -> None:
        if not cost.billable:
            logs.warning(
                f"action {event.action!r} is not on rate card {cost.rate_card_version}: "
                "recorded as not billable, cost 0",
                event_id=event.event_id,
                message_id=message.message_id,
                customer=event.customer_id,
                action=event.action,
            )
        # DEBUG: the record itself is the event's audit trail; an INFO line per event would
        # cost as much in Cloud Logging as the record write.
        logs.debug(
            "usage recorded",
            decision="recorded",
            event_id=event.event_id,
            message_id=message.message_id,
            collection=self.log_names.usage_tracking,
            document=record_id,
            customer=event.customer_id,
            action=event.action,
            estimated_cost=str(cost.amount),
        )

    def _customer(self, customer_id: str) -> PricingCustomer | None:
        """The customer, from the per-instance cache, else read (1 read per instance, however
        many requests ask at once); None if unknown."""
        cache = self.customer_cache
        if cache is None:
            return self._read_customer(customer_id)
        return cache.load(customer_id, lambda: self._read_customer(customer_id))

    def _read_customer(self, customer_id: str) -> PricingCustomer | None:
        data = self.repository.get_customer(customer_id)
        if data is None:
            return None
        customer, bad_fields = read_customer(customer_id, data)
        if bad_fields:
            logs.invalid_document(
                self.log_names.customers, customer_id, bad_fields, customer=customer_id
            )
        return customer

    def _recorded_before(
        self, message: Message, record_id: str, record: dict[str, object], event: UsageEvent
    ) -> Result:
        """The record exists: the same event again (a redelivery: done), or another payload
        under the same key (Stripe's rule: the first stands, the second is refused as a
        `conflicting_duplicate`). Read only on AlreadyExists, so the common path pays nothing."""
        mine = str(record["payload_sha256"])
        existing = self.repository.get_stored_sha256(record_id)
        if existing is None or existing == mine:
            logs.info(
                "usage event already recorded (redelivery): nothing written again",
                decision="duplicate",
                event_id=event.event_id,
                message_id=message.message_id,
                collection=self.log_names.usage_tracking,
                document=record_id,
                customer=event.customer_id,
            )
            return Result(Outcome.DUPLICATE, record_id)
        key = FieldError(
            "event_id"
            if event.event_id is not None
            else "(customer_id, scene_id, action, timestamp)",
            event.event_id or record_id,
            f"a new key, or the payload already recorded under it (sha256 {existing})",
        )
        facts = {
            "record_id": record_id,
            "payload_sha256": mine,
            "existing_payload_sha256": existing,
        }
        rejection = Rejection("conflicting_duplicate", (key,), facts)
        self._reject(message, rejection, event, severity="WARNING")
        return Result(Outcome.CONFLICT, record_id, rejection)

    def _reject(
        self,
        message: Message,
        rejection: Rejection,
        event: UsageEvent | None,
        severity: str = "ERROR",
    ) -> Result:
        doc_id = message_doc_id(message.message_id)
        created = self.repository.store_rejection(doc_id, rejection_document(message, rejection))
        log = logs.warning if severity == "WARNING" else logs.error
        log(
            f"usage message rejected: {rejection.reason}",
            decision="rejected" if created else "rejected-before",
            message_id=message.message_id,
            event_id=event.event_id if event else None,
            collection=self.log_names.usage_rejections,
            document=doc_id,
            customer=event.customer_id if event else None,
            stored=created,
        )
        return Result(Outcome.REJECTED if created else Outcome.REJECTED_BEFORE, rejection=rejection)
