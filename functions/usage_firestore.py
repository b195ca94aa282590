"""Real adapters of the usage service: Firestore repository and `quota-alerts` publisher.

I/O only; the rules live in `functions.usage`. Clients are created on first use (never at
import) with short, bounded deadlines (`settings.firestore_timeout_seconds`), so an unreachable
Firestore makes the call raise within seconds and Pub/Sub redelivers the message.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type

from functions.usage import (
    AlertMarker,
    CommitConflictError,
    CustomerDocument,
    FieldPath,
    UnstorableRecordError,
)
from shared import logs, names
from shared.settings import Settings

_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.Aborted,
    gexc.ResourceExhausted,
)


def bounded_retry(timeout: float) -> Retry:
    """Retry transient errors with backoff, never longer than `timeout` in all."""
    return Retry(
        predicate=if_exception_type(*_TRANSIENT),
        initial=0.05,
        maximum=1.0,
        multiplier=2.0,
        timeout=timeout,
    )


class FirestoreUsageRepository:
    """`UsageRepository` over google-cloud-firestore."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = threading.Lock()
        self._timeout = settings.firestore_timeout_seconds
        self._retry = bounded_retry(self._timeout)

    @property
    def client(self) -> Any:
        """The Firestore client, created on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from google.cloud import firestore  # noqa: PLC0415 - lazy: cold start

                    self._client = firestore.Client(project=self._settings.project_id)
        return self._client

    def _call(self) -> dict[str, Any]:
        return {"retry": self._retry, "timeout": self._timeout}

    def _doc(self, collection: str, doc_id: str) -> Any:
        return self.client.collection(collection).document(doc_id)

    def get_customer(self, customer_id: str) -> CustomerDocument | None:
        """Plain read of `customers/{id}`."""
        snap = self._doc(self._settings.customers_collection, customer_id).get(**self._call())
        if not snap.exists:
            return None
        return CustomerDocument(snap.to_dict() or {}, snap.update_time)

    def commit_usage(
        self,
        record_id: str,
        record: Mapping[str, Any],
        customer_id: str,
        increments: Mapping[FieldPath, int],
        precondition: Any | None,
    ) -> dict[FieldPath, int] | None:
        """ONE WriteBatch: create the record + Increment the customer's counters."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP, Increment  # noqa: PLC0415
        from google.cloud.firestore_v1._helpers import decode_value  # noqa: PLC0415
        from google.cloud.firestore_v1.field_path import FieldPath as FsPath  # noqa: PLC0415

        client = self.client
        batch = client.batch()
        record_ref = self._doc(self._settings.usage_tracking_collection, record_id)
        try:
            batch.create(record_ref, {**record, "recorded_at": SERVER_TIMESTAMP})
            # The client sends (and the server answers) transforms sorted by field path.
            ordered = sorted((FsPath(*path), path) for path in increments)
            if ordered:
                update = {fs.to_api_repr(): Increment(increments[path]) for fs, path in ordered}
                option = (
                    client.write_option(last_update_time=precondition)
                    if precondition is not None
                    else None
                )
                customer_ref = self._doc(self._settings.customers_collection, customer_id)
                batch.update(customer_ref, update, option=option)
        except (TypeError, ValueError) as exc:  # the client could not encode the record
            raise UnstorableRecordError(str(exc)) from exc
        try:
            results = batch.commit(**self._call())
        except gexc.AlreadyExists:
            return None
        except (gexc.FailedPrecondition, gexc.NotFound) as exc:
            raise CommitConflictError(str(exc)) from exc
        except gexc.InvalidArgument as exc:
            raise UnstorableRecordError(str(exc)) from exc
        if not ordered:
            return {}
        values = [decode_value(v, client) for v in results[1].transform_results]
        if len(values) != len(ordered):
            raise RuntimeError(
                f"expected {len(ordered)} transform results from the commit, got {len(values)}"
            )
        out: dict[FieldPath, int] = {}
        for (_, path), value in zip(ordered, values, strict=True):
            # A legacy counter stored as a double comes back as one: still a count.
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[path] = int(value)
        return out

    def store_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create `usage_rejections/{doc_id}` once."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        ref = self._doc(self._settings.usage_rejections_collection, doc_id)
        try:
            ref.create({**data, "rejected_at": SERVER_TIMESTAMP}, **self._call())
        except gexc.AlreadyExists:
            return False
        except gexc.InvalidArgument as exc:
            # Keep what a person needs even if Firestore refuses a part (e.g. odd attributes).
            logs.error(
                "rejection document refused by Firestore; storing a reduced one",
                collection=self._settings.usage_rejections_collection,
                document=doc_id,
                error=str(exc),
            )
            keep = ("schema_version", "message_id", "kind", "reason", "payload_bytes")
            reduced = {k: data[k] for k in keep if k in data}
            try:
                ref.create({**reduced, "rejected_at": SERVER_TIMESTAMP}, **self._call())
            except gexc.AlreadyExists:
                return False
        return True

    def create_alert_marker(self, alert_id: str, data: Mapping[str, Any]) -> bool:
        """Create `quota_alerts/{alert_id}` once."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        ref = self._doc(self._settings.quota_alerts_collection, alert_id)
        try:
            ref.create({**data, "created_at": SERVER_TIMESTAMP}, **self._call())
        except gexc.AlreadyExists:
            return False
        return True

    def get_alert_marker(self, alert_id: str) -> AlertMarker | None:
        """Read `quota_alerts/{alert_id}`."""
        snap = self._doc(self._settings.quota_alerts_collection, alert_id).get(**self._call())
        if not snap.exists:
            return None
        return AlertMarker(snap.to_dict() or {}, snap.update_time)

    def take_over_alert_marker(self, alert_id: str, changes: Mapping[str, Any], token: Any) -> bool:
        """Update the marker only if it is unchanged since it was read."""
        ref = self._doc(self._settings.quota_alerts_collection, alert_id)
        option = self.client.write_option(last_update_time=token)
        try:
            ref.update(dict(changes), option=option, **self._call())
        except (gexc.FailedPrecondition, gexc.NotFound):
            return False
        return True

    def mark_alert_published(self, alert_id: str, changes: Mapping[str, Any]) -> None:
        """Set the marker's state to published."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        ref = self._doc(self._settings.quota_alerts_collection, alert_id)
        ref.update({**changes, "published_at": SERVER_TIMESTAMP}, **self._call())


class PubSubAlertPublisher:
    """`AlertPublisher` over google-cloud-pubsub, publishing to `settings.quota_alerts_topic`."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = threading.Lock()
        self._topic = names.topic_path(settings.project_id, settings.quota_alerts_topic)
        self._retry = bounded_retry(settings.firestore_timeout_seconds)

    @property
    def client(self) -> Any:
        """The PublisherClient, created on first use."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from google.cloud.pubsub_v1 import (  # noqa: PLC0415 - lazy: cold start
                        PublisherClient,
                    )

                    self._client = PublisherClient()
        return self._client

    def publish_alert(self, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish and wait for the message id (bounded)."""
        timeout = self._settings.firestore_timeout_seconds
        future = self.client.publish(
            self._topic, data, retry=self._retry, timeout=timeout, **attributes
        )
        return str(future.result(timeout=timeout * 2))
