"""Entry points of the five deployed functions (see `functions.table`).

Each is a `functions_framework.cloud_event` function. Import stays cheap: handlers create their
clients on first use, never here (this import is the cold start).
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from functions import usage
from functions.config_triggers import ConfigKind, run_trigger
from functions.table import by_name


@functions_framework.cloud_event
def on_customer_written(event: CloudEvent) -> None:
    """Firestore `customers/{customerId}` written."""
    run_trigger("on-customer-written", ConfigKind.CUSTOMER, event)


@functions_framework.cloud_event
def on_scene_written(event: CloudEvent) -> None:
    """Firestore `scenes/{sceneId}` written."""
    run_trigger("on-scene-written", ConfigKind.SCENE, event)


@functions_framework.cloud_event
def on_feature_flags_written(event: CloudEvent) -> None:
    """Firestore `feature_flags/{docId}` written."""
    run_trigger("on-feature-flags-written", ConfigKind.FEATURE_FLAGS, event)


@functions_framework.cloud_event
def on_usage_event(event: CloudEvent) -> None:
    """Pub/Sub `usage-events` message published: record it once, count it, alert on quota."""
    usage.handle_cloud_event(event)


@functions_framework.cloud_event
def reset_monthly_quotas(event: CloudEvent) -> None:
    """Pub/Sub `quota-reset-schedule` message published (Cloud Scheduler, monthly)."""
    from functions import reset  # noqa: PLC0415 - each function loads only its own module

    reset.handle_schedule_event(event, by_name("reset-monthly-quotas").timeout_seconds)


@functions_framework.cloud_event
def record_dead_letters(event: CloudEvent) -> None:
    """Pub/Sub dead-letter topics: store each message Pub/Sub gave up on (usage_rejections)."""
    from functions.deadletter import entry  # noqa: PLC0415 - each function loads only its own module

    entry.handle_cloud_event(event)
