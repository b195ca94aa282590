"""The three config-write entry points' body: decode -> `handle_config_write` -> one log line."""

from __future__ import annotations

import time
from typing import Any, Final

from functions.config import adapters
from functions.config.ports import ConfigKind, InvalidationPublisher, Outcome, Stamper
from functions.config.service import customer_id_of, handle_config_write
from functions.edge.documents import decode_document_event
from shared import logs
from shared.errors import PermanentError

REFUSED: Final = "refused-permanent-error"
"""The log's decision for an event no retry can help (a body that is no DocumentEventData,
a request Firestore or Pub/Sub refuses): acknowledged, logged at ERROR."""

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
        outcome = handle_config_write(kind, event, stamper, publisher)
    except PermanentError as exc:
        # A retry cannot help: answering 500 would only have the platform redeliver it forever.
        event_id = cloud_event.get("id") if hasattr(cloud_event, "get") else None
        logs.error(
            f"{function}: event {event_id} acknowledged, not applied: {exc}",
            function=function,
            decision=REFUSED,
            event_id=event_id,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return None
    logs.info(
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
