"""One fold: find what changed per bucket, fold each changed customer once, publish alerts.

Steps (docs/counters.md):
1. finish alert markers an earlier run left pending (publish failed, or its run died);
2. per bucket b (in parallel): scan the shards with `fold_bucket == b` and `updated_at >
   watermark_b - overlap`, oldest first, in pages, up to a cap;
3. group the changed shards by customer; per customer (in parallel): read the customer and its
   summaries in one round trip, plan (`functions.fold.planner`), ONE atomic guarded commit
   (summaries + customer fields + new alert markers), re-read and re-plan on a conflict; then
   publish the new alerts (marker, publish, mark published);
4. move each bucket's watermark (once per fold): to the newest shard seen, or, where a customer
   failed, to just before its oldest shard, so the next fold retries it.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from functions.fold import planner
from functions.fold.ports import (
    AlertPublisher,
    CommitConflictError,
    FoldCounts,
    FoldRepository,
    Marker,
    Shard,
    Watermark,
)
from shared import logs
from shared.errors import TransientError, is_permanent
from shared.firestore_values import plain_value
from shared.times import month_of

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_ATTEMPTS: Final = 8
"""Guarded commits of one customer per fold before it is left for the next fold."""
PENDING_LIMIT: Final = 200
"""Pending alert markers one fold finishes at most (more wait for the next)."""
_TICK: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class FoldConfig:
    """Knobs of a fold (from the settings)."""

    buckets: int = 16
    overlap: timedelta = timedelta(seconds=5)
    page_size: int = 500
    max_shards: int = 100_000
    workers: int = 8
    alert_lease: timedelta = timedelta(seconds=120)


@dataclass(slots=True)
class _Bucket:
    watermark: Watermark
    newest: datetime | None = None
    capped: bool = False


def run_fold(
    repo: FoldRepository,
    publisher: AlertPublisher,
    *,
    now: datetime,
    run_id: str,
    config: FoldConfig = FoldConfig(),
    server_time: Any = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FoldCounts:
    """Fold every customer-month that changed since the watermarks (see module doc).

    `deadline` (a `clock()` value): no new customer is started after it; what is left keeps
    the watermark back, so the next fold does it.
    """
    counts = FoldCounts(buckets=config.buckets)
    finish_pending_alerts(repo, publisher, now=now, run_id=run_id, config=config, counts=counts)
    marks = repo.read_watermarks(range(config.buckets))
    buckets = {w.bucket: _Bucket(w) for w in marks}
    per_bucket_cap = max(1, config.max_shards // max(1, config.buckets))

    def scan(bucket: _Bucket) -> list[Shard]:
        since = (bucket.watermark.value or EPOCH) - config.overlap
        got: list[Shard] = []
        for page in repo.scan_bucket(bucket.watermark.bucket, since, config.page_size):
            got.extend(page)
            if len(got) >= per_bucket_cap:
                bucket.capped = True
                break
        bucket.newest = max((s.updated_at for s in got), default=None)
        return got

    with ThreadPoolExecutor(config.workers) as pool:
        scanned = list(pool.map(scan, buckets.values()))
    by_customer: dict[str, dict[str, dict[str, Shard]]] = defaultdict(lambda: defaultdict(dict))
    for shards in scanned:
        counts.shards_scanned += len(shards)
        for shard in shards:
            kept = by_customer[shard.customer_id][shard.month].get(shard.shard)
            if kept is None or shard.updated_at > kept.updated_at:
                by_customer[shard.customer_id][shard.month][shard.shard] = shard
    counts.capped = any(b.capped for b in buckets.values())
    counts.customers = len(by_customer)
    counts.customer_months = sum(len(m) for m in by_customer.values())

    def fold_one(item: tuple[str, Mapping[str, Mapping[str, Shard]]]) -> tuple[str, bool]:
        customer_id, months = item
        if deadline is not None and clock() > deadline:
            counts.stopped_by_deadline = True
            return customer_id, False
        try:
            fold_customer(
                repo,
                publisher,
                customer_id,
                {m: list(s.values()) for m, s in months.items()},
                now=now,
                run_id=run_id,
                server_time=server_time,
                counts=counts,
            )
        except Exception as exc:  # one customer's failure must not stop the others
            counts.add("failed_customers")
            counts.failures.append(f"{customer_id}: {type(exc).__name__}: {exc}"[:300])
            if is_permanent(exc):
                # A retry cannot fix it (Firestore refused the data): recorded in the log for a
                # person, and not allowed to hold its bucket's watermark back for ever.
                logs.error(
                    f"fold of customer {customer_id} refused for good, skipped: {exc}",
                    customer=customer_id,
                    run_id=run_id,
                    decision="fold-refused",
                )
                return customer_id, True
            logs.error(
                f"fold of customer {customer_id} failed; the next fold retries it: {exc}",
                customer=customer_id,
                run_id=run_id,
            )
            return customer_id, False
        return customer_id, True

    with ThreadPoolExecutor(config.workers) as pool:
        outcomes = dict(pool.map(fold_one, by_customer.items()))
    _move_watermarks(repo, buckets, by_customer, outcomes, counts)
    return counts


def _move_watermarks(
    repo: FoldRepository,
    buckets: Mapping[int, _Bucket],
    by_customer: Mapping[str, Mapping[str, Mapping[str, Shard]]],
    outcomes: Mapping[str, bool],
    counts: FoldCounts,
) -> None:
    """Each bucket's new watermark, set once: everything up to it is folded."""
    oldest_unfolded: dict[int, datetime] = {}
    for customer_id, months in by_customer.items():
        if outcomes.get(customer_id):
            continue
        for shards in months.values():
            for shard in shards.values():
                first = oldest_unfolded.get(shard.bucket)
                if first is None or shard.updated_at < first:
                    oldest_unfolded[shard.bucket] = shard.updated_at
    for number, bucket in buckets.items():
        target = bucket.newest
        if number in oldest_unfolded:
            target = oldest_unfolded[number] - _TICK
        old = bucket.watermark.value
        if target is None or (old is not None and target <= plain_value(old)):
            continue
        if not repo.set_watermark(bucket.watermark, target):
            # Another fold moved it meanwhile: keep the later of both (read again, once).
            [fresh] = repo.read_watermarks([number])
            if fresh.value is None or plain_value(fresh.value) < target:
                repo.set_watermark(fresh, target)
        counts.add("watermarks_moved")


def fold_customer(
    repo: FoldRepository,
    publisher: AlertPublisher,
    customer_id: str,
    seen: Mapping[str, Sequence[Shard]],
    *,
    now: datetime,
    run_id: str,
    server_time: Any,
    counts: FoldCounts,
) -> planner.CustomerPlan:
    """Fold one customer's changed months: read, plan, one guarded commit, then its alerts."""
    months = sorted({*seen, month_of(now)})
    existing: frozenset[str] = frozenset()
    for _ in range(MAX_ATTEMPTS):
        # No need to list a new month's shards: every shard folded once is in its summary, so
        # a month without one has no shard at or before the watermark; the scan saw them all.
        state = repo.read_state(customer_id, months)
        shards = {m: list(seen[m]) for m in seen}
        plan = planner.plan_customer(
            customer_id,
            state,
            shards,
            now=now,
            run_id=run_id,
            server_time=server_time,
            existing_markers=existing,
        )
        if plan.commit.empty:
            return plan
        try:
            repo.commit(plan.commit)
        except CommitConflictError:
            counts.add("conflicts")
            if plan.commit.markers:  # a marker may exist already (created before the fold)
                existing |= repo.existing_markers([a for a, _ in plan.commit.markers])
            continue
        counts.add("summaries_written", len(plan.commit.summaries))
        counts.add("customers_written", plan.commit.customer is not None)
        for payload in plan.alerts:
            publish_alert(repo, publisher, payload, counts)
        return plan
    raise TransientError(
        f"customer {customer_id} kept changing under the fold's guarded commit "
        f"({MAX_ATTEMPTS} attempts); the next fold retries"
    )


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
    config: FoldConfig,
    counts: FoldCounts,
) -> None:
    """Publish every marker left `pending` whose claim is released or older than the lease
    (its claimer, a fold or a usage delivery of the old design, died); one taker each."""
    for marker in repo.pending_markers(PENDING_LIMIT):
        if not claimable(marker, now, run_id, config.alert_lease):
            continue
        if not repo.claim_marker(marker, {"claimed_by": run_id, "claimed_at": now}):
            continue  # another fold took it first
        counts.add("alerts_taken_over")
        payload = {k: plain_value(marker.data.get(k)) for k in planner.PAYLOAD_FIELDS}
        payload["alert_id"] = marker.alert_id
        publish_alert(repo, publisher, payload, counts)


def claimable(marker: Marker, now: datetime, run_id: str, lease: timedelta) -> bool:
    """Whether this run may take a pending marker over (pure)."""
    if marker.data.get("state") != "pending" or marker.data.get("claimed_by") == run_id:
        return False
    claimed_at = plain_value(marker.data.get("claimed_at"))
    return not isinstance(claimed_at, datetime) or now - claimed_at >= lease
