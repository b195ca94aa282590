"""Entry of `on-usage-event`: decode the Pub/Sub message -> one service call -> log the result.

The service answers every problem of the event itself (stored in `usage_rejections`,
acknowledged). What escapes it is never the event's fault (Firestore down, or a deployment that
cannot write): it raises, so Pub/Sub redelivers and then dead-letters it, kept for replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from functions.deadletter.note import USAGE_NOTE, LastErrorNote, note_failure
from functions.edge.pubsub import decode_message
from functions.usage.cache import CustomerCache
from functions.usage.ports import Limits, LogNames, Result
from functions.usage.service import UsageService
from shared import clients, logs
from shared.errors import is_permanent
from shared.settings import Settings, get_settings


def build_service(settings: Settings, client: Any | None = None) -> UsageService:
    """The service over the real Firestore adapter, configured from `settings`."""
    from functions.usage.adapters import FirestoreUsageRepository  # noqa: PLC0415 - cold start

    ttl = settings.usage_customer_cache_seconds
    repository = FirestoreUsageRepository(settings, client)
    return UsageService(
        repository,
        limits=Limits(
            max_body_bytes=settings.usage_max_body_bytes,
            max_future=timedelta(seconds=settings.usage_max_future_seconds),
        ),
        customer_cache=CustomerCache(ttl) if ttl > 0 else None,
        fold_buckets=settings.usage_fold_buckets,
        log_names=LogNames(
            customers=settings.customers_collection,
            usage_tracking=settings.usage_tracking_collection,
            usage_rejections=settings.usage_rejections_collection,
        ),
    )


_SERVICE: Final = clients.Lazy(lambda: build_service(get_settings()))
"""Built once per process, even when the first 64 requests race for it (each service holds a
customer cache: two would double the reads)."""


def default_service() -> UsageService:
    """The deployed service, built on first use."""
    return _SERVICE.get()


def reset_default_service() -> None:
    """Forget the service (tests that change the settings)."""
    _SERVICE.reset()
    USAGE_NOTE.reset()


def handle_cloud_event(
    event: Any,
    service: UsageService | None = None,
    now: datetime | None = None,
    notes: LastErrorNote | None = None,
) -> Result | None:
    """Decode, handle, log; raise what Pub/Sub should redeliver (on the last attempt, after
    noting the error for the dead letter: `notes`, the deployed one unless `service` is given)."""
    message = decode_message(event)
    try:
        return (service or default_service()).handle(message, now or datetime.now(UTC))
    except Exception as exc:
        fault = is_permanent(exc)  # the deployment's: a retry alone will not fix it
        (logs.error if fault else logs.warning)(
            "usage message not processed, Pub/Sub will redeliver"
            + (" and then dead-letter it (fix the deployment, then replay)" if fault else "")
            + f": {type(exc).__name__}: {exc}",
            decision="retry-deployment-fault" if fault else "retry",
            message_id=message.message_id,
            delivery_attempt=message.delivery_attempt,
        )
        if notes is not None or service is None:
            note_failure(message, exc, notes)
        raise
