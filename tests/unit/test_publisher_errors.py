"""The publisher's failures: one error naming topic, project and emulator host, never a hang."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from shared.errors import PermanentError, PublishError, TransientError, is_transient
from shared.publisher import DEFAULT_TIMEOUT, publish_usage_event
from shared.settings import load_settings

EMULATED = load_settings(
    {
        "GOOGLE_CLOUD_PROJECT": "demo-pub",
        "BLUEPRINT_USAGE_EVENTS_TOPIC": "usage-ev",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:8599",
    }
)
CLOUD = load_settings(
    {"GOOGLE_CLOUD_PROJECT": "demo-pub", "BLUEPRINT_USAGE_EVENTS_TOPIC": "usage-cloud"}
)


class StuckClient:
    """A publisher whose futures never resolve (Pub/Sub accepted the connection, never answers)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def publish(self, topic: str, data: bytes, **attributes: Any) -> Future[str]:
        self.calls.append({"topic": topic, **attributes})
        future: Future[str] = Future()
        if self.error is not None:
            future.set_exception(self.error)
        return future


def publish(client: Any, settings: Any = EMULATED, timeout: float = 0.2) -> str:
    return publish_usage_event(
        customer_id="lab_001",
        scene_id="scene_kitchen_v2",
        action="scene_generated",
        timestamp="2025-01-10T14:30:00Z",
        client=client,
        settings=settings,
        timeout=timeout,
    )


def test_no_answer_is_one_publish_error_naming_topic_project_and_emulator() -> None:
    with pytest.raises(PublishError) as info:
        publish(StuckClient())
    text = str(info.value)
    assert "'usage-ev'" in text
    assert "'demo-pub'" in text
    assert "PUBSUB_EMULATOR_HOST=127.0.0.1:8599" in text
    assert "no answer within 0.2 s" in text
    assert is_transient(info.value)
    # One error, not the library's chain: the traceback shows this line only.
    assert info.value.__suppress_context__
    assert info.value.__cause__ is None


def test_transient_library_error_becomes_publish_error() -> None:
    client = StuckClient(gexc.RetryError("Timeout of 0.2s exceeded", gexc.ServiceUnavailable("x")))
    with pytest.raises(PublishError, match=r"RetryError: Timeout of 0\.2s exceeded") as info:
        publish(client, CLOUD)
    assert "topic 'usage-cloud' of project 'demo-pub' on Pub/Sub:" in str(info.value)
    assert "EMULATOR" not in str(info.value)


def test_permanent_refusal_is_permanent_and_names_the_topic() -> None:
    client = StuckClient(gexc.NotFound("Topic not found"))
    with pytest.raises(PermanentError, match="NotFound: 404 Topic not found") as info:
        publish(client)
    assert not isinstance(info.value, TransientError)
    assert "'usage-ev'" in str(info.value)
    assert "is it running" not in str(info.value), "the emulator answered: no hint about it"


def test_the_default_timeout_is_ten_seconds_and_fakes_get_only_attributes() -> None:
    assert DEFAULT_TIMEOUT == 10.0
    client = StuckClient(gexc.ServiceUnavailable("down"))
    with pytest.raises(PublishError, match="gave up after 10 s"):
        publish_usage_event(
            customer_id="lab_001",
            scene_id="s",
            action="scene_generated",
            timestamp="2025-01-10T14:30:00Z",
            client=client,
            settings=EMULATED,
        )
    # retry/timeout go only to a real PublisherClient; a fake sees the message attributes.
    assert client.calls == [
        {
            "topic": "projects/demo-pub/topics/usage-ev",
            "schema_version": "1",
            "customer_id": "lab_001",
        }
    ]


def test_a_real_publisher_client_gets_a_bounded_retry_and_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from google.cloud.pubsub_v1 import PublisherClient

    seen: dict[str, Any] = {}

    def fake_publish(self: Any, topic: str, data: bytes, **kwargs: Any) -> Future[str]:
        seen.update(kwargs)
        future: Future[str] = Future()
        future.set_result("m1")
        return future

    monkeypatch.setattr(PublisherClient, "publish", fake_publish)
    client = PublisherClient.__new__(PublisherClient)  # no channel: publish is replaced
    assert publish(client, timeout=3.0) == "m1"
    assert seen["timeout"] == 3.0
    assert seen["retry"].timeout == 3.0, "the library's default retries for 600 s"
    assert seen["customer_id"] == "lab_001"


@pytest.mark.parametrize("timeout", [0.0, -1.0, float("nan")])
def test_a_timeout_that_is_not_positive_is_refused_before_sending(timeout: float) -> None:
    client = StuckClient()
    with pytest.raises(ValueError, match="expected seconds > 0"):
        publish(client, timeout=timeout)
    assert client.calls == []
