"""Decisions about one dead letter: what to store, under which id, and what to log.

A dead letter is a message Pub/Sub gave up on after the subscription's `max_delivery_attempts`
(see `functions.table.DeliveryPolicy`). Usage dead letters become `usage_rejections` documents
of kind `dead_letter` (a replay can deliver them again); schedule dead letters (reset, fold)
are not usage: each gets an ERROR log, and a reset one also a document under its month's audit,
`quota_resets/{YYYY-MM}/dead_letters/{id}`. Both are keyed by the original message's identity
(`shared.ids.dead_letter_doc_id`), so a redelivered or doubly dead-lettered message writes once.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from functions.deadletter.ports import DeadLetter, DeadLetterStore, Source, UnstorableError
from functions.edge.payloads import payload_fields
from functions.edge.pubsub import Message
from shared import logs
from shared.errors import FieldError, TransientError
from shared.ids import dead_letter_doc_id
from shared.times import MONTH_RE, month_of, parse_rfc3339

SOURCE_PREFIX: Final = "CloudPubSubDeadLetterSource"
"""Pub/Sub adds these attributes to a dead letter; they are not the original message's."""
SOURCE_SUBSCRIPTION: Final = "CloudPubSubDeadLetterSourceSubscription"
SOURCE_PROJECT: Final = "CloudPubSubDeadLetterSourceSubscriptionProject"
SOURCE_DELIVERY_COUNT: Final = "CloudPubSubDeadLetterSourceDeliveryCount"
SOURCE_PUBLISH_TIME: Final = "CloudPubSubDeadLetterSourceTopicPublishTime"
DEAD_LETTER: Final = "dead_letter"
LAST_ERROR_FIELDS: Final = ("last_error", "last_error_at", "last_delivery_attempt")
"""The usage function's last failing delivery leaves these on the dead letter's id before the
dead letter arrives (`functions.deadletter.note`; best effort: not when Firestore is down, nor
without `deliveryAttempt`); they are kept when it did."""
RECORDED_MARK: Final = "dead_letter_message_id"
"""Present once the recorder stored the dead letter (a note alone lacks it)."""


class Outcome(enum.StrEnum):
    """What handling one dead letter did."""

    RECORDED = "dead-letter-recorded"
    ALREADY_RECORDED = "dead-letter-already-recorded"
    ALREADY_REJECTED = "dead-letter-already-rejected"
    LOGGED = "dead-letter-logged"


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome and the document it concerns (None when only logged)."""

    outcome: Outcome
    doc_id: str | None = None


def _count(text: str) -> int | None:
    """Pub/Sub's delivery count; None unless plain ASCII digits of a sane size ("²" is a digit
    to `str.isdigit`, and Firestore holds at most 64-bit integers)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def dead_letter_of(message: Message, source: Source) -> DeadLetter:
    """The decoded Pub/Sub message as a dead letter (never raises)."""
    attrs = message.attributes
    count_text = attrs.get(SOURCE_DELIVERY_COUNT, "")
    return DeadLetter(
        source=source,
        dead_letter_message_id=message.message_id,
        data=message.data,
        attributes={k: v for k, v in attrs.items() if not k.startswith(SOURCE_PREFIX)},
        source_subscription=attrs.get(SOURCE_SUBSCRIPTION),
        source_project=attrs.get(SOURCE_PROJECT),
        delivery_attempts=_count(count_text),
        source_publish_time=attrs.get(SOURCE_PUBLISH_TIME),
        dead_lettered_at=message.publish_time,
        problem=message.problem,
    )


def doc_id_of(letter: DeadLetter) -> str:
    """The id of the original message (a redelivery or a second dead-lettering: same id)."""
    # Without Pub/Sub's source attributes (a message published here by hand) the dead letter's
    # own id is the only stable identity.
    published = letter.source_publish_time or f"dead-letter {letter.dead_letter_message_id}"
    return dead_letter_doc_id(
        letter.source_subscription or "unknown", published, letter.data, letter.attributes
    )


def reason_of(letter: DeadLetter) -> str:
    """One line saying what happened."""
    attempts = letter.delivery_attempts if letter.delivery_attempts is not None else "?"
    where = letter.source_subscription or "an unknown subscription"
    return (
        f"dead_letter: not acknowledged after {attempts} delivery attempts on {where}; "
        "Pub/Sub moved it to the dead-letter topic"
    )


def document_of(letter: DeadLetter) -> dict[str, Any]:
    """The stored document (without `rejected_at`, which the server stamps)."""
    errors = [FieldError("(delivery)", letter.delivery_attempts, "an acknowledged delivery")]
    if letter.problem is not None:
        errors.append(letter.problem)
    return {
        "schema_version": 1,
        "kind": DEAD_LETTER,
        "message_id": None,
        "reason": reason_of(letter),
        "errors": [e.as_dict() for e in errors],
        **payload_fields(letter.data),
        "attributes": dict(letter.attributes),
        "publish_time": parse_rfc3339(letter.source_publish_time, naive_is_utc=True),
        "source_subscription": letter.source_subscription,
        "source_project": letter.source_project,
        "delivery_attempts": letter.delivery_attempts,
        RECORDED_MARK: letter.dead_letter_message_id,
        "dead_lettered_at": letter.dead_lettered_at,
        "last_error": None,
        "last_error_at": None,
    }


def reset_month(letter: DeadLetter, now: datetime) -> str:
    """The month whose audit the reset dead letter belongs to: the body's `period` if it is
    one, else the month the schedule message was published in (as the reset decides)."""
    try:
        body = json.loads(letter.data)
    except (ValueError, RecursionError):
        body = None
    period = body.get("period") if isinstance(body, dict) else None
    if isinstance(period, str) and MONTH_RE.match(period):
        return period
    published = parse_rfc3339(letter.source_publish_time, naive_is_utc=True)
    return month_of(published or letter.dead_lettered_at or now)


@dataclass
class DeadLetterService:
    """Stores and logs dead letters; `reset_function` names the reset's deployed function."""

    store: DeadLetterStore
    reset_function: str = "reset-monthly-quotas"
    rejections_collection: str = "usage_rejections"
    resets_collection: str = "quota_resets"

    def handle(self, letter: DeadLetter, now: datetime) -> Result:
        """Record one dead letter exactly once."""
        if letter.source is Source.USAGE:
            return self._usage(letter)
        return self._schedule(letter, now)

    def _usage(self, letter: DeadLetter) -> Result:
        doc_id = doc_id_of(letter)
        doc = document_of(letter)
        if self._create(doc_id, doc):
            return self._recorded(letter, doc_id, doc)
        existing = self.store.get_rejection(doc_id)
        if existing is None:
            raise TransientError(f"usage_rejections/{doc_id} vanished between create and read")
        if RECORDED_MARK in existing.data:
            logs.info(
                "dead letter already recorded (redelivery): nothing written",
                decision=Outcome.ALREADY_RECORDED.value,
                collection=self.rejections_collection,
                document=doc_id,
            )
            return Result(Outcome.ALREADY_RECORDED, doc_id)
        if existing.data.get("kind") not in (None, DEAD_LETTER):
            logs.info(
                f"dead letter already rejected as {existing.data.get('kind')}: nothing written",
                decision=Outcome.ALREADY_REJECTED.value,
                collection=self.rejections_collection,
                document=doc_id,
            )
            return Result(Outcome.ALREADY_REJECTED, doc_id)
        # A note the usage function left (its last error): complete it, keep what it knew.
        known = {k: existing.data[k] for k in LAST_ERROR_FIELDS if existing.data.get(k) is not None}
        changes = {**doc, **known}
        try:
            completed = self.store.complete_rejection(doc_id, changes, existing.token)
        except UnstorableError as exc:
            changes = self._reduced(doc_id, changes, exc) | known
            completed = self.store.complete_rejection(doc_id, changes, existing.token)
        if not completed:
            raise TransientError(f"usage_rejections/{doc_id} changed while completing it")
        return self._recorded(letter, doc_id, changes)

    def _create(self, doc_id: str, doc: Mapping[str, Any]) -> bool:
        try:
            return self.store.create_rejection(doc_id, doc)
        except UnstorableError as exc:
            return self.store.create_rejection(doc_id, self._reduced(doc_id, doc, exc))

    def _reduced(self, doc_id: str, doc: Mapping[str, Any], exc: UnstorableError) -> dict[str, Any]:
        """What a person needs of a document Firestore refused (e.g. odd attributes)."""
        logs.error(
            "dead-letter document refused by Firestore; storing a reduced one",
            collection=self.rejections_collection,
            document=doc_id,
            error=str(exc)[:300],
        )
        keep = ("schema_version", "kind", "reason", "payload_bytes", "source_subscription")
        return {k: doc[k] for k in keep} | {RECORDED_MARK: doc[RECORDED_MARK]}

    def _recorded(self, letter: DeadLetter, doc_id: str, doc: Mapping[str, Any]) -> Result:
        logs.error(
            f"usage message dead-lettered: {doc['reason']}",
            decision=Outcome.RECORDED.value,
            collection=self.rejections_collection,
            document=doc_id,
            customer=doc.get("customer_id"),
            event_id=doc.get("event_id"),
            source_subscription=letter.source_subscription,
            delivery_attempts=letter.delivery_attempts,
            last_error=doc.get("last_error"),
        )
        return Result(Outcome.RECORDED, doc_id)

    def _schedule(self, letter: DeadLetter, now: datetime) -> Result:
        doc_id = doc_id_of(letter)
        subscription = letter.source_subscription or ""
        fields: dict[str, Any] = {
            "document": doc_id,
            "source_subscription": letter.source_subscription,
            "delivery_attempts": letter.delivery_attempts,
            "payload": letter.data[:1000].decode("utf-8", errors="replace"),
        }
        if self.reset_function not in subscription:
            # A fold tick (or another job): the next scheduled run repairs it; a person is told.
            logs.error(
                f"scheduled message dead-lettered: {reason_of(letter)}",
                decision=Outcome.LOGGED.value,
                **fields,
            )
            return Result(Outcome.LOGGED)
        month = reset_month(letter, now)
        doc = document_of(letter)
        created = self.store.create_reset_dead_letter(month, doc_id, doc)
        logs.error(
            f"monthly reset message dead-lettered: {reason_of(letter)}; the reset of {month} "
            "may be incomplete: run the job again "
            "(`gcloud scheduler jobs run monthly-quota-reset`)",
            decision=(Outcome.RECORDED if created else Outcome.ALREADY_RECORDED).value,
            collection=self.resets_collection,
            month=month,
            **fields,
        )
        return Result(Outcome.RECORDED if created else Outcome.ALREADY_RECORDED, doc_id)
