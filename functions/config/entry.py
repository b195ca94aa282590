"""The three config-write entry points' body: decode -> `handle_config_write` -> one log line."""

from __future__ import annotations

import time
from typing import Any

from functions.config import adapters
from functions.config.ports import ConfigKind, InvalidationPublisher, Outcome, Stamper
from functions.config.service import customer_id_of, handle_config_write
from functions.edge.documents import decode_document_event
from shared import logs

_STAMPER: Stamper | None = None
"""Set by tests to a fake; None: the Firestore stamper."""
_PUBLISHER: InvalidationPublisher | None = None
"""Set by tests to a fake; None: the Pub/Sub publisher."""


def run_trigger(function: str, kind: ConfigKind, cloud_event: Any) -> Outcome:
    """What each of the three entry points does (so they stay one line)."""
    started = time.perf_counter()
    event = decode_document_event(cloud_event)
    stamper = _STAMPER or adapters.STAMPER.get()
    publisher = _PUBLISHER or adapters.PUBLISHER.get()
    outcome = handle_config_write(kind, event, stamper, publisher)
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
