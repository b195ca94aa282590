"""Small Pub/Sub helper over the real clients, for tests, the local suite and benchmarks.

Assumes `PUBSUB_EMULATOR_HOST` is set in the environment (the clients read it themselves).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import time
import uuid
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient
from google.cloud.pubsub_v1.types import PublisherOptions

from shared import names

_COUNTER = itertools.count(1)


@dataclasses.dataclass(frozen=True, slots=True)
class Received:
    """One pulled message."""

    data: bytes
    attributes: dict[str, str]
    message_id: str
    ordering_key: str
    delivery_attempt: int


class PubSubHelper:
    """Publisher/subscriber clients plus create/publish/pull helpers with unique names."""

    def __init__(self, project: str) -> None:
        self.project = project
        self._publisher: Any = None
        self._subscriber: Any = None
        self._prefix = f"t{os.getpid()}-{uuid.uuid4().hex[:6]}"

    @property
    def publisher(self) -> Any:
        """A PublisherClient with message ordering enabled (created on first use)."""
        if self._publisher is None:
            self._publisher = PublisherClient(
                publisher_options=PublisherOptions(enable_message_ordering=True)
            )
        return self._publisher

    @property
    def subscriber(self) -> Any:
        """A SubscriberClient (created on first use)."""
        if self._subscriber is None:
            self._subscriber = SubscriberClient()
        return self._subscriber

    def unique(self, stem: str) -> str:
        """A name nobody else in this run uses."""
        return f"{stem}-{self._prefix}-{next(_COUNTER)}"

    def topic_path(self, topic: str) -> str:
        """Full topic resource name."""
        return names.topic_path(self.project, topic)

    def subscription_path(self, subscription: str) -> str:
        """Full subscription resource name."""
        return names.subscription_path(self.project, subscription)

    def create_topic(self, topic: str | None = None) -> str:
        """Create the topic (a unique one when None) unless it exists; return its id."""
        topic = topic or self.unique("topic")
        with contextlib.suppress(gexc.AlreadyExists):
            self.publisher.create_topic(request={"name": self.topic_path(topic)})
        return topic

    def create_subscription(
        self,
        topic: str,
        subscription: str | None = None,
        *,
        ordering: bool = False,
        ack_deadline_seconds: int = 10,
        push_endpoint: str | None = None,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int = 5,
        backoff: tuple[float, float] | None = None,
    ) -> str:
        """Create a (pull, or push when `push_endpoint`) subscription on `topic`; return its id.

        `backoff`: (min, max) seconds of the retry policy (None: the emulator's default, a
        redelivery about once a second)."""
        subscription = subscription or self.unique("sub")
        request: dict[str, Any] = {
            "name": self.subscription_path(subscription),
            "topic": self.topic_path(topic),
            "ack_deadline_seconds": ack_deadline_seconds,
            "enable_message_ordering": ordering,
        }
        if push_endpoint:
            request["push_config"] = {"push_endpoint": push_endpoint}
        if dead_letter_topic:
            request["dead_letter_policy"] = {
                "dead_letter_topic": self.topic_path(dead_letter_topic),
                "max_delivery_attempts": max_delivery_attempts,
            }
        if backoff is not None:
            request["retry_policy"] = {
                "minimum_backoff": _duration(backoff[0]),
                "maximum_backoff": _duration(backoff[1]),
            }
        with contextlib.suppress(gexc.AlreadyExists):
            self.subscriber.create_subscription(request=request)
        return subscription

    def publish(
        self, topic: str, data: bytes | str, ordering_key: str = "", **attributes: str
    ) -> str:
        """Publish one message and wait for its id."""
        payload = data.encode() if isinstance(data, str) else data
        future = self.publisher.publish(
            self.topic_path(topic), payload, ordering_key=ordering_key, **attributes
        )
        return str(future.result(timeout=30))

    def pull(
        self, subscription: str, count: int = 1, deadline: float = 10.0, *, ack: bool = True
    ) -> list[Received]:
        """Pull until `count` messages arrived or `deadline` seconds passed (an emulator's pull
        right after a publish can come back empty, so this loops)."""
        got: list[Received] = []
        path = self.subscription_path(subscription)
        end = time.monotonic() + deadline
        while len(got) < count and time.monotonic() < end:
            try:
                response = self.subscriber.pull(
                    request={"subscription": path, "max_messages": min(1000, count - len(got))},
                    timeout=max(0.5, min(2.0, end - time.monotonic())),
                )
            except (gexc.DeadlineExceeded, gexc.RetryError):
                continue
            ack_ids = []
            for item in response.received_messages:
                msg = item.message
                got.append(
                    Received(
                        data=bytes(msg.data),
                        attributes=dict(msg.attributes),
                        message_id=str(msg.message_id),
                        ordering_key=str(msg.ordering_key),
                        delivery_attempt=int(item.delivery_attempt),
                    )
                )
                ack_ids.append(item.ack_id)
            if ack and ack_ids:
                self.subscriber.acknowledge(request={"subscription": path, "ack_ids": ack_ids})
            if not response.received_messages:
                time.sleep(0.05)
        return got

    def drain(self, subscription: str, quiet: float = 1.0) -> list[Received]:
        """Pull everything until nothing arrives for `quiet` seconds."""
        got: list[Received] = []
        while True:
            batch = self.pull(subscription, count=1000, deadline=quiet)
            if not batch:
                return got
            got.extend(batch)

    def close(self) -> None:
        """Stop the clients' background threads."""
        if self._publisher is not None:
            self._publisher.stop()
            self._publisher = None
        if self._subscriber is not None:
            self._subscriber.close()
            self._subscriber = None


def _duration(seconds: float) -> dict[str, int]:
    """A protobuf Duration as the client's dict form."""
    whole = int(seconds)
    return {"seconds": whole, "nanos": round((seconds - whole) * 1e9)}
