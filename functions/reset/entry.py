"""`reset_monthly_quotas`: decode the schedule message -> `run_reset` -> ask for redelivery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from functions.edge.pubsub import decode_message
from functions.reset.adapters import default_repository
from functions.reset.plan import request_from_message
from functions.reset.ports import ResetRequest, ResetSummary, ScheduleMessageError
from functions.reset.service import function_deadline, raise_if_incomplete, run_reset
from shared import logs
from shared.errors import PermanentError


def decode_schedule_event(event: Any) -> ResetRequest:
    """Period of a `quota-reset-schedule` delivery: `{"period": "YYYY-MM"}` body, else publish time.

    Raises ScheduleMessageError for a message that names no usable period.
    """
    return request_from_message(decode_message(event))


def handle_schedule_event(event: Any, timeout_seconds: float) -> ResetSummary | None:
    """The whole of `reset_monthly_quotas`: decode, run until the deadline, ask for redelivery."""
    deadline = function_deadline(timeout_seconds)
    try:
        request = decode_schedule_event(event)
    except ScheduleMessageError as exc:
        logs.error(f"quota reset refused: {exc}", event_id=event.get("id"))
        return None  # permanent: acknowledged, never retried
    now = datetime.now(UTC)
    try:
        summary = run_reset(
            default_repository(),
            request.period,
            now,
            deadline=deadline,
            run_id=request.message_id or event.get("id"),
            as_of=request.publish_time or now,
        )
    except PermanentError as exc:
        # Firestore refused a request (permission, bad argument): redelivery cannot fix it. The
        # audit keeps its cursor: a manual run (`quota reset --yes`) continues from there.
        logs.error(
            f"quota reset {request.period} stopped, acknowledged: {exc}; fix the cause, then "
            f"run `blueprint quota reset --yes --month {request.period}` to continue",
            event_id=event.get("id"),
            period=request.period,
        )
        return None
    raise_if_incomplete(summary)
    return summary
