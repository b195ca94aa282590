"""One customer's commit (read, plan, one guarded commit, its alerts), shared by the fold and
the recount, and the rule for a customer whose commit fails."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from functions.fold import plan
from functions.fold.alerts import publish_alert
from functions.fold.ports import (
    AlertPublisher,
    CommitConflictError,
    CustomerState,
    FoldCounts,
    FoldRepository,
)
from shared import logs
from shared.errors import TransientError, is_permanent

MAX_ATTEMPTS: Final = 8
"""Guarded commits of one customer per fold before it is left for the next fold."""


@dataclass(frozen=True, slots=True)
class Run:
    """What every customer's commit of one run shares."""

    now: datetime
    run_id: str
    server_time: Any


def commit_customer(  # noqa: PLR0917 - one customer's commit and its context
    repo: FoldRepository,
    publisher: AlertPublisher,
    customer_id: str,
    months: Sequence[str],
    changes: Callable[[CustomerState], Mapping[str, plan.MonthChange]],
    run: Run,
    counts: FoldCounts,
) -> plan.CustomerPlan:
    """Read the customer and the summaries of `months`, plan the `changes` made from what was
    read, ONE guarded commit (again from a fresh read when a guard fails), then its alerts."""
    existing: frozenset[str] = frozenset()
    for _ in range(MAX_ATTEMPTS):
        state = repo.read_state(customer_id, months)
        planned = plan.plan_customer(
            customer_id,
            state,
            changes(state),
            now=run.now,
            run_id=run.run_id,
            server_time=run.server_time,
            existing_markers=existing,
        )
        if planned.commit.empty:
            return planned
        try:
            repo.commit(planned.commit)
        except CommitConflictError:
            counts.add("conflicts")
            if planned.commit.markers:  # a marker may exist already
                existing |= repo.existing_markers([a for a, _ in planned.commit.markers])
            continue
        counts.add("summaries_written", len(planned.commit.summaries))
        counts.add("customers_written", planned.commit.customer is not None)
        counts.add("late_records", planned.late)
        for payload in planned.alerts:
            publish_alert(repo, publisher, payload, counts)
        return planned
    raise TransientError(
        f"customer {customer_id} kept changing under the fold's guarded commit "
        f"({MAX_ATTEMPTS} attempts); the next fold retries"
    )


def guarded(  # noqa: PLR0917 - one customer's work and its context
    customer_id: str,
    what: str,
    run_id: str,
    counts: FoldCounts,
    work: Callable[[], Any],
    skip_refused: bool = False,
) -> bool:
    """Run one customer's `work`; its failure (an ERROR naming the customer) never stops the
    others. True when done; False when the next fold must do it again, whatever the error (its
    records are not counted until then). `skip_refused` (the recount, a check): an error a retry
    cannot fix is skipped (True), so one broken document does not stop a month's close."""
    try:
        work()
    except Exception as exc:
        counts.add("failed_customers")
        counts.failures.append(f"{customer_id}: {type(exc).__name__}: {exc}"[:300])
        skipped = skip_refused and is_permanent(exc)
        logs.error(
            f"{what} of customer {customer_id} "
            + ("refused for good, skipped" if skipped else "failed; the next fold retries it")
            + f": {exc}",
            customer=customer_id,
            run_id=run_id,
            decision="fold-refused" if skipped else "fold-failed",
        )
        return skipped
    return True
