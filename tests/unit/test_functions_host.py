"""The local functions host answers bad requests itself only when they are its own (400), and
hands every Pub/Sub push, however malformed, to the function as Eventarc would."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from devstack.functions_host import InvocationLog, _DecisionHandler, build_app
from devstack.push import push_to_cloud_event
from functions.deadletter import entry
from functions.deadletter.service import DeadLetterService
from shared import logs
from tests.unit.test_dead_letters import FakeStore, envelope

PUSH_PATH = "/record-dead-letters/projects/demo-x/topics/usage-events-dead-letter"


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Client, FakeStore, InvocationLog]]:
    store = FakeStore()
    monkeypatch.setattr(entry, "default_service", lambda: DeadLetterService(store))
    log = InvocationLog(echo=False)
    handler = _DecisionHandler(log)
    logs.get_logger().addHandler(handler)
    try:
        yield Client(build_app("http://127.0.0.1:9", log, project="demo-x")), store, log
    finally:
        logs.get_logger().removeHandler(handler)


def test_invocations_with_a_bad_since_is_a_400_naming_it(host: Any) -> None:
    client, _, _ = host
    for bad in ("abc", "-1", "1.5", ""):
        answer = client.get(f"/_devstack/invocations?since={bad}")
        assert answer.status_code == 400, bad
        assert f"since={bad!r}" in answer.get_data(as_text=True)
        assert "non-negative integer" in answer.get_data(as_text=True)
    assert client.get("/_devstack/invocations?since=0").status_code == 200
    assert client.get("/_devstack/invocations").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"message": "hi"}).encode(),
        b'["x"]',
        b"not json",
        b"[" * 1000,
        b"",
        json.dumps({"message": {"data": "aGk=", "messageId": "7"}}).encode(),  # no subscription
    ],
    ids=["message-hi", "list", "not-json", "deep", "empty", "no-subscription"],
)
def test_a_malformed_push_reaches_the_function_and_is_acknowledged(host: Any, body: bytes) -> None:
    client, store, log = host
    answer = client.post(PUSH_PATH, data=body, content_type="application/json")
    assert answer.status_code < 300, answer.get_data(as_text=True)[:300]
    # The function ran and recorded it (the host did not answer for it).
    assert len(store.rejections) == 1
    (entry_,) = log.since(0)
    assert entry_["status"] < 300
    assert entry_["decision"] == "dead-letter-recorded"
    # Same bytes again (a redelivery): same event id, recorded once.
    client.post(PUSH_PATH, data=body, content_type="application/json")
    assert len(store.rejections) == 1
    assert log.since(1)[0]["event_id"] == entry_["event_id"]


def test_a_well_formed_push_becomes_eventarcs_cloud_event(host: Any) -> None:
    client, store, log = host
    push = envelope(b'{"customer_id": "c1"}')
    answer = client.post(PUSH_PATH, json=push)
    assert answer.status_code < 300
    (doc,) = store.rejections.values()
    assert doc["source_subscription"] == "on-usage-event-push"
    assert doc["dead_letter_message_id"] == "900"
    assert log.since(0)[0]["event_id"] == "900"
    assert log.since(0)[0]["document"] == "usage-events-dead-letter msg 900"


def test_push_conversion_keeps_the_whole_envelope() -> None:
    push: dict[str, Any] = {
        "subscription": "projects/p/subscriptions/s",
        "message": {"data": "", "messageId": "3"},
    }
    body = json.dumps(push).encode()
    environ: dict[str, Any] = {
        "wsgi.input": io.BytesIO(body),
        "PATH_INFO": "/projects/p/topics/t",
        "CONTENT_TYPE": "application/json",
    }
    push_to_cloud_event(environ, "p")
    assert environ["HTTP_CE_ID"] == "3"
    assert environ["HTTP_CE_SOURCE"] == "//pubsub.googleapis.com/projects/p/topics/t"
    assert environ["HTTP_CE_TYPE"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert environ["wsgi.input"].getvalue() == body  # subscription included, as Eventarc sends
    assert base64.b64decode(push["message"]["data"]) == b""
