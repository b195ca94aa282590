"""The Cloud Scheduler jobs as code: create if missing, update if it drifted.

`python -m deploy.scheduler_job ensure --project P --region R [--dry-run]` (cloudbuild.yaml runs
it on every deploy) ensures both jobs and prints one JSON line per job:
- `monthly-quota-reset` publishes on `quota-reset-schedule` at `0 0 1 * *` UTC; the function
  takes the month to reset from the message's publish time;
- `usage-fold` publishes on `usage-fold-schedule` every minute (`* * * * *` UTC); each message
  runs one fold of the new usage records (docs/counters.md).
There is no Scheduler emulator: the tests check the requests this module sends to a fake client.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Protocol

from shared import names
from shared.settings import get_settings

JOB_DESCRIPTION: Final = (
    "Monthly scene-quota reset: publishes on the schedule topic; the function "
    "reset-monthly-quotas resets each customer once for the month of the publish time."
)
JOB_BODY: Final = json.dumps({"job": names.QUOTA_RESET_JOB}, separators=(",", ":")).encode()
"""Message data (a Pub/Sub target needs a non-empty body). No period: the publish time is it."""

FOLD_JOB_DESCRIPTION: Final = (
    "Usage counter fold: publishes on the fold schedule topic every minute; the function "
    "fold-usage-counters sums the new usage records into month totals and customers."
)
FOLD_JOB_BODY: Final = json.dumps({"job": names.USAGE_FOLD_JOB}, separators=(",", ":")).encode()
FOLD_RETRY: Final = {
    "retry_count": 0,
    "max_retry_duration": timedelta(0),
    "min_backoff_duration": timedelta(seconds=5),
    "max_backoff_duration": timedelta(hours=1),
    "max_doublings": 5,
}
"""A missed minute is folded by the next one: no Scheduler retries. Every field is set (the
others at Cloud Scheduler's defaults), so the job read back compares equal and a deploy that
changes nothing says `unchanged`."""

RETRY: Final = {
    "retry_count": 5,
    "max_retry_duration": timedelta(hours=1),
    "min_backoff_duration": timedelta(seconds=30),
    "max_backoff_duration": timedelta(minutes=10),
    "max_doublings": 4,
}
"""Scheduler's own retries if publishing fails; the function's retries are Pub/Sub's."""

COMPARED_FIELDS: Final = ("description", "schedule", "time_zone", "pubsub_target", "retry_config")
"""Fields `ensure` owns; it updates exactly those that differ (the update mask)."""


class SchedulerClient(Protocol):
    """The part of `scheduler_v1.CloudSchedulerClient` used here."""

    def get_job(self, request: Any) -> Any:
        """GetJobRequest -> Job (NotFound if missing)."""

    def create_job(self, request: Any) -> Any:
        """CreateJobRequest -> Job."""

    def update_job(self, request: Any) -> Any:
        """UpdateJobRequest -> Job."""


@dataclass(frozen=True, slots=True)
class EnsureResult:
    """What `ensure` did (or, in a dry run, would do)."""

    action: str
    """`created`, `updated` or `unchanged`."""
    job: str
    changed_fields: tuple[str, ...] = ()
    dry_run: bool = False
    paused: bool = False
    """The existing job is paused (left so: an operator paused it)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON form printed by the command."""
        return {
            "action": self.action,
            "job": self.job,
            "changed_fields": list(self.changed_fields),
            "dry_run": self.dry_run,
            "paused": self.paused,
        }


def job_name(project: str, region: str, job: str = names.QUOTA_RESET_JOB) -> str:
    """Full resource name of the job."""
    return f"projects/{project}/locations/{region}/jobs/{job}"


def desired_job(
    project: str, region: str, topic: str | None = None, job: str = names.QUOTA_RESET_JOB
) -> Any:
    """The Job this project wants (`job`: the reset's or the fold's; the topic defaults to the
    settings' schedule topic of that job)."""
    from google.cloud import scheduler_v1  # noqa: PLC0415 - lazy: heavy import

    if job == names.USAGE_FOLD_JOB:
        return scheduler_v1.Job(
            name=job_name(project, region, job),
            description=FOLD_JOB_DESCRIPTION,
            schedule=names.USAGE_FOLD_CRON,
            time_zone=names.QUOTA_RESET_TIME_ZONE,
            pubsub_target=scheduler_v1.PubsubTarget(
                topic_name=names.topic_path(
                    project, topic or get_settings().usage_fold_schedule_topic
                ),
                data=FOLD_JOB_BODY,
            ),
            retry_config=scheduler_v1.RetryConfig(**FOLD_RETRY),
        )
    if job != names.QUOTA_RESET_JOB:
        raise ValueError(f"job={job!r}: expected one of {list(JOBS)}")
    topic = topic or get_settings().quota_reset_schedule_topic
    return scheduler_v1.Job(
        name=job_name(project, region),
        description=JOB_DESCRIPTION,
        schedule=names.QUOTA_RESET_CRON,
        time_zone=names.QUOTA_RESET_TIME_ZONE,
        pubsub_target=scheduler_v1.PubsubTarget(
            topic_name=names.topic_path(project, topic), data=JOB_BODY
        ),
        retry_config=scheduler_v1.RetryConfig(**RETRY),
    )


JOBS: Final = (names.QUOTA_RESET_JOB, names.USAGE_FOLD_JOB)
"""Every job this module owns."""


def drifted_fields(desired: Any, existing: Any) -> tuple[str, ...]:
    """The owned fields whose values differ (proto equality, so defaults compare equal)."""
    return tuple(f for f in COMPARED_FIELDS if getattr(desired, f) != getattr(existing, f))


def ensure(
    client: SchedulerClient,
    project: str,
    region: str,
    *,
    dry_run: bool = False,
    job: str = names.QUOTA_RESET_JOB,
) -> EnsureResult:
    """Create the job if missing, update the drifted fields if it differs, else do nothing."""
    from google.api_core.exceptions import NotFound  # noqa: PLC0415 - lazy
    from google.cloud import scheduler_v1  # noqa: PLC0415

    desired = desired_job(project, region, job=job)
    try:
        existing = client.get_job(request=scheduler_v1.GetJobRequest(name=desired.name))
    except NotFound:
        if not dry_run:
            client.create_job(
                request=scheduler_v1.CreateJobRequest(
                    parent=f"projects/{project}/locations/{region}", job=desired
                )
            )
        return EnsureResult("created", desired.name, COMPARED_FIELDS, dry_run)
    paused = existing.state == scheduler_v1.Job.State.PAUSED
    changed = drifted_fields(desired, existing)
    if not changed:
        return EnsureResult("unchanged", desired.name, (), dry_run, paused)
    if not dry_run:
        client.update_job(
            request=scheduler_v1.UpdateJobRequest(job=desired, update_mask={"paths": list(changed)})
        )
    return EnsureResult("updated", desired.name, changed, dry_run, paused)


def _client() -> SchedulerClient:
    from google.cloud import scheduler_v1  # noqa: PLC0415 - lazy

    client: SchedulerClient = scheduler_v1.CloudSchedulerClient()
    return client


def main(argv: list[str] | None = None, client: SchedulerClient | None = None) -> int:
    """Command line: `ensure --project P --region R [--dry-run]`; one JSON line per job."""
    parser = argparse.ArgumentParser(prog="python -m deploy.scheduler_job", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("ensure", help="create or update the scheduler jobs")
    cmd.add_argument("--project", default=None, help="project id (default: settings)")
    cmd.add_argument("--region", default=None, help="Scheduler location (default: settings)")
    cmd.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    args = parser.parse_args(argv)
    settings = get_settings()
    client = client or _client()
    for job in JOBS:
        result = ensure(
            client,
            args.project or settings.project_id,
            args.region or settings.region,
            dry_run=args.dry_run,
            job=job,
        )
        print(json.dumps(result.as_dict()))
        if result.paused:
            print(f"warning: {result.job} is PAUSED; left paused", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
