"""The library behind `blueprint usage replay`: deliver stored usage messages again.

A dead letter (kind `dead_letter`) or a chosen rejection (e.g. `unknown_customer` once the
customer exists) is rebuilt as the Pub/Sub `Message` it was (stored payload, attributes,
publish time, message id) and handed to the SAME usage service the function runs
(`functions.usage.entry.build_service`). Exactly once comes from the service: the record id is
`shared.ids.usage_record_id` of the event, so a replay of an event recorded before (replayed
twice, or recorded and then dead-lettered) answers `duplicate` and counts nothing.

Each replayed document is marked (`replayed_at` server time, `replay_outcome`, the new record
id or the new rejection) and skipped by later runs unless `again`. A replay rejected again
stores its rejection as the service always does, under `message_doc_id(message id)`: for a
rejection that is its own document (nothing new is written), for a dead letter (whose original
message id Pub/Sub does not carry: the dead letter's document id stands in) one document of
the real kind, the same one on every later replay (docs/replay.md).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from functions.edge.pubsub import Message
from functions.usage.ports import Outcome as ServiceOutcome
from ops.paging import MAX_PAGE_SIZE, ListingError
from shared import queries
from shared.ids import message_doc_id
from shared.settings import Settings, get_settings
from shared.times import to_utc

if TYPE_CHECKING:
    from functions.usage.service import UsageService

DEAD_LETTER: Final = "dead_letter"
KINDS: Final = (
    "dead_letter",
    "unknown_customer",
    "invalid_event",
    "not_json",
    "unknown_schema_version",
    "oversized",
    "future_timestamp",
    "unstorable",
    "conflicting_duplicate",
    "wrong_event_type",
    "bad_envelope",
)
"""Every `kind` a `usage_rejections` document can have (docs/usage.md, docs/dead-letters.md)."""
DEFAULT_PAGE_SIZE: Final = 100
_DELIVERY_FIELD: Final = "(delivery)"
"""The one error of a clean dead letter; any other means the envelope itself was unusable."""


class ReplayError(ListingError):
    """A replay cannot be made as asked (unknown kind, bad customer id, time or page size)."""


class Outcome(enum.StrEnum):
    """What replaying one stored message did."""

    RECORDED = "recorded"
    STILL_REJECTED = "still_rejected"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    WOULD_REPLAY = "would_replay"
    """Dry run: it would be delivered again."""


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One stored message and what its replay did (or, dry, would do)."""

    doc_id: str
    outcome: Outcome
    old_kind: str | None
    customer_id: str | None = None
    event_id: str | None = None
    record_id: str | None = None
    """The `usage_tracking` id (recorded, duplicate)."""
    kind: str | None = None
    """The kind it is rejected with now (still_rejected)."""
    reason: str | None = None
    """Why it is still rejected, or why it was skipped."""
    rejection_id: str | None = None
    """Where the new rejection is stored (still_rejected)."""

    def as_json(self) -> dict[str, Any]:
        """The item as a JSON object (every key always present)."""
        return {
            "id": self.doc_id,
            "outcome": self.outcome.value,
            "old_kind": self.old_kind,
            "customer_id": self.customer_id,
            "event_id": self.event_id,
            "record_id": self.record_id,
            "kind": self.kind,
            "reason": self.reason,
            "rejection_id": self.rejection_id,
        }


@dataclass(slots=True)
class ReplayCounts:
    """How many stored messages ended in each outcome."""

    by_outcome: dict[str, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    def add(self, item: ReplayItem) -> ReplayItem:
        """Count one item; return it."""
        self.by_outcome[item.outcome] += 1
        return item

    def as_json(self) -> dict[str, int]:
        """Outcome -> count, every outcome present."""
        return {str(k): v for k, v in self.by_outcome.items()}


def check_kind(kind: str) -> str:
    """`kind` if it is one a rejection can have; ReplayError naming the known ones if not."""
    if kind not in KINDS:
        raise ReplayError(f"kind={kind!r}: expected one of {', '.join(KINDS)}")
    return kind


def _rfc3339(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        return None
    exact = getattr(value, "rfc3339", None)  # DatetimeWithNanoseconds keeps the nanoseconds
    if callable(exact):
        return str(exact())
    utc = to_utc(value)
    return None if utc is None else utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _unusable(data: Mapping[str, Any]) -> str | None:
    """Why the stored payload is not the message body, or None when it is."""
    kind = data.get("kind")
    if kind == "bad_envelope":
        return "bad_envelope: the stored payload is the unusable envelope, not a message body"
    if kind == DEAD_LETTER and any(
        isinstance(e, Mapping) and e.get("field") != _DELIVERY_FIELD
        for e in data.get("errors") or ()
    ):
        return "dead letter of an unusable envelope: the stored payload is not a message body"
    if not isinstance(data.get("payload"), str):
        return "no payload stored (a reduced rejection document)"
    if data.get("payload_truncated") is True:
        return f"payload truncated: the message had {data.get('payload_bytes')} bytes"
    return None


def _body(payload: str, encoding: Any) -> bytes | str:
    """The message's bytes from the stored text, or why not."""
    if encoding == "utf-8":
        return payload.encode("utf-8")
    if encoding != "base64":
        return f"payload_encoding={encoding!r}: expected utf-8 or base64"
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return f"payload_encoding base64 but the payload is not base64: {payload[:40]!r}"


def message_of(doc_id: str, data: Mapping[str, Any]) -> Message | str:
    """The Pub/Sub message a stored rejection was, or why it cannot be rebuilt (a sentence).

    The message id is the stored one; a dead letter has none (Pub/Sub republishes it under a
    new id): its document id, the original message's identity, stands in.
    """
    why = _unusable(data)
    if why is not None:
        return why
    body = _body(str(data["payload"]), data.get("payload_encoding"))
    if isinstance(body, str):
        return body
    attributes = data.get("attributes")
    stored_id = data.get("message_id")
    return Message(
        message_id=stored_id if isinstance(stored_id, str) and stored_id else doc_id,
        data=body,
        attributes={str(k): str(v) for k, v in attributes.items()}
        if isinstance(attributes, Mapping)
        else {},
        publish_time_text=_rfc3339(data.get("publish_time")),
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _item(doc_id: str, data: Mapping[str, Any], outcome: Outcome) -> ReplayItem:
    return ReplayItem(
        doc_id,
        outcome,
        _str(data.get("kind")),
        _str(data.get("customer_id")),
        _str(data.get("event_id")),
    )


def _skipped(doc_id: str, data: Mapping[str, Any], reason: str) -> ReplayItem:
    return dataclasses.replace(_item(doc_id, data, Outcome.SKIPPED), reason=reason)


def _deliver(
    service: UsageService, doc_id: str, data: Mapping[str, Any], message: Message, now: datetime
) -> ReplayItem:
    """One delivery through the usage service, as the function would make it."""
    result = service.handle(message, now)
    if result.outcome is ServiceOutcome.RECORDED:
        item = _item(doc_id, data, Outcome.RECORDED)
        return dataclasses.replace(item, record_id=result.record_id)
    if result.outcome is ServiceOutcome.DUPLICATE:
        item = _item(doc_id, data, Outcome.DUPLICATE)
        return dataclasses.replace(item, record_id=result.record_id)
    rejection = result.rejection
    return dataclasses.replace(
        _item(doc_id, data, Outcome.STILL_REJECTED),
        kind=rejection.kind if rejection else None,
        reason=rejection.reason if rejection else None,
        rejection_id=message_doc_id(message.message_id),
    )


def _mark(ref: Any, item: ReplayItem, timeout: float) -> None:
    """Write the replay's outcome on the replayed document (every replay field, so a stale
    one from an earlier replay never stays)."""
    from google.cloud.firestore_v1 import SERVER_TIMESTAMP, Increment  # noqa: PLC0415

    ref.update(
        {
            "replayed_at": SERVER_TIMESTAMP,
            "replay_outcome": item.outcome.value,
            "replay_record_id": item.record_id,
            "replay_kind": item.kind,
            "replay_reason": item.reason,
            "replay_rejection_id": item.rejection_id,
            "replay_count": Increment(1),
        },
        timeout=timeout,
    )


def _check(
    kind: str,
    customer_id: str | None,
    since: datetime | None,
    before: datetime | None,
    page_size: int,
) -> None:
    """ReplayError when a replay cannot be made as asked."""
    check_kind(kind)
    if customer_id is not None and (not customer_id or "/" in customer_id):
        raise ReplayError(f"customer_id={customer_id!r}: expected a document id")
    if since is not None and to_utc(since) is None:
        raise ReplayError(f"since={since!r}: expected a timezone-aware time")
    if before is not None and to_utc(before) is None:
        raise ReplayError(f"before={before!r}: expected a timezone-aware time")
    if since is not None and before is not None and before <= since:
        raise ReplayError(f"before={before!r}: expected a time after since={since!r}")
    if isinstance(page_size, bool) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ReplayError(f"page_size={page_size!r}: expected 1 to {MAX_PAGE_SIZE}")


def replay(
    client: Any,
    *,
    kind: str = DEAD_LETTER,
    customer_id: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    dry_run: bool = False,
    again: bool = False,
    settings: Settings | None = None,
    service: UsageService | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[ReplayItem]:
    """Replay the `usage_rejections` of `kind` (and customer, `since <= rejected_at < before`,
    either bound optional), oldest first, a page at a time; yields one item per document as it
    is done.

    Arguments are checked before anything is read (ReplayError). `dry_run` reads only: items
    are `would_replay` or `skipped`. Documents marked by an earlier replay are skipped unless
    `again`. A Firestore failure raises (classified by the service: TransientError, or
    PermanentError); what was done before it stays done and marked.
    """
    _check(kind, customer_id, since, before, page_size)
    settings = settings or get_settings()
    if service is None and not dry_run:
        from functions.usage.entry import build_service  # noqa: PLC0415 - heavy, not for dry runs

        service = build_service(settings, client)
    timeout = settings.firestore_timeout_seconds
    after: list[Any] | None = None
    while True:
        query = queries.replay_page(
            client,
            kind,
            customer_id,
            since,
            before=before,
            after=after,
            limit=page_size,
            settings=settings,
        )
        snaps = list(query.stream(timeout=timeout))
        for snap in snaps:
            yield _one(snap, service, dry_run=dry_run, again=again, timeout=timeout, now=clock())
        if len(snaps) < page_size:
            return
        last = snaps[-1]
        after = [last.get("rejected_at"), last.id]


def _one(
    snap: Any,
    service: UsageService | None,
    *,
    dry_run: bool,
    again: bool,
    timeout: float,
    now: datetime,
) -> ReplayItem:
    data: Mapping[str, Any] = snap.to_dict() or {}
    if data.get("replayed_at") is not None and not again:
        outcome = data.get("replay_outcome")
        return _skipped(snap.id, data, f"replayed before ({outcome}); --again replays it")
    message = message_of(snap.id, data)
    if isinstance(message, str):
        return _skipped(snap.id, data, message)
    if dry_run or service is None:
        return _item(snap.id, data, Outcome.WOULD_REPLAY)
    item = _deliver(service, snap.id, data, message, now)
    _mark(snap.reference, item, timeout)
    return item


__all__ = [
    "DEAD_LETTER",
    "DEFAULT_PAGE_SIZE",
    "KINDS",
    "Outcome",
    "ReplayCounts",
    "ReplayError",
    "ReplayItem",
    "check_kind",
    "message_of",
    "replay",
]
