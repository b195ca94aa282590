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
The Pub/Sub client is the process's one publisher (`shared.clients.publisher_client`, created on
first use); pass `client=` to reuse your own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import JsonValue

from shared import names
from shared.clients import publisher_client
from shared.models import UsageEvent, validate
from shared.settings import Settings, get_settings


def usage_event_bytes(event: UsageEvent) -> bytes:
    """The message body of an event: compact JSON, absent fields left out."""
    return event.model_dump_json(exclude_none=True).encode()


def publish_event(
    event: UsageEvent,
    *,
    client: Any | None = None,
    settings: Settings | None = None,
    timeout: float = 30.0,
) -> str:
    """Publish a validated event; wait until Pub/Sub accepted it; return its message id."""
    settings = settings or get_settings()
    topic = names.topic_path(settings.project_id, settings.usage_events_topic)
    attributes = {"schema_version": str(event.schema_version), "customer_id": event.customer_id}
    if event.event_id is not None:
        attributes["event_id"] = event.event_id
    future = (client or publisher_client()).publish(topic, usage_event_bytes(event), **attributes)
    return str(future.result(timeout=timeout))


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
    timeout: float = 30.0,
) -> str:
    """Validate a usage event with the shared model, publish it, return the message id.

    Raises InvalidDocumentError (each bad field with its value) before anything is sent.
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
