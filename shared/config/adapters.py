"""I/O adapters of CustomerConfigService: Firestore batch reads, the invalidation stream.

They report facts (documents read, messages decoded, errors classified by `shared.errors`);
the service decides what to answer. Clients come from `shared.clients`, created on first use,
so import of this module stays cheap.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import uuid
from collections.abc import Sequence
from typing import Any, Final

from shared import logs, names
from shared.clients import firestore_client, subscriber_client
from shared.config.ports import DocKey, FetchedDoc, OnInvalidation, OnReset
from shared.errors import classify, is_transient, status_name
from shared.invalidation import parse_invalidation
from shared.settings import Settings, get_settings


class FirestoreConfigReader:
    """`ConfigReader` over google-cloud-firestore: one `get_all` = one BatchGetDocuments RPC."""

    def __init__(self, settings: Settings | None = None, client: Any = None) -> None:
        self._settings = settings or get_settings()
        self._client = client

    @property
    def client(self) -> Any:
        """The Firestore client: the one given, else the process's (created on first use)."""
        if self._client is None:
            self._client = firestore_client(self._settings.project_id)
        return self._client

    def get_documents(self, keys: Sequence[DocKey], timeout: float) -> dict[DocKey, FetchedDoc]:
        """Read every key in one round trip, no retries, within `timeout` seconds.

        Any failure is raised as `shared.errors.classify` sees it: TransientError when a retry
        may succeed, PermanentError when it cannot.
        """
        client = self.client
        refs = [client.collection(c).document(d) for c, d in keys]
        out: dict[DocKey, FetchedDoc] = {}
        try:
            for snap in client.get_all(refs, retry=None, timeout=timeout):
                key = (snap.reference.parent.id, snap.reference.id)
                data = snap.to_dict() if snap.exists else None
                out[key] = FetchedDoc(data, snap.update_time if snap.exists else None)
        except Exception as exc:
            raise classify(exc, f"Firestore read of {len(keys)} documents") from exc
        for key in keys:
            out.setdefault(key, FetchedDoc(None))
        return out


MAX_REOPEN_DELAY: Final = 60.0
"""Longest wait, in seconds, between two attempts to reopen a lost invalidation stream."""


def _subscription_id(prefix: str) -> str:
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:24].strip("-") or "host"
    return f"{prefix}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class PubSubInvalidationFeed:
    """Streaming pull on a subscription of its own to `config-invalidations`.

    The subscription is created on `start()` (it expires by itself a day after its owner died)
    and deleted on `close()`. Any stream error calls `on_reset`: the stream reconnects, and the
    cache must be dropped because messages may have been missed meanwhile.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        prefix: str = "config-cache",
        reconnect_delay: float = 1.0,
        subscriber: Any = None,
    ) -> None:
        self._settings = settings or get_settings()
        self._prefix = prefix
        self._delay = reconnect_delay
        self._subscriber = subscriber
        self._future: Any = None
        self._closing = False
        self._lock = threading.Lock()
        self._on_message: OnInvalidation | None = None
        self._on_reset: OnReset | None = None
        self.subscription: str | None = None

    @property
    def topic_path(self) -> str:
        """Full name of the invalidation topic."""
        return names.topic_path(
            self._settings.project_id, self._settings.config_invalidations_topic
        )

    def start(self, on_message: OnInvalidation, on_reset: OnReset) -> None:
        """Create the subscription and open the stream."""
        if self._subscriber is None:
            self._subscriber = subscriber_client()
        self._on_message, self._on_reset = on_message, on_reset
        self.subscription = names.subscription_path(
            self._settings.project_id, _subscription_id(self._prefix)
        )
        self._create_subscription()
        self._open()

    def _create_subscription(self) -> None:
        try:
            self._subscriber.create_subscription(
                request={
                    "name": self.subscription,
                    "topic": self.topic_path,
                    "ack_deadline_seconds": 10,
                    "expiration_policy": {"ttl": {"seconds": 86400}},
                    "message_retention_duration": {"seconds": 600},
                },
                timeout=30,
            )
        except Exception as exc:
            if status_name(exc) != "ALREADY_EXISTS":  # it exists: that is what we wanted
                raise classify(exc, f"creating subscription {self.subscription}") from exc

    def _open(self) -> None:
        from google.cloud.pubsub_v1.subscriber import futures  # noqa: PLC0415
        from google.cloud.pubsub_v1.subscriber._protocol import (  # noqa: PLC0415
            streaming_pull_manager as spm,
        )
        from google.cloud.pubsub_v1.types import FlowControl  # noqa: PLC0415

        feed = self

        class _Manager(spm.StreamingPullManager):  # type: ignore[misc]
            # The client reopens the stream by itself after a retryable error: hear about it.
            def _should_recover(self, exception: BaseException) -> bool:
                recover = bool(super()._should_recover(exception))
                if recover and not feed._closing:
                    feed._reset(f"stream error {type(exception).__name__}, reconnected")
                return recover

        manager = _Manager(
            self._subscriber, self.subscription, flow_control=FlowControl(max_messages=1000)
        )
        future = futures.StreamingPullFuture(manager)
        manager.open(callback=self._callback, on_callback_error=future.set_exception)
        future.add_done_callback(self._stream_done)
        with self._lock:
            self._future = future

    def _callback(self, message: Any) -> None:
        try:
            decoded = parse_invalidation(bytes(message.data), dict(message.attributes))
            if self._on_message is not None:
                self._on_message(decoded)
        finally:
            message.ack()

    def _reset(self, why: str) -> None:
        if self._on_reset is not None:
            self._on_reset(why)

    def _stream_done(self, future: Any) -> None:
        if self._closing:
            return
        exc = future.exception() if not future.cancelled() else None
        self._reset(f"stream stopped ({exc!r}); reopening")
        self._reopen_later(self._delay)

    def _reopen_later(self, delay: float) -> None:
        timer = threading.Timer(delay, self._reopen, args=(delay,))
        timer.daemon = True
        timer.start()

    def _reopen(self, delay: float) -> None:
        if self._closing:
            return
        try:
            self._create_subscription()  # it may have been deleted (NotFound ended the stream)
            self._open()
            # What was read while no stream ran may have missed a change: read it again.
            self._reset("stream reopened")
        except Exception as exc:
            # Backoff, bounded: a topic that is gone (permanent) is tried again rarely, not
            # every second; the cache meanwhile relies on its TTL.
            wait = min(max(delay, 1.0) * 2, MAX_REOPEN_DELAY)
            kind = "will retry" if is_transient(exc) else "a retry may not help"
            logs.warning(
                f"invalidation stream reopen failed ({kind}): {exc!r}; next try in {wait:.0f} s",
                component="config_service",
            )
            self._reopen_later(wait)

    def close(self) -> None:
        """Cancel the stream and delete the subscription (the client is the process's shared
        one and stays open)."""
        self._closing = True
        with self._lock:
            future = self._future
        if future is not None:
            future.cancel()
            with contextlib.suppress(Exception):
                future.result(timeout=10)
        if self._subscriber is not None and self.subscription:
            with contextlib.suppress(Exception):
                self._subscriber.delete_subscription(
                    request={"subscription": self.subscription}, timeout=10
                )
