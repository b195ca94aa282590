"""Entry of `record-dead-letters` / `record-schedule-dead-letters`: decode, record, log."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from functions.deadletter.ports import Source
from functions.deadletter.service import DeadLetterService, Result, dead_letter_of
from functions.edge.pubsub import decode_message
from shared import logs
from shared.errors import TransientError, classify
from shared.settings import Settings, get_settings


def source_of(event: Any, settings: Settings) -> Source:
    """Which pipeline the dead letter is from, by the topic it arrived on (`source`)."""
    get = getattr(event, "get", None)
    source = str(get("source") or "") if get is not None else ""
    topic = source.rpartition("/topics/")[2]
    # Anything not the schedules' topic is treated as usage: a lost usage event costs money.
    return Source.SCHEDULE if topic == settings.schedules_dead_letter_topic else Source.USAGE


@functools.cache
def default_service() -> DeadLetterService:
    """The service over Firestore, built on first use from the settings."""
    from functions.deadletter.adapters import FirestoreDeadLetterStore  # noqa: PLC0415 - cold start
    from functions.table import by_name  # noqa: PLC0415

    settings = get_settings()
    return DeadLetterService(
        FirestoreDeadLetterStore(settings),
        reset_function=by_name("reset-monthly-quotas").name,
        rejections_collection=settings.usage_rejections_collection,
        resets_collection=settings.quota_resets_collection,
    )


def handle_cloud_event(
    event: Any, service: DeadLetterService | None = None, now: datetime | None = None
) -> Result | None:
    """Record one dead letter; raise only what a retry can fix (Pub/Sub redelivers)."""
    letter = dead_letter_of(decode_message(event), source_of(event, get_settings()))
    try:
        return (service or default_service()).handle(letter, now or datetime.now(UTC))
    except Exception as exc:
        decided = classify(exc, "storing the dead letter")
        if isinstance(decided, TransientError):
            logs.warning(
                f"dead letter not stored yet, Pub/Sub will redeliver: {type(exc).__name__}: {exc}",
                message_id=letter.dead_letter_message_id,
            )
            raise
        # Retrying cannot help; the hold subscription still keeps the message for 7 days.
        logs.error(
            f"dead letter NOT stored: {decided}; it stays in "
            "the dead-letter hold subscription for 7 days",
            decision="dead-letter-unstored",
            message_id=letter.dead_letter_message_id,
            source_subscription=letter.source_subscription,
        )
        return None
