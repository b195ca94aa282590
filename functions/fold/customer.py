"""One customer's fold (read, plan, one guarded commit, its alerts) and the counting of its
months' records: by aggregation for the records with `fold_key`, again from the records for a
held tally an overlapping fold partly wrote (`TallyGapError`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from functions.fold import planner
from functions.fold.alerts import publish_alert
from functions.fold.ports import (
    AlertPublisher,
    CommitConflictError,
    CustomerState,
    FoldCounts,
    FoldRepository,
    HeldTally,
    Shard,
    Tally,
)
from functions.fold.tally import TallyGapError, tally_bound
from shared.errors import TransientError
from shared.times import month_of

MAX_ATTEMPTS: Final = 8
"""Guarded commits of one customer per fold before it is left for the next fold."""
RECOUNT_PAGE: Final = 500


def scenes_since(repo: FoldRepository, entry: HeldTally, upto: datetime | None) -> int:
    """Scenes of a held month counted by aggregation after its last write, up to `upto`."""
    if upto is None or (entry.base is not None and entry.base >= upto):
        return 0
    found = repo.count_month(entry.customer_id, entry.month, entry.base, upto, scenes_only=True)
    return int(found.get("scenes_generated", 0))


def _counted(
    repo: FoldRepository, customer_id: str, month: str, tally: Tally, state: CustomerState
) -> Tally:
    """The tally with its month's records counted by aggregation after the summary's bound as
    just read (every tally write counts them: records with `fold_key` are in no scan)."""
    summary = state.summaries.get(month)
    shards = summary.data.get("shards") if summary is not None else None
    after = tally_bound(shards) if isinstance(shards, Mapping) else None
    if after is not None and after >= tally.upto:
        return replace(tally, counted={}, counted_after=after)
    found = repo.count_month(customer_id, month, after, tally.upto)
    return replace(tally, counted=found, counted_after=after)


def _recount(repo: FoldRepository, customer_id: str, tally: Tally, gap: TallyGapError) -> Tally:
    """The month's records after `gap.after` and up to the tally's bound, read again."""
    found = [
        record
        for page in repo.scan_records(tally.bucket, gap.after, tally.upto, RECOUNT_PAGE)
        for record in page
        if record.customer_id == customer_id and record.month == gap.month
    ]
    return replace(tally, records=tuple(found), held=None)


def fold_customer(
    repo: FoldRepository,
    publisher: AlertPublisher,
    customer_id: str,
    seen: Mapping[str, Sequence[Shard]],
    *,
    tallies: Mapping[str, Tally] | None = None,
    now: datetime,
    run_id: str,
    server_time: Any,
    counts: FoldCounts,
) -> planner.CustomerPlan:
    """Fold one customer's changed months (`seen` shards, `tallies` of records counted from
    the records): read, plan, one guarded commit, then its alerts."""
    tallies = tallies or {}
    months = sorted({*seen, *tallies, month_of(now)})
    existing: frozenset[str] = frozenset()
    for _ in range(MAX_ATTEMPTS):
        # No need to list a new month's shards: every shard folded once is in its summary, so
        # a month without one has no shard at or before the watermark; the scan saw them all.
        state = repo.read_state(customer_id, months)
        shards = {m: list(seen[m]) for m in seen}
        tallies = {m: _counted(repo, customer_id, m, t, state) for m, t in tallies.items()}
        counts.add("months_counted", len(tallies))
        try:
            plan = planner.plan_customer(
                customer_id,
                state,
                shards,
                now=now,
                run_id=run_id,
                server_time=server_time,
                existing_markers=existing,
                tallies=tallies,
            )
        except TallyGapError as gap:
            # An overlapping fold wrote part of what was held: count the month again from its
            # records after the summary's bound (rare; the records are the truth).
            counts.add("recounts")
            tallies = {**tallies, gap.month: _recount(repo, customer_id, tallies[gap.month], gap)}
            continue
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
