"""Pub/Sub push in the local suite: subscriptions from the table's delivery policies, and the
host side (push -> Eventarc's CloudEvent, the retry backoff the emulator cannot play)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final

from devstack.emulators import EmulatorError
from functions.table import FUNCTIONS, PUBSUB_PUBLISHED, DeliveryPolicy, FunctionSpec, TriggerKind
from shared import times as shared_times

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

LOCAL_BACKOFF_SCALE: Final = 100.0
"""The local suite divides each subscription's retry backoff by this (production's 10-600 s
becomes 0.1-6 s); attempts and dead-letter topics are production's. The functions host applies
it (the emulator's own retry policy strands messages: docs/local-suite.md)."""
PUSH_ACK_DEADLINE: Final = 60
DEAD_LETTER_SUBSCRIPTION: Final = "usage-events-dead-letter-pull"
"""Pull subscription on the usage dead-letter topic, so dead letters are kept for inspection
(each dead-letter topic gets one: `<topic>-pull`)."""


def push_subscription_name(spec: FunctionSpec) -> str:
    """Name of the push subscription that feeds a Pub/Sub-triggered function."""
    return f"{spec.name}-push"


def local_delivery(spec: FunctionSpec) -> DeliveryPolicy:
    """The table's delivery policy of a Pub/Sub function, backoff scaled for the local suite."""
    if spec.delivery is None:
        raise EmulatorError(
            f"{spec.name}: a Pub/Sub function needs `delivery=` in functions/table.py "
            "(every subscription has a retry and dead-letter policy)"
        )
    return spec.delivery.scaled(LOCAL_BACKOFF_SCALE)


def dead_letter_pull_subscription(topic: str) -> str:
    """The pull subscription that keeps a dead-letter topic's messages for inspection."""
    return f"{topic}-pull"


def create_topics_and_subscriptions(suite: Any) -> None:
    """Every topic; a push subscription per Pub/Sub function with its delivery policy (backoff
    scaled, `local_delivery`); a pull subscription keeping each dead-letter topic's messages."""
    settings = suite.settings
    for topic in settings.all_topics():
        suite.pubsub.create_topic(topic)
    for spec in FUNCTIONS:
        fn_topic = spec.topic(settings)
        if spec.trigger is not TriggerKind.PUBSUB or fn_topic is None:
            continue
        policy = local_delivery(spec)
        dead_letter = policy.dead_letter_topic(settings)
        if dead_letter is not None:
            suite.pubsub.create_subscription(
                dead_letter, dead_letter_pull_subscription(dead_letter)
            )
        suite.pubsub.create_subscription(
            fn_topic,
            push_subscription_name(spec),
            ack_deadline_seconds=PUSH_ACK_DEADLINE,
            # Topic path in the URL so the CloudEvent's source names the topic, as in production.
            push_endpoint=f"{suite.function_url(spec.name)}/projects/{suite.project}/topics/{fn_topic}",
            dead_letter_topic=dead_letter,
            max_delivery_attempts=policy.max_delivery_attempts,
            # No retry policy on the emulator: with one, a burst of failed pushes leaves some
            # messages never redelivered nor dead-lettered (measured: 147-402 of 800 stranded
            # after the endpoint was down 8 s). The host holds a failed answer for the scaled
            # backoff instead (`devstack.push.Backoff`).
            backoff=None,
        )


_PUSH_TOPIC_RE = re.compile(r"projects/[^/]+/topics/[^/]+")


def push_to_cloud_event(environ: dict[str, Any], project: str) -> None:
    """Turn a Pub/Sub push request (any body) into a binary-mode CloudEvent, in place.

    As Eventarc does in production: id = `message.messageId`, source = the topic (from the push
    URL), type = messagePublished, time = `message.publishTime`, data = the envelope as it came.
    A body that is not a usable envelope still becomes an event (id derived from the bytes, so
    a redelivery has the same id): the function decides what it is, never this host.
    """
    if environ.get("HTTP_CE_SPECVERSION") or "cloudevents" in str(environ.get("CONTENT_TYPE")):
        return  # already a CloudEvent (a replay, or a test posting one)
    body: bytes = environ["wsgi.input"].getvalue()
    envelope: Any = None
    try:
        envelope = json.loads(body)
    except ValueError:
        pass
    except RecursionError:
        # The CloudEvents SDK would crash parsing it (500 before the function runs): send the
        # same text as a JSON string, which the function's decoder receives as that text.
        text = json.dumps(body.decode("utf-8", errors="replace")).encode()
        environ["wsgi.input"] = io.BytesIO(text)
        environ["CONTENT_LENGTH"] = str(len(text))
    message = envelope.get("message") if isinstance(envelope, dict) else None
    message = message if isinstance(message, dict) else {}
    message_id = message.get("messageId") or message.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        message_id = "push-" + hashlib.sha256(body).hexdigest()[:24]
    published = message.get("publishTime") or message.get("publish_time")
    if not isinstance(published, str) or shared_times.parse_rfc3339(published) is None:
        published = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    match = _PUSH_TOPIC_RE.search(str(environ.get("PATH_INFO", "")))
    topic = match.group(0) if match else f"projects/{project}/topics/unknown"
    environ.update(
        {
            "HTTP_CE_SPECVERSION": "1.0",
            "HTTP_CE_ID": message_id,
            "HTTP_CE_SOURCE": f"//pubsub.googleapis.com/{topic}",
            "HTTP_CE_TYPE": PUBSUB_PUBLISHED,
            "HTTP_CE_TIME": published,
            "CONTENT_TYPE": "application/json",
        }
    )


class Backoff:
    """Pub/Sub's retry backoff, played by the host for one function's subscription.

    The emulator's own retry policy strands messages after a burst of failures, so the suite
    sets none and the host holds each failed answer for the policy's (scaled) backoff of that
    message's attempt, counted here (the push envelope carries no delivery attempt). While the
    host is down the emulator's plain retry, about once a second, applies.
    """

    def __init__(
        self,
        policy: DeliveryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        keep: int = 10_000,
    ) -> None:
        self.policy = policy
        self._sleep = sleep
        self._keep = keep
        self._failures: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def failed(self, message_id: str) -> float:
        """Count a failed attempt and wait its backoff; returns the seconds waited."""
        with self._lock:
            attempt = self._failures.pop(message_id, 0) + 1
            self._failures[message_id] = attempt
            while len(self._failures) > self._keep:
                self._failures.popitem(last=False)
        delay = self.policy.backoff(attempt)
        self._sleep(delay)
        return delay

    def attempt(self, message_id: str) -> int:
        """The attempt this delivery of `message_id` is, as far as this host saw (1 + its
        failed answers; the emulator's retries while the host was down are not seen)."""
        with self._lock:
            return self._failures.get(message_id, 0) + 1

    def succeeded(self, message_id: str) -> None:
        """Forget a message once acknowledged."""
        with self._lock:
            self._failures.pop(message_id, None)


def with_delivery_attempt(body: bytes, backoff: Backoff) -> bytes:
    """The push envelope with `deliveryAttempt`, as production's push sends it on a
    subscription with a dead-letter policy (the emulator's envelope lacks it: measured). Any
    other body, or one that has it already, is returned as it came."""
    if not body.startswith(b"{"):
        return body
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):
        return body
    message = envelope.get("message") if isinstance(envelope, dict) else None
    message_id = message.get("messageId") if isinstance(message, dict) else None
    if not isinstance(message_id, str) or not message_id or "deliveryAttempt" in envelope:
        return body
    envelope["deliveryAttempt"] = backoff.attempt(message_id)
    return json.dumps(envelope).encode()


def pubsub_push(project: str, app: WsgiApp, backoff: Backoff | None = None) -> WsgiApp:
    """Wrap a Pub/Sub function's app: push requests arrive as Eventarc's CloudEvents, and a
    failed answer is held for the backoff (see `Backoff`)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length else b""
        if backoff is not None:
            body = with_delivery_attempt(body, backoff)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        push_to_cloud_event(environ, project)
        status: list[int] = [500]

        def capture(line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = int(line.split(" ", 1)[0])
            return start_response(line, headers, exc_info)

        result = list(app(environ, capture))
        if backoff is not None:
            message_id = str(environ.get("HTTP_CE_ID", ""))
            if status[0] >= 300:
                backoff.failed(message_id)
            else:
                backoff.succeeded(message_id)
        return result

    return wrapped
