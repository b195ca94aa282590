"""Pure decisions of the monthly reset: the period a schedule message asks for, one customer's
reset (a write, a skip or an issue)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError

from functions.edge.pubsub import PUBSUB_PUBLISHED, Message
from functions.reset.ports import (
    CustomerDoc,
    ResetIssue,
    ResetRequest,
    ResetWrite,
    ScheduleMessageError,
)
from shared import quota
from shared.errors import FieldError
from shared.firestore_values import plain_value
from shared.models import Customer, document_errors, field_errors
from shared.times import MONTH_RE, month_of
from shared.types import Month, UtcDatetime

COUNT_NAMES = ("reset", "skipped", "unlimited", "invalid", "kept", "errors", "retried")
"""The per-page counts, as the audit document and the summary name them."""


PUBLISH_TIME_WINDOW: Final = timedelta(days=32)
"""How far a publish time may lie from the clock: Pub/Sub keeps a message at most 31 days, so
an older (or future) one was not set by Pub/Sub (e.g. year 1) and names no month to reset."""


def request_from_message(message: Message, now: datetime | None = None) -> ResetRequest:
    """The reset a schedule message asks for: `{"period": "YYYY-MM"}` body, else publish time.

    Never from the clock at delivery: a delayed or repeated delivery resets the month it was
    scheduled for. Raises ScheduleMessageError for a message that names no usable period: an
    unusable envelope, another event type, a body that is not a JSON object, a bad period, a
    publish time outside `now` +- PUBLISH_TIME_WINDOW (when `now` is given).
    """
    publish_time = _publish_time(message, now)
    body = _body(message)
    explicit = body is not None and body.get("period") is not None
    if body is not None and explicit:
        period = body["period"]
        if not isinstance(period, str) or not MONTH_RE.match(period):
            raise ScheduleMessageError(f"period={_preview(period)}: expected a month as YYYY-MM")
        if publish_time is not None and period > month_of(publish_time):
            raise ScheduleMessageError(
                f"period={period!r}: expected a month not after the publish time's "
                f"({month_of(publish_time)}); a future month cannot be reset"
            )
    elif publish_time is not None:
        period = month_of(publish_time)
    else:
        raise ScheduleMessageError(
            "the message has neither a publish time nor a body with a period (YYYY-MM)"
        )
    # The current month is the later of the clock and the publish time (already checked to
    # lie within PUBLISH_TIME_WINDOW of it): an instance clock a moment behind the scheduler
    # at midnight must not refuse the month's one schedule message.
    latest = max(now, publish_time) if now is not None and publish_time is not None else now
    if latest is not None and period > month_of(latest):
        raise ScheduleMessageError(
            f"period={period!r}: expected a month not after the current one ({month_of(latest)})"
        )
    message_id = message.message_id if message.message_id != "unknown" else None
    return ResetRequest(period, message_id, publish_time, explicit)


_NOT_JSON: Final = object()


def _publish_time(message: Message, now: datetime | None) -> datetime | None:
    """The usable publish time (else the event time); refuses an unusable envelope, another
    event type and a publish time Pub/Sub cannot have set."""
    if message.problem is not None:
        raise ScheduleMessageError(
            f"unusable schedule message: {message.problem}; expected a MessagePublishedData "
            "body with a message"
        )
    if message.event_type != PUBSUB_PUBLISHED:
        raise ScheduleMessageError(
            f"ce-type={message.event_type[:120]!r}: expected {PUBSUB_PUBLISHED}"
        )
    if message.publish_time_text and message.publish_time is None:
        raise ScheduleMessageError(
            f"publishTime={_preview(message.publish_time_text)}: expected an RFC 3339 time "
            "in years 0001-9999 (UTC)"
        )
    publish_time = message.publish_time or message.event_time
    if publish_time is not None and now is not None and _far(publish_time, now):
        raise ScheduleMessageError(
            f"publishTime={publish_time.isoformat()!r}: expected a time within "
            f"{PUBLISH_TIME_WINDOW.days} days of now ({now.isoformat()})"
        )
    return publish_time


def _body(message: Message) -> Mapping[str, Any] | None:
    """The message data as a JSON object (None when empty); refuses anything else."""
    if not message.data:
        return None
    try:
        body = json.loads(message.data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        body = _NOT_JSON
    if not isinstance(body, Mapping):
        # The Scheduler sends {"job": ...}; anything else was not meant for this topic, and
        # guessing a month from it would reset customers on a stray message.
        raise ScheduleMessageError(
            f"message data={_preview(message.data)}: expected a JSON object "
            '({"job": "monthly-quota-reset"} or {"period": "YYYY-MM"})'
        )
    return body


def _far(when: datetime, now: datetime) -> bool:
    try:
        return abs(now - when) > PUBLISH_TIME_WINDOW
    except OverflowError:
        return True


def _preview(value: Any, limit: int = 80) -> str:
    """A short repr for a refusal message (never the whole of a large body)."""
    if isinstance(value, bytes):
        value = value[:limit]
    try:
        text = repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} nested too deeply>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _CounterFields(BaseModel):
    """The fields the reset decides on; others are checked by the full model, not needed here."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    quota_period: Month | None = None
    quota_reset_at: UtcDatetime | None = None


@dataclass(slots=True)
class Page:
    """What one page of customers came to: its writes, counts and issues."""

    writes: list[ResetWrite] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_NAMES, 0))
    issues: list[ResetIssue] = field(default_factory=list)


def _errors_text(errors: list[FieldError]) -> str:
    return "; ".join(str(e) for e in errors)


def plan_customer(
    doc: CustomerDoc,
    period: str,
    page: Page,
    *,
    first_look: bool,
    as_of: datetime | None = None,
    keep: bool = False,
    month_count: int = 0,
) -> ResetWrite | None:
    """Decide one customer: a write, or None (skipped or error, counted in `page`).

    The new value is the period's count so far: `month_count`, the scenes the fold's month
    summary holds for the customer (its records plus a seed from before the suite). A document
    from before the suite that already counted the period keeps its own count when that is
    larger (`shared.quota.plan_reset`, counted as `kept`).

    `first_look` counts what the summary reports about the document (invalid fields, no
    limit, a kept count) once, not again on each retry of its write.
    """
    data = plain_value(doc.data)
    try:
        counters = _CounterFields.model_validate(data)
    except ValidationError as exc:
        page.counts["errors"] += 1
        page.issues.append(ResetIssue(doc.id, "error", _errors_text(field_errors(exc))))
        return None
    counter = data.get(quota.THIS_MONTH_FIELD)
    customer = Customer.model_construct(
        **counters.model_dump(exclude_none=True),
        scenes_generated_this_month=counter if type(counter) is int and counter >= 0 else None,
    )
    plan = quota.plan_reset(
        customer,
        period,
        month_count=month_count,
        last_write=doc.update_time if isinstance(doc.update_time, datetime) else None,
        as_of=as_of,
        keep=keep,
    )
    if plan is None:
        page.counts["skipped"] += 1
        return None
    if first_look:
        problems = document_errors(Customer, data)
        if problems:
            page.counts["invalid"] += 1
            page.issues.append(ResetIssue(doc.id, "invalid", _errors_text(problems)))
        limit = data.get("monthly_scene_quota")
        if limit is None or (type(limit) is int and quota.is_unlimited(limit)):
            page.counts["unlimited"] += 1
        if plan.kept:
            page.counts["kept"] += 1
    return ResetWrite(doc.id, plan.value, period, doc.update_time, kept=plan.kept)
