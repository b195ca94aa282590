"""The scheduler job as code: the requests it sends to a fake Cloud Scheduler client."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import scheduler_v1

from deploy import scheduler_job

PROJECT = "demo-blueprint"
REGION = "europe-west1"
NAME = f"projects/{PROJECT}/locations/{REGION}/jobs/monthly-quota-reset"


class FakeScheduler:
    """Records every request; serves one stored job (a copy, as the API would)."""

    def __init__(self, job: Any | None = None) -> None:
        self.job = job
        self.requests: list[Any] = []

    def get_job(self, request: Any) -> Any:
        assert isinstance(request, scheduler_v1.GetJobRequest)
        self.requests.append(request)
        if self.job is None or self.job.name != request.name:
            raise NotFound(request.name)
        return scheduler_v1.Job.deserialize(scheduler_v1.Job.serialize(self.job))

    def create_job(self, request: Any) -> Any:
        self.requests.append(request)
        self.job = request.job
        return request.job

    def update_job(self, request: Any) -> Any:
        self.requests.append(request)
        return request.job


def stored(**changes: Any) -> Any:
    """The job as the API returns it after a create (state ENABLED), with changes."""
    job = scheduler_job.desired_job(PROJECT, REGION)
    job.state = scheduler_v1.Job.State.ENABLED
    for key, value in changes.items():
        setattr(job, key, value)
    return job


def writes(fake: FakeScheduler) -> list[Any]:
    return [r for r in fake.requests if not isinstance(r, scheduler_v1.GetJobRequest)]


def test_the_desired_job_is_the_agreed_one() -> None:
    job = scheduler_job.desired_job(PROJECT, REGION)
    assert job.name == NAME
    assert (job.schedule, job.time_zone) == ("0 0 1 * *", "UTC")
    assert job.pubsub_target.topic_name == f"projects/{PROJECT}/topics/quota-reset-schedule"
    assert "period" not in json.loads(job.pubsub_target.data)  # the publish time names the month
    assert job.retry_config.retry_count == 5
    assert job.retry_config.min_backoff_duration == timedelta(seconds=30)


def test_missing_job_is_created() -> None:
    fake = FakeScheduler()
    result = scheduler_job.ensure(fake, PROJECT, REGION)
    assert result.action == "created"
    [request] = writes(fake)
    assert isinstance(request, scheduler_v1.CreateJobRequest)
    assert request.parent == f"projects/{PROJECT}/locations/{REGION}"
    assert request.job == scheduler_job.desired_job(PROJECT, REGION)


def test_identical_job_sends_nothing() -> None:
    fake = FakeScheduler(stored())
    result = scheduler_job.ensure(fake, PROJECT, REGION)
    assert (result.action, result.changed_fields) == ("unchanged", ())
    assert writes(fake) == []
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("changes", "mask"),
    [
        ({"schedule": "0 3 1 * *"}, ["schedule"]),
        ({"time_zone": "Europe/Berlin"}, ["time_zone"]),
        (
            {"pubsub_target": scheduler_v1.PubsubTarget(topic_name="projects/x/topics/old")},
            ["pubsub_target"],
        ),
        (
            {"retry_config": scheduler_v1.RetryConfig(retry_count=0), "description": "old"},
            ["description", "retry_config"],
        ),
    ],
)
def test_drifted_job_is_updated_with_a_mask_of_the_changed_fields(
    changes: dict[str, Any], mask: list[str]
) -> None:
    fake = FakeScheduler(stored(**changes))
    result = scheduler_job.ensure(fake, PROJECT, REGION)
    assert result.action == "updated"
    [request] = writes(fake)
    assert isinstance(request, scheduler_v1.UpdateJobRequest)
    assert list(request.update_mask.paths) == mask
    assert request.job == scheduler_job.desired_job(PROJECT, REGION)


def test_job_with_another_target_kind_gets_the_pubsub_target() -> None:
    job = stored()
    job.http_target = scheduler_v1.HttpTarget(uri="https://example.org/reset")  # oneof: replaces
    fake = FakeScheduler(job)
    result = scheduler_job.ensure(fake, PROJECT, REGION)
    assert result.changed_fields == ("pubsub_target",)


def test_dry_run_sends_no_write_and_says_what_it_would_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakeScheduler(stored(schedule="5 0 1 * *", state=scheduler_v1.Job.State.PAUSED))
    code = scheduler_job.main(
        ["ensure", "--project", PROJECT, "--region", REGION, "--dry-run"], client=fake
    )
    assert code == 0
    assert writes(fake) == []
    reset_line, fold_line = capsys.readouterr().out.splitlines()
    assert json.loads(fold_line)["action"] == "created"  # the fake holds only the reset job
    out = json.loads(reset_line)
    assert out == {
        "action": "updated",
        "job": NAME,
        "changed_fields": ["schedule"],
        "dry_run": True,
        "paused": True,
    }
    missing = FakeScheduler()
    scheduler_job.main(["ensure", "--project", PROJECT, "--region", REGION, "--dry-run"], missing)
    assert writes(missing) == []
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["created", "created"]


FOLD_NAME = f"projects/{PROJECT}/locations/{REGION}/jobs/usage-fold"


def test_the_fold_job_runs_every_minute_on_its_topic() -> None:
    job = scheduler_job.desired_job(PROJECT, REGION, job="usage-fold")
    assert isinstance(job, scheduler_v1.Job)
    assert job.name == FOLD_NAME
    assert (job.schedule, job.time_zone) == ("* * * * *", "UTC")
    assert job.pubsub_target.topic_name == f"projects/{PROJECT}/topics/usage-fold-schedule"
    assert json.loads(job.pubsub_target.data) == {"job": "usage-fold"}
    assert job.retry_config.retry_count == 0  # the next minute's fold is the retry


def test_missing_fold_job_is_created_and_an_identical_one_left_alone() -> None:
    fake = FakeScheduler()
    result = scheduler_job.ensure(fake, PROJECT, REGION, job="usage-fold")
    assert (result.action, result.job) == ("created", FOLD_NAME)
    [request] = writes(fake)
    assert isinstance(request, scheduler_v1.CreateJobRequest)
    assert request.job == scheduler_job.desired_job(PROJECT, REGION, job="usage-fold")
    again = scheduler_job.ensure(fake, PROJECT, REGION, job="usage-fold")
    assert again.action == "unchanged"
    assert len(writes(fake)) == 1


def test_a_drifted_fold_schedule_is_updated() -> None:
    job = scheduler_job.desired_job(PROJECT, REGION, job="usage-fold")
    job.schedule = "*/5 * * * *"
    fake = FakeScheduler(job)
    result = scheduler_job.ensure(fake, PROJECT, REGION, job="usage-fold")
    assert result.changed_fields == ("schedule",)
    [request] = writes(fake)
    assert isinstance(request, scheduler_v1.UpdateJobRequest)
    assert list(request.update_mask.paths) == ["schedule"]


def test_an_unknown_job_is_refused() -> None:
    with pytest.raises(ValueError, match="job='nope'"):
        scheduler_job.desired_job(PROJECT, REGION, job="nope")


class DefaultingScheduler(FakeScheduler):
    """Cloud Scheduler answers a job with its retry defaults filled in where none was set."""

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "max_retry_duration": timedelta(0),
        "min_backoff_duration": timedelta(seconds=5),
        "max_backoff_duration": timedelta(hours=1),
        "max_doublings": 5,
    }

    def create_job(self, request: Any) -> Any:
        stored = scheduler_v1.Job.deserialize(scheduler_v1.Job.serialize(request.job))
        retry = stored.retry_config
        for name, value in self.DEFAULTS.items():
            if not getattr(retry, name):
                setattr(retry, name, value)
        self.requests.append(request)
        self.job = stored
        return stored


@pytest.mark.parametrize("job", ["usage-fold", "monthly-quota-reset"])
def test_a_job_read_back_with_the_schedulers_defaults_is_unchanged(job: str) -> None:
    fake = DefaultingScheduler()
    assert scheduler_job.ensure(fake, PROJECT, REGION, job=job).action == "created"
    assert scheduler_job.ensure(fake, PROJECT, REGION, job=job).action == "unchanged"
