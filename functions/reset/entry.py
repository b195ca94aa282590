"""`reset_monthly_quotas`: decode the schedule message -> `run_reset` -> ask for redelivery."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Final

from functions.edge.pubsub import Message, decode_message
from functions.reset.adapters import default_repository
from functions.reset.plan import request_from_message
from functions.reset.ports import (
    Rejection,
    RejectionRecorder,
    ResetRequest,
    ResetSummary,
    ScheduleMessageError,
    ScheduleRepository,
)
from functions.reset.service import function_deadline, raise_if_incomplete, run_reset
from shared import logs
from shared.errors import PermanentError, classify
from shared.ids import message_doc_id

MAX_TEXT: Final = 500
"""Characters kept of each text of a rejection record."""


def utc_now() -> datetime:
    """The clock (a test replaces it: a publish time is judged against it)."""
    return datetime.now(UTC)


def decode_schedule_event(event: Any, now: datetime | None = None) -> ResetRequest:
    """Period of a `quota-reset-schedule` delivery: `{"period": "YYYY-MM"}` body, else publish time.

    Raises ScheduleMessageError for a message that names no usable period.
    """
    return request_from_message(decode_message(event), now)


def handle_schedule_event(
    event: Any, timeout_seconds: float, repository: ScheduleRepository | None = None
) -> ResetSummary | None:
    """The whole of `reset_monthly_quotas`: decode, run until the deadline, ask for redelivery.

    A message that names no usable period is recorded in `quota_resets/_rejected/messages`,
    logged at ERROR and acknowledged. Only TransientError leaves (the platform redelivers):
    Firestore down, the run incomplete, anything unexpected.
    """
    deadline = function_deadline(timeout_seconds)
    now = utc_now()
    message = decode_message(event)
    request: ResetRequest | None = None
    try:
        try:
            request = request_from_message(message, now)
        except ScheduleMessageError as exc:
            reject(repository or default_repository(), message, str(exc))
            return None  # permanent: acknowledged, never retried
        summary = run_reset(
            repository or default_repository(),
            request.period,
            now,
            deadline=deadline,
            run_id=request.message_id or message.message_id,
            as_of=request.publish_time or now,
        )
        raise_if_incomplete(summary)
    except Exception as exc:
        classified = classify(exc, "quota reset")
        if not isinstance(classified, PermanentError):
            if classified is exc:
                raise
            raise classified from exc
        # Firestore refused a request (permission, bad argument): redelivery cannot fix it. The
        # audit keeps its cursor: a manual run (`quota reset --yes`) continues from there.
        month = request.period if request is not None else "YYYY-MM"
        logs.error(
            f"quota reset stopped, acknowledged: {classified}; fix the cause, then "
            f"run `blueprint quota reset --yes --month {month}` to continue",
            event_id=message.message_id,
            period=month if month != "YYYY-MM" else None,
        )
        return None
    return summary


def reject(recorder: RejectionRecorder, message: Message, reason: str) -> Rejection:
    """Record a refused schedule message where a person finds it, and log it once at ERROR."""
    rejection = rejection_of(message, reason)
    first = recorder.record_rejection(rejection)
    if first:  # a redelivery of a message already recorded was logged the first time
        logs.error(
            f"quota reset refused, acknowledged: {reason}; recorded in "
            f"quota_resets/_rejected/messages/{rejection.id}",
            decision="refused-schedule-message",
            event_id=message.message_id,
            rejection=rejection.id,
        )
    return rejection


def rejection_of(message: Message, reason: str) -> Rejection:
    """The record of a refused message: keyed by its message id, else a hash of its bytes."""
    known = message.message_id if message.message_id != "unknown" else None
    key = known or "sha256-" + hashlib.sha256(message.data).hexdigest()[:32]
    return Rejection(
        id=message_doc_id(key),
        reason=reason[:MAX_TEXT],
        message_id=known,
        event_id=known,
        event_type=message.event_type[:MAX_TEXT],
        publish_time=(message.publish_time_text or "")[:MAX_TEXT] or None,
        data_preview=message.data[:MAX_TEXT].decode("utf-8", errors="replace"),
        data_bytes=len(message.data),
    )
