"""Retry and dead-letter policy as data: the table holds it, the suite and the deploy read it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from devstack import suite
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
        factor = suite.LOCAL_BACKOFF_SCALE
        assert got["backoff"] == (
            spec.delivery.min_backoff_seconds / factor,
            spec.delivery.max_backoff_seconds / factor,
        )
    # Usage and the reset both dead-letter (the issue: the reset's subscription had none).
    assert pushes["reset-monthly-quotas-push"]["dead_letter_topic"] == "schedules-dead-letter"
    assert pushes["on-usage-event-push"]["max_delivery_attempts"] == 10
    # Each dead-letter topic keeps its messages for inspection.
    pulls = {s["name"] for s in pubsub.subscriptions if not s.get("push_endpoint")}
    assert {"usage-events-dead-letter-pull", "schedules-dead-letter-pull"} <= pulls
