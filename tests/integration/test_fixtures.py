"""The session fixtures talk to the real emulators and isolate tests."""

from __future__ import annotations

import os
from typing import Any

from devstack.emulators import Emulators
from devstack.pubsub import PubSubHelper
from shared.settings import get_settings


def test_environment_points_at_the_emulators(emulators: Emulators) -> None:
    settings = get_settings()
    assert settings.firestore_emulator_host == emulators.firestore_host
    assert settings.pubsub_emulator_host == emulators.pubsub_host
    assert settings.project_id == "demo-blueprint-test"
    assert os.environ["FIRESTORE_EMULATOR_HOST"] == emulators.firestore_host


def test_clean_firestore_empties_the_database(firestore_client: Any, emulators: Emulators) -> None:
    firestore_client.collection("harness_probe").document("a").set({"n": 1})
    assert firestore_client.collection("harness_probe").document("a").get().exists
    emulators.clear_firestore()
    assert not firestore_client.collection("harness_probe").document("a").get().exists


def test_pubsub_helper_publishes_and_pulls_in_order(pubsub: PubSubHelper) -> None:
    topic = pubsub.create_topic()
    sub = pubsub.create_subscription(topic, ordering=True)
    for i in range(5):
        pubsub.publish(topic, f"m{i}", ordering_key="k1", index=str(i))
    got = pubsub.pull(sub, count=5, deadline=15)
    assert [m.data for m in got] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [m.attributes["index"] for m in got] == ["0", "1", "2", "3", "4"]
    assert {m.ordering_key for m in got} == {"k1"}
    assert pubsub.pull(sub, count=1, deadline=1) == []
