"""Dead letters end to end on the emulators: policies as deployed (backoff scaled), a real
dead-lettering recorded once, the reset's dead letters, the host's own answers."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from devstack.emulators import free_port, http
from devstack.push import LOCAL_BACKOFF_SCALE, push_subscription_name
from functions.table import FUNCTIONS, TriggerKind
from shared import names


def _wait(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _dead_letters(suite: Any, field: str, value: str) -> list[dict[str, Any]]:
    query = suite.firestore.collection(suite.settings.usage_rejections_collection).where(
        filter=FieldFilter(field, "==", value)
    )
    return [d.to_dict() for d in query.stream(timeout=10) if d.get("kind") == "dead_letter"]


def test_every_push_subscription_has_the_tables_policy(local_suite: Any) -> None:
    suite = local_suite
    for spec in FUNCTIONS:
        if spec.trigger is not TriggerKind.PUBSUB:
            continue
        assert spec.delivery is not None
        got = suite.pubsub.subscriber.get_subscription(
            request={"subscription": suite.pubsub.subscription_path(push_subscription_name(spec))}
        )
        dead = spec.delivery.dead_letter_topic(suite.settings)
        if dead is None:
            assert not got.dead_letter_policy.dead_letter_topic
        else:
            assert got.dead_letter_policy.dead_letter_topic == names.topic_path(suite.project, dead)
            assert got.dead_letter_policy.max_delivery_attempts == (
                spec.delivery.max_delivery_attempts
            )
        # No emulator retry policy (it strands messages); the host plays the scaled backoff.
        assert not got.retry_policy.maximum_backoff.total_seconds()
        assert LOCAL_BACKOFF_SCALE == 100


def test_a_message_pubsub_gives_up_on_is_recorded_once(local_suite: Any) -> None:
    suite = local_suite
    topic = suite.pubsub.create_topic()
    # Nobody listens on that port: every delivery fails, as with a dead functions host.
    source = suite.pubsub.create_subscription(
        topic,
        push_endpoint=f"http://127.0.0.1:{free_port()}/nothing",
        dead_letter_topic=suite.settings.usage_events_dead_letter_topic,
        max_delivery_attempts=5,
    )
    cid = f"dl_{uuid.uuid4().hex[:8]}"
    body = json.dumps({"customer_id": cid, "event_id": "e1", "action": "scene_generated"})
    mark = suite.mark()
    suite.publish(topic, body, origin="drill")

    docs = _wait(lambda: _dead_letters(suite, "source_subscription", source), timeout=60)
    assert len(docs) == 1
    doc = docs[0]
    assert doc["customer_id"] == cid
    assert doc["event_id"] == "e1"
    assert json.loads(doc["payload"]) == json.loads(body)
    assert doc["attributes"] == {"origin": "drill"}
    assert doc["delivery_attempts"] == 5
    assert doc["source_project"] == suite.project
    assert doc["publish_time"] is not None
    assert doc["rejected_at"] is not None

    recorded = suite.wait_for(
        lambda items: any(i["decision"] == "dead-letter-recorded" for i in items),
        since=mark,
    )
    invocation = next(i for i in recorded if i["function"] == "record-dead-letters")
    # Redelivery of the same dead letter: nothing written again.
    again = suite.replay(invocation)
    assert again["decision"] == "dead-letter-already-recorded"
    assert len(_dead_letters(suite, "source_subscription", source)) == 1


def test_a_reset_dead_letter_lands_under_its_months_audit(local_suite: Any) -> None:
    suite = local_suite
    mark = suite.mark()
    period = f"19{uuid.uuid4().int % 90 + 10}-01"  # a month no real reset touches
    attrs = {
        "CloudPubSubDeadLetterSourceSubscription": "reset-monthly-quotas-push",
        "CloudPubSubDeadLetterSourceSubscriptionProject": suite.project,
        "CloudPubSubDeadLetterSourceDeliveryCount": "10",
        "CloudPubSubDeadLetterSourceTopicPublishTime": "2026-12-01T00:00:00.100Z",
    }
    body = json.dumps({"job": names.QUOTA_RESET_JOB, "period": period})
    suite.publish(suite.settings.schedules_dead_letter_topic, body, **attrs)
    fold = {**attrs, "CloudPubSubDeadLetterSourceSubscription": "usage-fold-push"}
    suite.publish(suite.settings.schedules_dead_letter_topic, "{}", **fold)

    audit = suite.firestore.collection(suite.settings.quota_resets_collection).document(period)
    stored = _wait(
        lambda: [d.to_dict() for d in audit.collection(names.QUOTA_RESET_DEAD_LETTERS).stream()],
        timeout=30,
    )
    assert len(stored) == 1
    assert stored[0]["source_subscription"] == "reset-monthly-quotas-push"
    assert stored[0]["delivery_attempts"] == 10
    assert not audit.get().exists  # the reset's own audit document is never created by this
    seen = suite.wait_for(
        lambda items: any(i["decision"] == "dead-letter-logged" for i in items), since=mark
    )
    assert any(i["function"] == "record-schedule-dead-letters" for i in seen)


def test_the_host_hands_a_malformed_push_to_the_function_and_refuses_a_bad_since(
    local_suite: Any,
) -> None:
    suite = local_suite
    status, answer = http("GET", f"{suite.host_url}/_devstack/invocations?since=abc")
    assert status == 400
    assert b"since='abc'" in answer
    mark = suite.mark()
    topic = suite.settings.usage_events_topic
    url = f"{suite.function_url('on-usage-event')}/projects/{suite.project}/topics/{topic}"
    status, answer = http("POST", url, json.dumps({"message": "hi"}).encode(), timeout=30)
    assert status < 300, answer[:300]
    (invocation,) = suite.invocations(since=mark, function="on-usage-event")
    assert invocation["status"] < 300
    assert invocation["decision"].startswith("rejected")  # the function classified it
