"""Entry of `fold_usage_counters`: decode the schedule tick, run one fold, log what it did."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from functions.edge.pubsub import decode_message
from functions.fold.adapters import FirestoreFoldRepository, PubSubAlertPublisher
from functions.fold.service import FoldConfig, run_fold
from shared import logs
from shared.errors import PermanentError
from shared.firestore_values import server_timestamp
from shared.settings import get_settings

DEADLINE_MARGIN_SECONDS: Final = 20.0
"""No customer is started this close to the function's timeout (its commit must finish)."""


@functools.cache
def _wiring() -> tuple[FirestoreFoldRepository, PubSubAlertPublisher, FoldConfig]:
    settings = get_settings()
    config = FoldConfig(
        buckets=settings.usage_fold_buckets,
        lag=timedelta(seconds=settings.usage_fold_lag_seconds),
        page_size=settings.usage_fold_page_size,
        max_records=settings.usage_fold_max_records,
        workers=settings.usage_fold_workers,
        alert_lease=timedelta(seconds=settings.usage_fold_alert_lease_seconds),
    )
    return FirestoreFoldRepository(settings), PubSubAlertPublisher(settings), config


def handle_cloud_event(event: Any, timeout_seconds: float) -> None:
    """One schedule tick -> one fold. Any message is a tick: its body is not needed."""
    message = decode_message(event)
    if message.problem is not None:
        logs.warning(
            f"fold schedule message unreadable ({message.problem}); folding all the same",
            message_id=message.message_id,
        )
    repo, publisher, config = _wiring()
    started = time.monotonic()
    try:
        counts = run_fold(
            repo,
            publisher,
            now=datetime.now(UTC),
            run_id=f"fold-{message.message_id}",
            config=config,
            server_time=server_timestamp(),
            deadline=started + max(1.0, timeout_seconds - DEADLINE_MARGIN_SECONDS),
        )
    except PermanentError as exc:  # a retry cannot fix it: acknowledged, said to a person
        logs.error(
            f"fold refused for good; the next tick tries again: {exc}",
            decision="fold-refused",
            message_id=message.message_id,
        )
        return
    logs.info(
        "usage counters folded",
        decision="folded" if not counts.failed_customers else "folded-partly",
        message_id=message.message_id,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        **counts.log_fields(),
    )
