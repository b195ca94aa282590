"""Retry and dead-letter policy as data: the table holds it, the suite and the deploy read it."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import Any

import pytest

from devstack import push as suite
from devstack import push as suite_push
from devstack.push import Backoff, pubsub_push
from functions.table import (
    FUNCTIONS,
    USAGE_DELIVERY,
    DeliveryPolicy,
    TriggerKind,
    by_name,
)
from shared.settings import load_settings

SETTINGS = load_settings({})
PUBSUB = [spec for spec in FUNCTIONS if spec.trigger is TriggerKind.PUBSUB]
RECORDERS = {"record-dead-letters", "record-schedule-dead-letters"}


def test_production_usage_policy_is_the_issues() -> None:
    policy = by_name("on-usage-event").delivery
    assert policy == USAGE_DELIVERY
    assert (policy.max_delivery_attempts, policy.min_backoff_seconds) == (10, 10.0)
    assert policy.max_backoff_seconds == 600.0
    assert policy.dead_letter_topic(SETTINGS) == SETTINGS.usage_events_dead_letter_topic


def test_every_pubsub_function_has_a_policy_and_every_dead_letter_topic_a_recorder() -> None:
    recorded_topics = {by_name(name).topic(SETTINGS) for name in RECORDERS}
    for spec in PUBSUB:
        assert spec.delivery is not None, f"{spec.name}: add delivery= to functions/table.py"
        dead = spec.delivery.dead_letter_topic(SETTINGS)
        if spec.name in RECORDERS:
            assert dead is None  # nowhere better to put a dead letter of a dead letter
        else:
            assert dead in recorded_topics, f"{spec.name}: nobody records {dead}"


def test_policy_refuses_what_pubsub_refuses() -> None:
    with pytest.raises(ValueError, match="5-100"):
        DeliveryPolicy(4, 1, 2, None)
    with pytest.raises(ValueError, match="600"):
        DeliveryPolicy(10, 10, 601, None)


class RecordingPubSub:
    def __init__(self) -> None:
        self.topics: list[str] = []
        self.subscriptions: list[dict[str, Any]] = []

    def create_topic(self, topic: str) -> str:
        self.topics.append(topic)
        return topic

    def create_subscription(self, topic: str, subscription: str, **kw: Any) -> str:
        self.subscriptions.append({"topic": topic, "name": subscription, **kw})
        return subscription


def test_the_local_suite_subscribes_with_the_tables_policy_backoff_scaled() -> None:
    pubsub = RecordingPubSub()
    fake = SimpleNamespace(
        settings=SETTINGS,
        pubsub=pubsub,
        project="demo-x",
        function_url=lambda name: f"http://h/{name}",
    )
    suite.create_topics_and_subscriptions(fake)  # type: ignore[arg-type]
    pushes = {s["name"]: s for s in pubsub.subscriptions if s.get("push_endpoint")}
    assert set(pushes) == {suite.push_subscription_name(spec) for spec in PUBSUB}
    for spec in PUBSUB:
        assert spec.delivery is not None
        got = pushes[suite.push_subscription_name(spec)]
        assert got["dead_letter_topic"] == spec.delivery.dead_letter_topic(SETTINGS)
        assert got["max_delivery_attempts"] == spec.delivery.max_delivery_attempts
        # The emulator's retry policy strands messages: the host plays the backoff instead.
        assert got["backoff"] is None
    # Usage and the reset both dead-letter (the issue: the reset's subscription had none).
    assert pushes["reset-monthly-quotas-push"]["dead_letter_topic"] == "schedules-dead-letter"
    assert pushes["on-usage-event-push"]["max_delivery_attempts"] == 10
    # Each dead-letter topic keeps its messages for inspection.
    pulls = {s["name"] for s in pubsub.subscriptions if not s.get("push_endpoint")}
    assert {"usage-events-dead-letter-pull", "schedules-dead-letter-pull"} <= pulls


def test_backoff_doubles_from_the_minimum_to_the_maximum_and_scales() -> None:
    assert [USAGE_DELIVERY.backoff(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 320, 600]
    local = suite.local_delivery(by_name("on-usage-event"))
    assert local.max_delivery_attempts == USAGE_DELIVERY.max_delivery_attempts
    assert local.min_backoff_seconds == USAGE_DELIVERY.min_backoff_seconds / 100
    assert local.backoff(7) == 6.0


def _push_m1(wrapped: Any, times: int) -> None:
    """Deliver the same push of message `m1` `times` times, as the emulator redelivers it."""
    body = json.dumps({"message": {"data": "", "messageId": "m1"}, "subscription": "s"}).encode()
    for _ in range(times):
        environ = {
            "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)),
            "PATH_INFO": "/projects/demo-x/topics/usage-events",
        }
        wrapped(environ, lambda *a: None)


def test_the_host_holds_a_failed_answer_for_the_scaled_backoff() -> None:
    slept: list[float] = []
    backoff = Backoff(suite.local_delivery(by_name("on-usage-event")), sleep=slept.append)
    statuses = iter(["500 INTERNAL SERVER ERROR"] * 3 + ["204 NO CONTENT", "500 ERR"])

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(next(statuses), [])
        return [b""]

    _push_m1(pubsub_push("demo-x", app, backoff), times=5)
    # Attempts 1-3 failed: 0.1, 0.2, 0.4 s; acknowledged; a new failure starts again at 0.1 s.
    assert slept == [0.1, 0.2, 0.4, 0.1]


def test_the_host_numbers_each_delivery_as_production_push_does() -> None:
    backoff = Backoff(suite.local_delivery(by_name("on-usage-event")), sleep=lambda _: None)
    statuses = iter(["500 ERR", "500 ERR", "204 NO CONTENT"])
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(json.loads(environ["wsgi.input"].getvalue()).get("deliveryAttempt"))
        start_response(next(statuses), [])
        return [b""]

    _push_m1(pubsub_push("demo-x", app, backoff), times=3)
    assert seen == [1, 2, 3]
    # Not an envelope, or numbered already: passed on untouched.
    assert suite_push.with_delivery_attempt(b"[1]", backoff) == b"[1]"
    numbered = json.dumps({"message": {"messageId": "m2"}, "deliveryAttempt": 7}).encode()
    assert suite_push.with_delivery_attempt(numbered, backoff) == numbered
