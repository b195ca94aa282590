"""The last error of a usage message Pub/Sub is about to dead-letter, noted for its recorder.

When a delivery fails transiently and the message says it is on its last attempt
(`deliveryAttempt >= max_delivery_attempts`), the usage function merges `kind: "dead_letter"`,
`last_error`, `last_error_at` (server time) and `last_delivery_attempt` into
`usage_rejections/{dead_letter_doc_id(...)}`: the id `record-dead-letters` computes from the
dead letter Pub/Sub will publish (source subscription's short name, original publish time,
bytes, attributes). The recorder completes that note and keeps the three fields
(docs/dead-letters.md). Best effort: one attempt, a short deadline, never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from functions.edge.pubsub import Message
from shared import clients, logs, names
from shared.ids import dead_letter_doc_id
from shared.settings import Settings, get_settings

LAST_ERROR_LIMIT: Final = 300
"""Characters of `type: message` kept."""
NOTE_TIMEOUT_SECONDS: Final = 2.0
"""The note's deadline: short, the delivery has failed already and Pub/Sub waits for the answer."""
DEAD_LETTER_ATTRIBUTE_PREFIX: Final = "CloudPubSubDeadLetterSource"
"""Pub/Sub's own attributes on a dead letter; the recorder drops them from the identity."""


class NoteStore(Protocol):
    """Where the note goes (Firestore in production)."""

    def merge_note(self, doc_id: str, fields: Mapping[str, Any]) -> None:
        """Merge `fields` (+ `last_error_at`, server time) into `usage_rejections/{doc_id}`:
        one attempt, a short deadline; raises whatever the write raised."""
        ...


def short_subscription(subscription: str | None) -> str | None:
    """`projects/p/subscriptions/s` -> `s` (what `CloudPubSubDeadLetterSourceSubscription`
    carries, measured on the emulator); a short name stays as it is."""
    if not subscription:
        return None
    return subscription.rpartition("/subscriptions/")[2] or None


def note_id(message: Message) -> str | None:
    """The id the recorder will compute for this message's dead letter; None when the envelope
    lacks the subscription or the publish time (then no id can match: nothing is noted)."""
    subscription = short_subscription(message.subscription)
    if subscription is None or not message.publish_time_text:
        return None
    attributes = {
        k: v
        for k, v in message.attributes.items()
        if not k.startswith(DEAD_LETTER_ATTRIBUTE_PREFIX)
    }
    return dead_letter_doc_id(subscription, message.publish_time_text, message.data, attributes)


def error_text(exc: BaseException) -> str:
    """`TypeName: message`, at most LAST_ERROR_LIMIT characters."""
    return f"{type(exc).__name__}: {exc}"[:LAST_ERROR_LIMIT]


@dataclass(frozen=True, slots=True)
class LastErrorNote:
    """Notes the error of a last delivery attempt (see module doc)."""

    store: NoteStore
    max_attempts: int
    """The subscription's `max_delivery_attempts` (`functions.table.USAGE_DELIVERY`)."""
    collection: str = names.USAGE_REJECTIONS
    """For the log lines."""

    def is_last_attempt(self, message: Message) -> bool:
        """True when Pub/Sub dead-letters the message if this delivery fails."""
        attempt = message.delivery_attempt
        return attempt is not None and attempt >= self.max_attempts

    def failed(self, message: Message, exc: BaseException) -> bool:
        """Note `exc` if this was the last attempt; True when written. Never raises."""
        if not self.is_last_attempt(message):
            return False
        try:
            doc_id = note_id(message)
            if doc_id is None:
                logs.warning(
                    "last delivery attempt failed; its error cannot be noted for the dead "
                    "letter: the envelope has no subscription or publish time",
                    message_id=message.message_id,
                    subscription=message.subscription,
                    publish_time=message.publish_time_text,
                )
                return False
            self.store.merge_note(
                doc_id,
                {
                    "kind": "dead_letter",
                    "last_error": error_text(exc),
                    "last_delivery_attempt": message.delivery_attempt,
                },
            )
        except Exception as again:
            logs.warning(
                "last error of a message about to be dead-lettered NOT noted (its dead letter "
                f"will say last_error null): {error_text(again)}",
                message_id=message.message_id,
                collection=self.collection,
                last_error=error_text(exc),
            )
            return False
        logs.info(
            "last delivery attempt failed: error noted for the dead letter",
            message_id=message.message_id,
            collection=self.collection,
            document=doc_id,
            delivery_attempt=message.delivery_attempt,
        )
        return True


def build_usage_note(settings: Settings, client: Any | None = None) -> LastErrorNote:
    """The usage function's note over Firestore; its last attempt is the usage subscription's
    `max_delivery_attempts` in the function table."""
    from functions.deadletter.adapters import FirestoreNoteStore  # noqa: PLC0415 - cold start
    from functions.table import USAGE_DELIVERY  # noqa: PLC0415 - cheap, kept beside its use

    return LastErrorNote(
        FirestoreNoteStore(settings, client, timeout=NOTE_TIMEOUT_SECONDS),
        max_attempts=USAGE_DELIVERY.max_delivery_attempts,
        collection=settings.usage_rejections_collection,
    )


USAGE_NOTE: Final = clients.Lazy(lambda: build_usage_note(get_settings()))
"""The deployed usage function's note, built on first use."""


def note_failure(message: Message, exc: Exception, notes: LastErrorNote | None = None) -> None:
    """Note `exc` of a usage message (the deployed note unless `notes`). Best effort, never
    raises: the original error is what Pub/Sub must see."""
    try:
        (notes or USAGE_NOTE.get()).failed(message, exc)
    except Exception as again:  # `failed` never raises; building the deployed one can
        logs.warning(f"last error not noted: {type(again).__name__}: {again}"[:300])
