"""The three config-write entry points' body: decode -> `handle_config_write` -> one log line."""

from __future__ import annotations

import time
from typing import Any, Final

from functions.config import adapters
from functions.config.ports import ConfigKind, Decision, InvalidationPublisher, Outcome, Stamper
from functions.config.service import customer_id_of, handle_config_write
from functions.edge.documents import decode_document_event
from shared import logs
from shared.errors import PermanentError, classify

REFUSED: Final = "refused-permanent-error"
"""The log's decision for an event no retry can help (a body that is no DocumentEventData,
a wrong `ce-type`, a request Pub/Sub refuses): acknowledged, logged at ERROR."""
MAX_LOGGED_REASON: Final = 2000
"""Characters of the refusal's reason in the ERROR line."""
QUIET_DECISIONS: Final = frozenset(
    {
        Decision.IGNORED_EMPTY,
        Decision.IGNORED_ECHO,
        Decision.IGNORED_NO_CHANGE,
        Decision.IGNORED_BOOKKEEPING,
    }
)
"""Decisions that change nothing: logged at DEBUG (the local suite's live log still shows them)."""

_STAMPER: Stamper | None = None
"""Set by tests to a fake; None: the Firestore stamper."""
_PUBLISHER: InvalidationPublisher | None = None
"""Set by tests to a fake; None: the Pub/Sub publisher."""


def run_trigger(function: str, kind: ConfigKind, cloud_event: Any) -> Outcome | None:
    """What each of the three entry points does (so they stay one line); None when refused."""
    started = time.perf_counter()
    try:
        event = decode_document_event(cloud_event)
        stamper = _STAMPER or adapters.STAMPER.get()
        publisher = _PUBLISHER or adapters.PUBLISHER.get()
        collection = _watched_collection(function)
        outcome = handle_config_write(kind, event, stamper, publisher, collection)
    except Exception as exc:
        # The one classification: only what a retry can fix leaves as TransientError (the
        # platform redelivers); a permanent error answered 500 would be redelivered forever.
        classified = classify(exc, function)
        if not isinstance(classified, PermanentError):
            if classified is exc:
                raise
            raise classified from exc
        get = getattr(cloud_event, "get", None)
        event_id = get("id") if get is not None else None
        # The body may be unreadable: the document comes from the event's own attributes.
        subject = str((get("document") or get("subject") or "") if get is not None else "")
        document = subject.removeprefix("documents/") or None
        reason = str(classified)
        if len(reason) > MAX_LOGGED_REASON:
            reason = reason[: MAX_LOGGED_REASON - 3] + "..."
        logs.error(
            f"{function}: event {event_id} ({document or 'no document named'}) acknowledged, "
            f"not applied: {reason}",
            function=function,
            decision=REFUSED,
            event_id=event_id,
            document=document,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return None
    # "Nothing to do" (an echo of its own stamp, a fold's counter write, no change) is DEBUG:
    # one such line per fold write of a customer cost more than the write's own share of logs.
    log = logs.debug if outcome.decision in QUIET_DECISIONS else logs.info
    log(
        f"{function} {event.document}: {outcome.decision.value}",
        function=function,
        decision=outcome.decision.value,
        event_id=event.event_id,
        collection=event.collection,
        document=event.document,
        customer=customer_id_of(kind, event) or None,
        change=event.kind.value if event.kind else None,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return outcome


def _watched_collection(function: str) -> str | None:
    """The configured name of the collection the trigger `function` watches (its table entry)."""
    from functions.table import by_name  # noqa: PLC0415 -- keep import cheap
    from shared.settings import get_settings  # noqa: PLC0415

    setting = by_name(function).collection_setting
    return str(getattr(get_settings(), setting)) if setting else None
