"""Requests functions-framework cannot parse before the function runs.

A Firestore-trigger body nested ~1000 levels (JSON content type, or protobuf as the local relay
sends it) made functions-framework's CloudEvent parse raise RecursionError: a 500 before the
function ran, so the platform redelivered it until its retry window ended. Now the function
gets the raw bytes and refuses them (acknowledged, one ERROR line); a request that is no
CloudEvent at all is a 400, in `functions/main.py`'s apps and in the devstack functions host.
"""

from __future__ import annotations

from typing import Any

import functions_framework
import pytest
from werkzeug.test import Client

from devstack.functions_host import InvocationLog, build_app
from functions.config import entry as config_entry
from functions.config.entry import REFUSED
from functions.usage import entry as usage_entry
from functions.usage.service import UsageService
from tests.limits_support import FakePublisher, FakeStamper, captured_logs
from tests.unit.test_config_triggers import MAIN, load
from tests.usage_support import FakeRepository

CONFIG_TARGETS = ["on_customer_written", "on_scene_written", "on_feature_flags_written"]
DEEP = {
    "deep-array": b"[" * 1000 + b"]" * 1000,
    "deep-unclosed": b"[" * 1000,
    "deep-object": b'{"a":' * 1000 + b"1" + b"}" * 1000,
}
NOT_CLOUD_EVENTS = {
    "structured-deep": ({"content-type": "application/cloudevents+json"}, b"[" * 1000),
    "no-ce-headers-deep": ({"content-type": "application/json"}, b'{"a":' * 1000),
    "structured-list": ({"content-type": "application/cloudevents+json"}, b"[1]"),
}


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeStamper, FakePublisher]:
    stamper, publisher = FakeStamper(), FakePublisher()
    monkeypatch.setattr(config_entry, "_STAMPER", stamper)
    monkeypatch.setattr(config_entry, "_PUBLISHER", publisher)
    return stamper, publisher


def _client(target: str) -> Any:
    return functions_framework.create_app(target, str(MAIN), "cloudevent").test_client()


@pytest.mark.parametrize("content_type", ["application/json", "application/protobuf"])
@pytest.mark.parametrize("body", list(DEEP.values()), ids=list(DEEP))
@pytest.mark.parametrize("target", CONFIG_TARGETS)
def test_a_deeply_nested_trigger_body_is_refused_and_acknowledged(
    fakes: tuple[FakeStamper, FakePublisher], target: str, body: bytes, content_type: str
) -> None:
    stamper, publisher = fakes
    headers, _ = load("customer_create")
    headers["Content-Type"] = content_type
    with captured_logs() as lines:
        response = _client(target).post("/", headers=headers, data=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    [error] = lines.error_records()
    assert getattr(error, "fields", {})["decision"] == REFUSED
    assert headers["ce-id"] in error.getMessage()
    assert "DocumentEventData" in error.getMessage()
    assert (stamper.calls, publisher.messages) == ([], [])


@pytest.mark.parametrize("name", list(NOT_CLOUD_EVENTS))
def test_a_request_that_is_no_cloud_event_is_a_400_not_a_500(
    fakes: tuple[FakeStamper, FakePublisher], name: str
) -> None:
    headers, body = NOT_CLOUD_EVENTS[name]
    response = _client("on_customer_written").post("/", headers=headers, data=body)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert fakes[0].calls == []


def test_a_deep_pubsub_body_reaches_the_usage_function_as_a_bad_envelope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = FakeRepository()
    monkeypatch.setattr(usage_entry, "default_service", lambda: UsageService(repo))
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "deep-1",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/usage-events",
        "content-type": "application/json",
    }
    response = _client("on_usage_event").post("/", headers=headers, data=b"[" * 1000)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    [doc] = repo.rejections.values()
    assert doc["kind"] == "bad_envelope"
    assert doc["payload_bytes"] == 1000


def test_a_type_error_of_the_function_itself_still_answers_500(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The handler catches TypeError only where functions-framework raised it: one raised by
    the function (a bug; Pub/Sub redelivers, then dead-letters) keeps its 500."""

    def broken() -> UsageService:
        raise TypeError("a bug")

    monkeypatch.setattr(usage_entry, "default_service", broken)
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "bug-1",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/usage-events",
        "content-type": "application/json",
    }
    body = b'{"message": {"data": "e30=", "messageId": "1"}, "subscription": "s"}'
    response = _client("on_usage_event").post("/", headers=headers, data=body)
    assert response.status_code == 500


def test_the_devstack_host_answers_bad_envelopes_400_and_deep_bodies_200(
    fakes: tuple[FakeStamper, FakePublisher],
) -> None:
    client = Client(build_app("http://127.0.0.1:9", InvocationLog(echo=False), project="p"))
    for name, (headers, body) in NOT_CLOUD_EVENTS.items():
        answer = client.post("/on-customer-written/", headers=headers, data=body)
        assert answer.status_code == 400, name
    no_headers = client.post("/on-scene-written/", json={"x": 1})
    assert no_headers.status_code == 400
    headers, _ = load("customer_create")
    headers["Content-Type"] = "application/json"
    deep = client.post("/on-customer-written/", headers=headers, data=DEEP["deep-object"])
    assert deep.status_code == 200
    assert fakes[0].calls == []
