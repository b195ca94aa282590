"""The fold's quota alerts after its commits: publish each claimed alert and mark it; finish
the markers an earlier run left pending (its publish failed, or its run died)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from functions.fold.ports import AlertPublisher, FoldCounts, FoldRepository, Marker
from shared import logs, quota
from shared.firestore_values import plain_value

PENDING_LIMIT: Final = 200
"""Pending alert markers one fold finishes at most (more wait for the next)."""


def publish_alert(
    repo: FoldRepository,
    publisher: AlertPublisher,
    payload: Mapping[str, Any],
    counts: FoldCounts,
) -> bool:
    """Publish a claimed alert and mark it published; on failure release the claim so the next
    fold takes it at once (the marker stays `pending`)."""
    alert = str(payload["alert_id"])
    body = json.dumps(dict(payload), sort_keys=True, default=str).encode()
    attributes = {
        "alert_id": alert,
        "customer_id": str(payload["customer_id"]),
        "threshold_percent": str(payload["threshold_percent"]),
        "month": str(payload["month"]),
    }
    try:
        message_id = publisher.publish_alert(body, attributes)
    except Exception as exc:
        counts.add("alerts_failed")
        logs.error(
            f"quota alert {alert} not published, the next fold retries: {exc}",
            document=alert,
            customer=payload["customer_id"],
        )
        try:
            repo.update_marker(
                alert, {"claimed_by": None, "claimed_at": None, "last_error": str(exc)[:300]}
            )
        except Exception as release:  # the lease frees it later anyway
            logs.warning(f"releasing quota alert {alert} failed: {release}", document=alert)
        return False
    repo.update_marker(alert, {"state": "published", "alert_message_id": message_id})
    counts.add("alerts_published")
    logs.warning(
        f"customer {payload['customer_id']} reached {payload['threshold_percent']} % of its "
        f"monthly scene quota ({payload['scenes_generated']}/{payload['monthly_scene_quota']})",
        customer=payload["customer_id"],
        document=alert,
        alert_message_id=message_id,
    )
    return True


def finish_pending_alerts(
    repo: FoldRepository,
    publisher: AlertPublisher,
    *,
    now: datetime,
    run_id: str,
    lease: timedelta,
    counts: FoldCounts,
) -> None:
    """Publish every marker left `pending` whose claim is released or older than the lease
    (its claimer died); one taker each."""
    for marker in repo.pending_markers(PENDING_LIMIT):
        if not claimable(marker, now, run_id, lease):
            continue
        if not repo.claim_marker(marker, {"claimed_by": run_id, "claimed_at": now}):
            continue  # another fold took it first
        counts.add("alerts_taken_over")
        payload = {k: plain_value(marker.data.get(k)) for k in quota.ALERT_FIELDS}
        payload["alert_id"] = marker.alert_id
        publish_alert(repo, publisher, payload, counts)


def claimable(marker: Marker, now: datetime, run_id: str, lease: timedelta) -> bool:
    """Whether this run may take a pending marker over (pure)."""
    if marker.data.get("state") != "pending" or marker.data.get("claimed_by") == run_id:
        return False
    claimed_at = plain_value(marker.data.get("claimed_at"))
    return not isinstance(claimed_at, datetime) or now - claimed_at >= lease
