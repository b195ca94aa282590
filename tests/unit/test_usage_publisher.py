"""The producers' publisher: validates before sending, returns the message id."""

from __future__ import annotations

import json
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.errors import InvalidDocumentError
from shared.publisher import publish_usage_event
from shared.settings import load_settings


class FakeClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def publish(self, topic: str, data: bytes, **attributes: str) -> Future[str]:
        self.sent.append((topic, data, attributes))
        future: Future[str] = Future()
        future.set_result(f"id-{len(self.sent)}")
        return future


SETTINGS = load_settings(
    {"GOOGLE_CLOUD_PROJECT": "demo-usage", "BLUEPRINT_USAGE_EVENTS_TOPIC": "usage-ev"}
)


def test_publishes_validated_json_and_returns_the_message_id() -> None:
    client = FakeClient()
    message_id = publish_usage_event(
        customer_id="lab_001",
        scene_id="scene_kitchen_v2",
        action="episodes_generated",
        timestamp=datetime(2025, 1, 10, 14, 30, tzinfo=UTC),
        event_id="job-42",
        episodes_generated=100,
        compute_minutes=45.5,
        storage_gb=2.3,
        client=client,
        settings=SETTINGS,
    )
    assert message_id == "id-1"
    topic, data, attributes = client.sent[0]
    assert topic == "projects/demo-usage/topics/usage-ev"
    body: dict[str, Any] = json.loads(data)
    assert body == {
        "schema_version": 1,
        "event_id": "job-42",
        "customer_id": "lab_001",
        "scene_id": "scene_kitchen_v2",
        "action": "episodes_generated",
        "timestamp": "2025-01-10T14:30:00Z",
        "episodes_generated": 100,
        "compute_minutes": 45.5,
        "storage_gb": 2.3,
    }
    assert attributes == {"schema_version": "1", "customer_id": "lab_001", "event_id": "job-42"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("compute_minutes", -1.0), ("episodes_generated", -5), ("storage_gb", float("nan"))],
)
def test_invalid_event_is_refused_before_anything_is_sent(field: str, value: object) -> None:
    client = FakeClient()
    with pytest.raises(InvalidDocumentError) as info:
        publish_usage_event(
            customer_id="lab_001",
            scene_id="s",
            action="scene_generated",
            timestamp="2025-01-10T14:30:00Z",
            client=client,
            settings=SETTINGS,
            **{field: value},  # type: ignore[arg-type]
        )
    assert field in str(info.value)
    assert client.sent == []


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(InvalidDocumentError, match="timestamp"):
        publish_usage_event(
            customer_id="c",
            scene_id="s",
            action="scene_generated",
            timestamp=datetime(2025, 1, 10, 14, 30),  # noqa: DTZ001 - the point of the test
            client=FakeClient(),
            settings=SETTINGS,
        )


def test_without_a_client_it_uses_the_process_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    """No client of its own: the one `shared.clients.publisher_client()`, created once."""
    from google.cloud import pubsub_v1

    from shared import clients

    made: list[FakeClient] = []

    def build(**kwargs: Any) -> FakeClient:
        made.append(FakeClient())
        return made[-1]

    monkeypatch.setattr(pubsub_v1, "PublisherClient", build)
    clients.reset_clients()
    try:
        for event_id in ("e-1", "e-2"):
            publish_usage_event(
                customer_id="lab_001",
                scene_id="scene_kitchen_v2",
                action="episodes_generated",
                timestamp=datetime(2025, 1, 10, 14, 30, tzinfo=UTC),
                event_id=event_id,
                settings=SETTINGS,
            )
        assert len(made) == 1
        assert clients.publisher_client() is made[0]
        assert [attributes["event_id"] for _, _, attributes in made[0].sent] == ["e-1", "e-2"]
    finally:
        clients.reset_clients()


def test_an_attribute_over_pubsubs_limit_is_left_out_and_the_event_still_sent() -> None:
    # A customer id may be up to 1,500 bytes; Pub/Sub refuses an attribute value over 1,024.
    client = FakeClient()
    long_id = "c" * 1100
    publish_usage_event(
        customer_id=long_id,
        scene_id="scene_kitchen_v2",
        action="scene_generated",
        timestamp=datetime(2025, 1, 10, 14, 30, tzinfo=UTC),
        event_id="job-43",
        client=client,
        settings=SETTINGS,
    )
    _, data, attributes = client.sent[0]
    assert attributes == {"schema_version": "1", "event_id": "job-43"}
    assert json.loads(data)["customer_id"] == long_id
