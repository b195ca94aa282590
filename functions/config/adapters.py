"""Firestore stamper and Pub/Sub invalidation publisher: I/O only, clients from shared.clients."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from functions.config.ports import StampOutcome
from shared.clients import Lazy, bounded_retry, firestore_client, publisher_client
from shared.errors import classify

PUBLISH_TIMEOUT_SECONDS: Final = 30.0
"""How long a publish may wait for Pub/Sub's answer before the event is redelivered."""


def _timeout() -> float:
    from shared.settings import get_settings  # noqa: PLC0415 -- keep import cheap

    return get_settings().firestore_timeout_seconds


class FirestoreStamper:
    """`Stamper` over google-cloud-firestore."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        """The Firestore client (the process's shared one unless a test passed its own)."""
        if self._client is None:
            from shared.settings import get_settings  # noqa: PLC0415

            self._client = firestore_client(get_settings().project_id)
        return self._client

    def stamp(
        self,
        document: str,
        fields: Mapping[str, datetime | None],
        last_update_time: datetime | None,
    ) -> StampOutcome:
        """Update only `fields` (None: SERVER_TIMESTAMP), if the doc exists at that version."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415 -- lazy, cold start
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        client = self.client
        option = (
            client.write_option(last_update_time=last_update_time)
            if last_update_time is not None
            else client.write_option(exists=True)
        )
        values = {
            name: SERVER_TIMESTAMP if value is None else value for name, value in fields.items()
        }
        try:
            client.document(document).update(values, option=option, timeout=_timeout())
        except gexc.NotFound:
            return StampOutcome.GONE
        except gexc.FailedPrecondition:
            # Either deleted or changed since the event; a read tells which (cheap, rare).
            return StampOutcome.STALE if self.current(document) is not None else StampOutcome.GONE
        except Exception as exc:
            raise classify(exc, f"Firestore: stamping {document}") from exc
        return StampOutcome.STAMPED

    def current(self, document: str) -> tuple[dict[str, Any], datetime] | None:
        """The document's data and update time now (None when it does not exist)."""
        timeout = _timeout()
        try:
            snapshot = self.client.document(document).get(
                retry=bounded_retry(timeout), timeout=timeout
            )
        except Exception as exc:
            raise classify(exc, f"Firestore: reading {document}") from exc
        if not snapshot.exists:
            return None
        return dict(snapshot.to_dict() or {}), snapshot.update_time


class PubSubInvalidationPublisher:
    """`InvalidationPublisher` over google-cloud-pubsub, message ordering enabled."""

    def __init__(self, client: Any = None, topic: str | None = None) -> None:
        self._client = client
        self._topic = topic

    @property
    def client(self) -> Any:
        """The PublisherClient (the process's shared ordering one unless a test passed its own)."""
        if self._client is None:
            # One message per invocation, and the handler waits for it: a batch window would
            # only add its delay to every event.
            self._client = publisher_client(ordering=True, max_latency=0.0)
        return self._client

    @property
    def topic(self) -> str:
        """Full topic path of `config-invalidations` (from settings)."""
        if self._topic is None:
            from shared.names import topic_path  # noqa: PLC0415
            from shared.settings import get_settings  # noqa: PLC0415

            settings = get_settings()
            self._topic = topic_path(settings.project_id, settings.config_invalidations_topic)
        return self._topic

    def publish(self, data: bytes, ordering_key: str, attributes: Mapping[str, str]) -> str:
        """Publish and wait; a failure resumes the ordering key and raises (classified)."""
        client = self.client
        try:
            future = client.publish(self.topic, data, ordering_key=ordering_key, **attributes)
            return str(future.result(timeout=PUBLISH_TIMEOUT_SECONDS))
        except Exception as exc:
            if ordering_key:
                client.resume_publish(self.topic, ordering_key)
            raise classify(exc, f"Pub/Sub: publishing to {self.topic}") from exc


STAMPER: Final = Lazy(FirestoreStamper)
"""The process-wide stamper (its client is created on first use)."""
PUBLISHER: Final = Lazy(PubSubInvalidationPublisher)
"""The process-wide invalidation publisher (its client is created on first use)."""
