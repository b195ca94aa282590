"""publish_usage_event with the real Pub/Sub emulator paused: one clear error within its timeout."""

from __future__ import annotations

import time

import pytest

from devstack.emulators import Emulators
from devstack.pubsub import PubSubHelper
from shared.errors import PublishError, is_transient
from shared.publisher import publish_usage_event
from shared.settings import get_settings


def publish(timeout: float) -> str:
    return publish_usage_event(
        customer_id="pub_outage_cust",
        scene_id="scene_kitchen_v2",
        action="scene_generated",
        timestamp="2025-01-10T14:30:00Z",
        event_id=f"pub-outage-{time.monotonic_ns()}",
        timeout=timeout,
    )


def test_paused_pubsub_fails_within_the_timeout_naming_the_topic(
    emulators: Emulators, pubsub: PubSubHelper
) -> None:
    settings = get_settings()
    pubsub.create_topic(settings.usage_events_topic)
    assert publish(timeout=10.0), "the emulator answers before the outage"
    timeout = 2.0
    emulators.pubsub.pause()  # SIGSTOP: connections are accepted, nothing answers
    try:
        start = time.monotonic()
        with pytest.raises(PublishError) as info:
            publish(timeout=timeout)
        elapsed = time.monotonic() - start
    finally:
        emulators.pubsub.resume()
    assert elapsed < timeout * 3, f"returned after {elapsed:.1f} s, timeout {timeout} s"
    text = str(info.value)
    assert f"topic {settings.usage_events_topic!r}" in text
    assert f"project {emulators.project!r}" in text
    assert f"PUBSUB_EMULATOR_HOST={emulators.pubsub_host}" in text
    assert is_transient(info.value)
    assert info.value.__suppress_context__, "one error, not the library's chained traceback"
    # Pub/Sub back: the same process publishes again (nothing left stuck in the client).
    assert publish(timeout=10.0)
