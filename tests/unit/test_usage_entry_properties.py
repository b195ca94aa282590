"""Property tests: generated CloudEvents against `on_usage_event`'s entry, over fakes.

Whatever the envelope (ce-type right or wrong, base64 or not, attributes, ids) and the body
(valid events with extreme values, one or several defects: `tests/usage_cases.py`):
- the only exception leaving the handler is TransientError, and only when the fake injected a
  transient failure, which a redelivery then gets past;
- every event ends either recorded (one record, which adds exactly one to its month's sums) or
  in the rejections with the kind the case predicts and a reason naming the field;
- redelivering the same message records, counts and stores nothing more;
- a second payload under a recorded key is a `conflicting_duplicate`: the first stands.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cloudevents.http import CloudEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.usage.cache import CustomerCache
from functions.usage.entry import handle_cloud_event
from functions.usage.ports import MAX_REASON_ERRORS, Outcome, Result
from functions.usage.service import UsageService
from shared.errors import TransientError
from shared.ids import message_doc_id
from shared.models import BundleTier
from shared.times import month_of
from tests.limits_support import captured_logs
from tests.usage_cases import (
    PUBLISHED,
    RECORDED,
    TEXT,
    Case,
    body_cases,
    keys,
    valid_events,
)
from tests.usage_support import NOW, FakeRepository, cloud_event, message

EXAMPLES = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CUSTOMER = "lab_001"
INJECTABLE = (
    "get_customer",
    "create_record",
    "store_rejection",
    "get_stored_sha256",
)


# --- CloudEvents around the generated bodies ---------------------------------------------------


@dataclass(frozen=True)
class EventCase:
    """A CloudEvent as functions-framework hands it to `on_usage_event`, and its outcome."""

    case: Case
    event: CloudEvent


@st.composite
def cloud_event_cases(draw: st.DrawFn, customer: str, now: datetime) -> EventCase:
    """A `messagePublished` CloudEvent (or a mistaken one) carrying a generated body."""
    case = draw(body_cases(customer, now))
    encoded: Any = base64.b64encode(case.body).decode()
    envelope_problem: tuple[str, str] | None = None
    form = draw(st.sampled_from(["b64"] * 8 + ["urlsafe", "garbage", "typed", "no-data"]))
    if form == "urlsafe":
        encoded = base64.urlsafe_b64encode(case.body).decode()
        if encoded != base64.b64encode(case.body).decode():
            envelope_problem = ("bad_envelope", "message.data")
    elif form == "garbage":
        encoded = draw(st.sampled_from(["not base64!", "YQ", "YWJj\n", "====", "é"]))
        envelope_problem = ("bad_envelope", "message.data")
    elif form == "typed":
        encoded = draw(st.one_of(st.integers(1), st.just({"a": 1}), st.just([1]), st.just(True)))
        envelope_problem = ("bad_envelope", "message.data")
    elif form == "no-data":
        encoded = None
        case = replace(case, body=b"", expected="not_json", fields=("(document)",))
    message: dict[str, Any] = {} if encoded is None else {"data": encoded}
    ce_id = draw(st.text(TEXT, min_size=1, max_size=20))
    if draw(st.booleans()):
        message["messageId"] = draw(st.text(TEXT, min_size=1, max_size=40))
    if draw(st.booleans()):
        message["publishTime"] = draw(
            st.one_of(
                st.just(now.isoformat()),
                st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "", "20250110"]),
                st.integers(),
                st.text(max_size=10),
            )
        )
    if draw(st.booleans()):
        message["attributes"] = draw(
            st.one_of(
                st.dictionaries(keys, st.text(TEXT, max_size=10), max_size=3),
                st.dictionaries(keys, st.integers(), max_size=2),
                st.just(["not", "a", "map"]),
            )
        )
    data: Any = {"message": message, "subscription": "projects/demo-x/subscriptions/usage"}
    if draw(st.booleans()):
        data["deliveryAttempt"] = draw(st.one_of(st.integers(1, 10), st.just("3"), st.none()))
    wrapper = draw(st.sampled_from(["dict"] * 6 + ["text", "no-message", "not-json", "deep"]))
    if wrapper == "text":
        data = json.dumps(data).encode()
    elif wrapper == "no-message":
        data = draw(st.sampled_from([{"message": "hi"}, {}, [1], None, {"message": None}]))
        envelope_problem = ("bad_envelope", "message")
    elif wrapper == "not-json":
        data = draw(st.sampled_from([b"not json", b"[" * 1000, b"\xff\xfe", b'{"message": ']))
        envelope_problem = ("bad_envelope", "(envelope)")
    if envelope_problem is not None:
        case = replace(case, expected=envelope_problem[0], fields=(envelope_problem[1],))
    ce_type = draw(st.sampled_from([PUBLISHED] * 4 + ["other"]))
    if ce_type == "other":
        ce_type = draw(st.text(min_size=1, max_size=60).filter(lambda t: t != PUBLISHED))
        case = replace(case, expected="wrong_event_type", fields=("(ce-type)",))
    attrs = {"id": ce_id, "source": "//pubsub.googleapis.com/projects/demo-x/topics/usage-events"}
    return EventCase(case, CloudEvent({**attrs, "type": ce_type, "specversion": "1.0"}, data))


def _repo(tier: BundleTier, customer: str = CUSTOMER) -> FakeRepository:
    repo = FakeRepository()
    repo.put_customer(customer, bundle_tier=tier.value)
    return repo


def _state(repo: FakeRepository) -> tuple[Any, ...]:
    return dict(repo.records), dict(repo.rejections), repo.commits


def deliver(event: Any, service: UsageService, repo: FakeRepository, inject: str | None) -> Any:
    """One delivery; a TransientError only from the injected failure, with nothing written,
    then Pub/Sub's redelivery (the injection is spent)."""
    pending = repo.fail_calls.get(inject, 0) if inject else 0
    before = _state(repo)
    try:
        return handle_cloud_event(event, service, NOW)
    except TransientError:
        assert inject is not None, "a TransientError without an injected failure"
        assert (pending, repo.fail_calls[inject]) == (1, 0), "not the injected failure"
        assert _state(repo) == before, "a transient failure left a partial write"
        return handle_cloud_event(event, service, NOW)


def assert_ended_as_predicted(repo: FakeRepository, case: Case, result: Result | None) -> None:
    """Recorded once and counted once, or rejected once with the predicted kind and fields."""
    assert result is not None, "handle_cloud_event acknowledged without an outcome"
    if case.expected == RECORDED:
        assert result.outcome is Outcome.RECORDED, (case.label, result)
        assert repo.rejections == {}
        [record] = repo.records.values()
        assert record["customer_id"] == CUSTOMER
        totals = repo.totals(CUSTOMER, month_of(record["timestamp"]))
        assert totals.records == 1
        assert totals.scenes_generated == (record["action"] == "scene_generated")
        assert record["fold_key"] == f"{CUSTOMER}_{month_of(record['timestamp'])}"
        assert repo.commits == 1
        return
    assert result.outcome is Outcome.REJECTED, (case.label, result)
    assert (repo.records, repo.commits) == ({}, 0), case.label
    [doc] = repo.rejections.values()
    assert doc["kind"] == case.expected, (case.label, doc["reason"])
    named = [e["field"] for e in doc["errors"]]
    assert named, doc
    for name in named[:MAX_REASON_ERRORS]:
        assert f"{name}=" in doc["reason"]
    for wanted in case.fields:
        assert any(f == wanted or f.startswith(wanted + ".") for f in named), (wanted, named)


@EXAMPLES
@given(
    data=st.data(),
    tier=st.sampled_from(list(BundleTier)),
    inject=st.sampled_from([None, None, *INJECTABLE]),
    cached=st.booleans(),
)
def test_every_usage_event_ends_recorded_or_rejected_once(
    data: st.DataObject, tier: BundleTier, inject: str | None, cached: bool
) -> None:
    drawn = data.draw(cloud_event_cases(CUSTOMER, NOW))
    case, event = drawn.case, drawn.event
    repo = _repo(tier)
    service = UsageService(repo, customer_cache=CustomerCache(60) if cached else None)
    if inject is not None:
        repo.fail_calls[inject] = 1
    with captured_logs() as lines:
        result = deliver(event, service, repo, inject)
    assert_ended_as_predicted(repo, case, result)
    if case.expected != RECORDED:
        assert len(lines.errors()) == 1
    # The same message again (a redelivery): nothing recorded, counted or stored twice.
    before = _state(repo)
    again = deliver(event, service, repo, inject)
    assert _state(repo) == before
    assert again is not None
    expected_again = Outcome.DUPLICATE if case.expected == RECORDED else Outcome.REJECTED_BEFORE
    assert again.outcome is expected_again


@EXAMPLES
@given(case=body_cases(CUSTOMER, NOW), tier=st.sampled_from(list(BundleTier)))
def test_every_generated_body_ends_as_predicted_through_the_service(
    case: Case, tier: BundleTier
) -> None:
    repo = _repo(tier)
    service = UsageService(repo)
    data = cloud_event(case.body, "m-1", **case.attributes)
    assert_ended_as_predicted(repo, case, handle_cloud_event(data, service, NOW))
    for delivery in range(2):  # redeliveries under a new CloudEvent with the same message id
        assert handle_cloud_event(cloud_event(case.body, "m-1"), service, NOW) is not None
        assert len(repo.records) + len(repo.rejections) == 1, delivery


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=valid_events(CUSTOMER, NOW),
    second=valid_events(CUSTOMER, NOW),
    key=st.text(min_size=1, max_size=40),
)
def test_a_second_payload_under_a_recorded_key_is_a_conflict_and_the_first_stands(
    first: dict[str, Any], second: dict[str, Any], key: str
) -> None:
    repo = _repo(BundleTier.PRO)
    service = UsageService(repo)
    first["event_id"] = second["event_id"] = key
    recorded = service.handle(message(json.dumps(first), "m-first"), NOW)
    assert recorded.outcome is Outcome.RECORDED
    [(record_id, record)] = list(repo.records.items())
    month = month_of(record["timestamp"])
    counted = repo.totals(CUSTOMER, month)
    result = service.handle(message(json.dumps(second), "m-second"), NOW)
    assert repo.records == {record_id: record}  # the first payload wins
    assert repo.totals(CUSTOMER, month) == counted  # nothing counted twice
    if result.outcome is Outcome.DUPLICATE:  # the same event, as validated (e.g. other offset)
        assert repo.rejections == {}
        return
    assert result.outcome is Outcome.CONFLICT
    doc = repo.rejections[message_doc_id("m-second")]
    assert doc["kind"] == "conflicting_duplicate"
    assert doc["existing_payload_sha256"] == record["payload_sha256"]
    assert doc["payload_sha256"] != record["payload_sha256"]
    assert doc["record_id"] == record_id
    assert "event_id=" in doc["reason"]
    # Its redelivery stores nothing new.
    service.handle(message(json.dumps(second), "m-second"), NOW)
    assert len(repo.rejections) == 1


def test_the_generators_reach_every_outcome() -> None:
    """The strategies are not vacuous: in a fixed sample every predicted outcome occurs."""
    bodies: set[str] = set()
    events: set[str] = set()

    @settings(max_examples=300, database=None, derandomize=True, deadline=None)
    @given(case=body_cases(CUSTOMER, NOW), drawn=cloud_event_cases(CUSTOMER, NOW))
    def collect(case: Case, drawn: Any) -> None:
        bodies.add(case.expected)
        events.add(drawn.case.expected)

    collect()
    assert bodies == {
        RECORDED,
        "invalid_event",
        "unknown_schema_version",
        "not_json",
        "oversized",
        "future_timestamp",
        "unknown_customer",
    }
    assert events >= {RECORDED, "not_json", "bad_envelope", "wrong_event_type"}
