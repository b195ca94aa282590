"""Config documents at Firestore's limits and the schedule topic's bad messages:
each permanent failure acknowledged and recorded, only TransientError ever raised."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from functions.config import entry as config_entry
from functions.config.ports import ConfigKind, Decision
from functions.reset import entry as reset_entry
from shared.errors import PermanentError, TransientError
from tests.limits_support import (
    OUTAGE,
    FakePublisher,
    FakeScheduleRepo,
    FakeStamper,
    captured_logs,
    create_body,
    deep_create_body,
    firestore_event,
    job_body,
    scene,
    schedule_event,
)

SCENE = "scenes/s-limits"
REFUSAL = PermanentError(
    "Firestore: stamping scenes/s-limits: InvalidArgument: 400 document exceeds the maximum size"
)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeStamper, FakePublisher]:
    stamper, publisher = FakeStamper(), FakePublisher()
    monkeypatch.setattr(config_entry, "_STAMPER", stamper)
    monkeypatch.setattr(config_entry, "_PUBLISHER", publisher)
    return stamper, publisher


def run_scene(fields: dict[str, object], **attrs: str) -> config_entry.Outcome | None:
    event = firestore_event(SCENE, create_body(SCENE, fields), **attrs)
    return config_entry.run_trigger("on-scene-written", ConfigKind.SCENE, event)


def test_a_stamp_firestore_refuses_is_logged_once_and_the_invalidation_says_so(
    fakes: tuple[FakeStamper, FakePublisher],
) -> None:
    stamper, publisher = fakes
    stamper.fail = REFUSAL
    with captured_logs() as lines:
        outcome = run_scene(scene(custom_settings={"blob": "x" * 1000}))
    assert outcome is not None
    assert outcome.decision is Decision.REFUSED_STAMP
    errors = lines.errors()
    assert len(errors) == 1
    assert SCENE in errors[0]
    assert "InvalidArgument" in errors[0]
    [body] = publisher.bodies()
    assert body["valid"] is True  # the configuration itself is valid: readers use it
    assert len(body["notes"]) == 1
    assert body["notes"][0].startswith("stamp refused by Firestore: ")
    assert "InvalidArgument" in body["notes"][0]


def test_a_stamp_that_fails_transiently_is_still_raised(
    fakes: tuple[FakeStamper, FakePublisher],
) -> None:
    fakes[0].fail = OUTAGE
    with pytest.raises(TransientError):
        run_scene(scene())
    assert fakes[1].messages == []


def test_120000_invalid_vla_models_fit_pubsub_and_one_bounded_log_line(
    fakes: tuple[FakeStamper, FakePublisher],
) -> None:
    _, publisher = fakes
    models = [f"M{i}" for i in range(120_000)]  # uppercase: not a model name
    with captured_logs() as lines:
        outcome = run_scene(scene(vla_models=models))
    assert outcome is not None
    assert outcome.decision is Decision.INVALID
    [(data, _, attributes)] = publisher.messages
    body = json.loads(data)
    assert len(data) < 64 * 1024  # far below Pub/Sub's 10 MB
    assert all(len(v.encode()) <= 1024 for v in attributes.values())
    assert len(body["errors"]) == 20
    assert body["errors_omitted"] == len(outcome.errors) - 20 >= 100_000
    [record] = lines.error_records()
    line = record.getMessage()
    assert len(line) < 16 * 1024
    assert f"and {len(outcome.errors) - 20} more" in line
    fields = record.__dict__["fields"]
    assert len(fields["errors"]) == 20
    assert fields["errors_omitted"] == len(outcome.errors) - 20
    assert len(json.dumps(fields, default=str)) < 16 * 1024


@pytest.mark.parametrize("depth", [20, 100])
def test_deep_nesting_is_decoded_and_classified_without_recursion_error(
    fakes: tuple[FakeStamper, FakePublisher], depth: int
) -> None:
    """20 levels is Firestore's own limit: decoded. 100 is past what the protobuf reader takes
    (100 message levels, 3 per map): refused as undecodable, acknowledged, one ERROR line."""
    body = deep_create_body(SCENE, depth, scene())
    event = firestore_event(SCENE, body)
    with captured_logs() as lines:
        outcome = config_entry.run_trigger("on-scene-written", ConfigKind.SCENE, event)
    if depth <= 20:
        assert outcome is not None
        assert outcome.decision is Decision.STAMPED
        assert len(fakes[1].messages) == 1
        assert lines.errors() == []
    else:
        assert outcome is None
        [line] = lines.errors()
        assert "DocumentEventData" in line
        assert SCENE in line  # named from the event's subject
        assert fakes[1].messages == []


def test_twenty_thousand_fields_are_decoded_and_classified(
    fakes: tuple[FakeStamper, FakePublisher],
) -> None:
    fields = {f"f{i:05d}": i for i in range(20_000)}
    outcome = run_scene(scene(custom_settings=fields))
    assert outcome is not None
    assert outcome.decision is Decision.STAMPED
    assert len(fakes[1].messages) == 1


@pytest.mark.parametrize(
    "event_type",
    ["google.cloud.pubsub.topic.v1.messagePublished", "com.example.other", ""],
)
def test_a_wrong_ce_type_is_refused_not_processed(
    fakes: tuple[FakeStamper, FakePublisher], event_type: str
) -> None:
    stamper, publisher = fakes
    with captured_logs() as lines:
        outcome = run_scene(scene(), type=event_type or "x")
    assert outcome is None
    assert (stamper.calls, publisher.messages) == ([], [])
    [line] = lines.errors()
    assert "ce-type" in line


def test_an_unexpected_error_leaves_as_transient(
    fakes: tuple[FakeStamper, FakePublisher],
) -> None:
    fakes[0].fail = RuntimeError("a bug")
    with pytest.raises(TransientError, match="a bug"):
        run_scene(scene())


# --- the reset's schedule topic ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (schedule_event(b"[" * 1000), "expected a JSON object"),
        (schedule_event(b"[1, 2]"), "expected a JSON object"),
        (schedule_event({"job": "monthly-quota-reset"}), "message.data"),
        (schedule_event(job_body(), publish_time="0001-01-01T00:00:00Z"), "publishTime"),
        (schedule_event(job_body(), publish_time="0001-01-01T00:30:00+01:00"), "publishTime"),
        (schedule_event(job_body(), event_type="com.example.other"), "ce-type"),
        (schedule_event(envelope={"message": "hi"}), "message"),
    ],
    ids=["brackets", "json-list", "data-object", "year-1", "year-0", "ce-type", "no-message"],
)
def test_a_bad_schedule_message_is_recorded_logged_once_and_acknowledged(
    event: object, reason: str
) -> None:
    repo = FakeScheduleRepo()
    with captured_logs() as lines:
        assert reset_entry.handle_schedule_event(event, 540, repo) is None
        assert reset_entry.handle_schedule_event(event, 540, repo) is None  # redelivered
    assert repo.audits == {}  # nothing reset
    [rejection] = repo.rejections.values()
    assert reason in rejection.reason
    assert rejection.message_id == "m-1"
    assert len(rejection.data_preview) <= reset_entry.MAX_TEXT
    [line] = lines.errors()
    assert rejection.id in line


def test_recording_a_refused_message_with_firestore_down_asks_for_redelivery() -> None:
    with pytest.raises(TransientError):
        reset_entry.handle_schedule_event(
            schedule_event(b"[" * 1000), 540, FakeScheduleRepo(OUTAGE)
        )


def test_the_schedulers_own_message_still_runs_the_reset() -> None:
    repo = FakeScheduleRepo()
    event = schedule_event(job_body(), publish_time=datetime.now(UTC).isoformat())
    summary = reset_entry.handle_schedule_event(event, 540, repo)
    assert summary is not None
    assert summary.complete
    assert repo.rejections == {}
