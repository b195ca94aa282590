"""Entry points of the six deployed functions (see `functions.table`).

Each is a `functions_framework.cloud_event` function: decode -> one service call -> log, in its
package's `entry` module. Import stays cheap (it is the cold start): each function imports its
own package on first call, and clients are created on first use, never here.
"""

from __future__ import annotations

import functions_framework
from cloudevents.exceptions import DataUnmarshallerError
from cloudevents.http import CloudEvent


def _unparsed_request(exc: Exception) -> tuple[str, int]:
    """A request functions-framework could not turn into a CloudEvent: handed to the function
    with its raw body, or answered 400 (`functions.edge.unreadable`), never a crash (500)."""
    from functions.edge.unreadable import answer  # noqa: PLC0415

    return answer(exc, globals())


# functions_framework.errorhandler is the app's own while create_app loads this module.
for _error in (DataUnmarshallerError, RecursionError, TypeError):
    functions_framework.errorhandler(_error)(_unparsed_request)


@functions_framework.cloud_event
def on_customer_written(event: CloudEvent) -> None:
    """Firestore `customers/{customerId}` written."""
    from functions.config.entry import run_trigger  # noqa: PLC0415
    from functions.config.ports import ConfigKind  # noqa: PLC0415

    run_trigger("on-customer-written", ConfigKind.CUSTOMER, event)


@functions_framework.cloud_event
def on_scene_written(event: CloudEvent) -> None:
    """Firestore `scenes/{sceneId}` written."""
    from functions.config.entry import run_trigger  # noqa: PLC0415
    from functions.config.ports import ConfigKind  # noqa: PLC0415

    run_trigger("on-scene-written", ConfigKind.SCENE, event)


@functions_framework.cloud_event
def on_feature_flags_written(event: CloudEvent) -> None:
    """Firestore `feature_flags/{docId}` written."""
    from functions.config.entry import run_trigger  # noqa: PLC0415
    from functions.config.ports import ConfigKind  # noqa: PLC0415

    run_trigger("on-feature-flags-written", ConfigKind.FEATURE_FLAGS, event)


@functions_framework.cloud_event
def on_usage_event(event: CloudEvent) -> None:
    """Pub/Sub `usage-events` message published: record it once (the fold counts it)."""
    from functions.usage import entry  # noqa: PLC0415 - each function loads only its own package

    entry.handle_cloud_event(event)


@functions_framework.cloud_event
def reset_monthly_quotas(event: CloudEvent) -> None:
    """Pub/Sub `quota-reset-schedule` message published (Cloud Scheduler, monthly)."""
    from functions.reset.entry import handle_schedule_event  # noqa: PLC0415
    from functions.table import by_name  # noqa: PLC0415

    handle_schedule_event(event, by_name("reset-monthly-quotas").timeout_seconds)


@functions_framework.cloud_event
def fold_usage_counters(event: CloudEvent) -> None:
    """Pub/Sub `usage-fold-schedule` message published (Cloud Scheduler, every minute)."""
    from functions.fold.entry import handle_cloud_event  # noqa: PLC0415
    from functions.table import by_name  # noqa: PLC0415

    handle_cloud_event(event, by_name("fold-usage-counters").timeout_seconds)


@functions_framework.cloud_event
def record_dead_letters(event: CloudEvent) -> None:
    """Pub/Sub dead-letter topics: store each message Pub/Sub gave up on (usage_rejections)."""
    from functions.deadletter.entry import handle_cloud_event  # noqa: PLC0415

    handle_cloud_event(event)
