"""Producers' side: publish a usage event on `usage-events`, validated before it leaves.

    from shared.publisher import publish_usage_event

    message_id = publish_usage_event(
        customer_id="lab_001",
        scene_id="scene_kitchen_v2",
        action="episodes_generated",
        timestamp=datetime.now(UTC),
        event_id="job-42-episodes",  # your idempotency key: the same key is recorded once
        episodes_generated=100,
        compute_minutes=45.5,
        storage_gb=2.3,
    )

A bad event raises InvalidDocumentError (naming field and value) here, not in the function.
Pub/Sub down or unreachable raises PublishError (a TransientError) within about `timeout`
seconds (DEFAULT_TIMEOUT, 10 s), naming the topic, the project and the emulator host; a
permanent refusal (no such topic, no permission) raises PermanentError with the same names.
The Pub/Sub client is the process's one publisher (`shared.clients.publisher_client`, created on
first use); pass `client=` to reuse your own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import JsonValue

from shared import names
from shared.clients import bounded_retry, publisher_client
from shared.errors import PermanentError, PublishError, is_permanent
from shared.models import UsageEvent, validate
from shared.settings import Settings, get_settings

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds to wait for Pub/Sub to accept an event before PublishError."""

ATTRIBUTE_VALUE_LIMIT: Final = 1024
"""Bytes Pub/Sub takes in one attribute value (cloud.google.com/pubsub/quotas)."""

# The library's own error (DeadlineExceeded, RetryError naming the last status) says more than
# our wait running out, so the wait gives it a moment past the deadline to arrive first.
_WAIT_SLACK: Final = 0.5


def usage_event_bytes(event: UsageEvent) -> bytes:
    """The message body of an event: compact JSON, absent fields left out."""
    return event.model_dump_json(exclude_none=True).encode()


def publish_event(
    event: UsageEvent,
    *,
    client: Any | None = None,
    settings: Settings | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Publish a validated event; wait until Pub/Sub accepted it; return its message id.

    Raises PublishError (transient) when Pub/Sub does not accept it within about `timeout`
    seconds, PermanentError when Pub/Sub refuses it for good (e.g. the topic does not exist).
    """
    if not timeout > 0:
        raise ValueError(f"timeout={timeout!r}: expected seconds > 0")
    settings = settings or get_settings()
    topic = names.topic_path(settings.project_id, settings.usage_events_topic)
    named = {"schema_version": str(event.schema_version), "customer_id": event.customer_id}
    if event.event_id is not None:
        named["event_id"] = event.event_id
    # An attribute is a copy of the body for routing; one over Pub/Sub's limit is left out
    # (a customer id may be 1,500 bytes) rather than refuse the event.
    attributes = {k: v for k, v in named.items() if len(v.encode()) <= ATTRIBUTE_VALUE_LIMIT}
    publisher = client or publisher_client()
    try:
        future = publisher.publish(
            topic, usage_event_bytes(event), **_bounded(publisher, timeout), **attributes
        )
        return str(future.result(timeout=timeout + _WAIT_SLACK))
    except TimeoutError:
        raise PublishError(
            _failure(settings, f"no answer within {timeout:g} s", down=True)
        ) from None
    except Exception as exc:
        # One line instead of the library's chained traceback: what failed, where, and why.
        why = f"{type(exc).__name__}: {_cut(str(exc))}"
        if is_permanent(exc):
            raise PermanentError(_failure(settings, why)) from None
        why += f" (gave up after {timeout:g} s)"
        raise PublishError(_failure(settings, why, down=True)) from None


def _bounded(publisher: Any, timeout: float) -> dict[str, Any]:
    """Per-call retry and RPC deadline for a real PublisherClient, so that nothing keeps
    retrying in the background (the library's default: up to 600 s) after we gave up waiting.
    Other publishers (fakes, wrappers) are called as `publish(topic, data, **attributes)`."""
    # The defining module's class (`pubsub_v1.PublisherClient` subclasses it), not the
    # package attribute, which tests replace by a factory of fakes.
    from google.cloud.pubsub_v1.publisher.client import Client  # noqa: PLC0415 - lazy

    if not isinstance(publisher, Client):
        return {}
    return {"retry": bounded_retry(timeout), "timeout": timeout}


def _failure(settings: Settings, why: str, *, down: bool = False) -> str:
    host = settings.pubsub_emulator_host
    where = f"the Pub/Sub emulator at PUBSUB_EMULATOR_HOST={host}" if host else "Pub/Sub"
    if down and host:
        where += " (is it running?)"
    return (
        f"usage event not published to topic {settings.usage_events_topic!r} of project "
        f"{settings.project_id!r} on {where}: {why}"
    )


def _cut(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def publish_usage_event(
    *,
    customer_id: str,
    scene_id: str,
    action: str,
    timestamp: datetime | str,
    event_id: str | None = None,
    episodes_generated: int | None = None,
    compute_minutes: float | None = None,
    storage_gb: float | None = None,
    details: dict[str, JsonValue] | None = None,
    client: Any | None = None,
    settings: Settings | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Validate a usage event with the shared model, publish it, return the message id.

    Raises InvalidDocumentError (each bad field with its value) before anything is sent, and
    PublishError (transient: retry later) when Pub/Sub does not accept the event within about
    `timeout` seconds; its one-line message names the topic, the project and the emulator host.
    `timestamp` must carry a time zone. `event_id` is the idempotency key: publishing the same
    event id twice records the usage once.
    """
    data: dict[str, Any] = {
        "schema_version": 1,
        "customer_id": customer_id,
        "scene_id": scene_id,
        "action": action,
        "timestamp": timestamp,
        "event_id": event_id,
        "episodes_generated": episodes_generated,
        "compute_minutes": compute_minutes,
        "storage_gb": storage_gb,
        "details": details,
    }
    event = validate(
        UsageEvent, {k: v for k, v in data.items() if v is not None}, kind="usage event"
    )
    return publish_event(event, client=client, settings=settings, timeout=timeout)
