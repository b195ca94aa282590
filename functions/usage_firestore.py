"""Real adapters of the usage service: Firestore repository and `quota-alerts` publisher.

I/O only; the rules live in `functions.usage`. Clients are created on first use (never at
import) with short, bounded deadlines (`settings.firestore_timeout_seconds`), so an unreachable
Firestore makes the call raise within seconds and Pub/Sub redelivers the message.
"""

from __future__ import annotations

import functools
import importlib
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

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


@dataclass(frozen=True, slots=True)
class _Protobufs:
    """Raw protobuf classes of the Firestore API and the constant parts of a usage commit."""

    Value: Any
    MapValue: Any
    ArrayValue: Any
    Timestamp: Any
    Document: Any
    Write: Any
    FieldTransform: Any
    Precondition: Any
    DocumentMask: Any
    CommitRequest: Any
    commit_request: Any
    """Wraps a raw CommitRequest for the GAPIC client (no copy)."""
    RECORDED_AT: Any
    MUST_NOT_EXIST: Any
    MUST_EXIST: Any
    EMPTY_MASK: Any


@functools.cache
def _protobufs() -> _Protobufs:
    """Loaded on first commit (import stays cheap: it is the cold start)."""
    from google.cloud.firestore_v1.types import common, document, firestore, write  # noqa: PLC0415

    timestamp_pb2: Any = importlib.import_module("google.protobuf.timestamp_pb2")

    transform = write.DocumentTransform.FieldTransform.pb()
    precondition = common.Precondition.pb()
    return _Protobufs(
        Value=document.Value.pb(),
        MapValue=document.MapValue.pb(),
        ArrayValue=document.ArrayValue.pb(),
        Timestamp=timestamp_pb2.Timestamp,
        Document=document.Document.pb(),
        Write=write.Write.pb(),
        FieldTransform=transform,
        Precondition=precondition,
        DocumentMask=common.DocumentMask.pb(),
        CommitRequest=firestore.CommitRequest.pb(),
        commit_request=firestore.CommitRequest.wrap,
        RECORDED_AT=transform(
            field_path="recorded_at", set_to_server_value=transform.ServerValue.REQUEST_TIME
        ),
        MUST_NOT_EXIST=precondition(exists=False),
        MUST_EXIST=precondition(exists=True),
        EMPTY_MASK=common.DocumentMask.pb()(field_paths=[]),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _timestamp(pb: _Protobufs, value: datetime) -> Any:
    """A Timestamp protobuf; keeps the nanoseconds of a server time as read (update guards)."""
    exact = getattr(value, "timestamp_pb", None)
    if exact is not None:
        return exact()
    delta = value - _EPOCH  # naive datetimes raise TypeError: refused as unstorable
    return pb.Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


_SCALARS: Final = {
    str: "string_value",
    bool: "boolean_value",
    int: "integer_value",
    float: "double_value",
}


def _value(pb: _Protobufs, value: Any) -> Any:
    """A Firestore Value protobuf, as `google.cloud.firestore_v1._helpers.encode_value` makes."""
    kind = type(value)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return pb.Value(**{scalar: value})
    if value is None:
        return pb.Value(null_value=0)
    if kind is dict:
        fields = {str(k): _value(pb, v) for k, v in value.items()}
        return pb.Value(map_value=pb.MapValue(fields=fields))
    if kind is list or kind is tuple:
        return pb.Value(array_value=pb.ArrayValue(values=[_value(pb, v) for v in value]))
    if isinstance(value, datetime):
        return pb.Value(timestamp_value=_timestamp(pb, value))
    for base, name in _SCALARS.items():  # subclasses (a StrEnum, an IntEnum): as their base
        if isinstance(value, base):
            return pb.Value(**{name: base(value)})
    raise TypeError(f"cannot store a {kind.__name__} in a usage record: {value!r:.80}")


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
        *,
        sets: Mapping[str, Any] | None = None,
    ) -> dict[FieldPath, int] | None:
        """ONE commit: create the record (+ recorded_at) and Increment the customer's counters
        (setting the top-level fields `sets` in the same write).

        The two writes are exactly what `WriteBatch.create` + `WriteBatch.update` send (an
        integration test compares both), built as raw protobufs: the client's generic builders
        cost about half the function's Firestore CPU per event.
        """
        from google.cloud.firestore_v1.field_path import FieldPath as FsPath  # noqa: PLC0415

        pb = _protobufs()
        client = self.client
        # Private client attributes, used exactly as WriteBatch.commit uses them (pinned client;
        # test_raw_commit_stores_what_the_client_stores guards the equivalence).
        documents = f"{client._database_string}/documents/"
        # The server answers transforms in the order sent; the client sorts them by field path.
        ordered = sorted((FsPath(*path), path) for path in increments)
        try:
            writes = [
                pb.Write(
                    update=pb.Document(
                        name=f"{documents}{self._settings.usage_tracking_collection}/{record_id}",
                        fields={key: _value(pb, value) for key, value in record.items()},
                    ),
                    update_transforms=[pb.RECORDED_AT],
                    current_document=pb.MUST_NOT_EXIST,
                )
            ]
            if ordered or sets:
                fields = {name: _value(pb, value) for name, value in (sets or {}).items()}
                mask = (
                    pb.DocumentMask(
                        field_paths=sorted(FsPath(name).to_api_repr() for name in fields)
                    )
                    if fields
                    else pb.EMPTY_MASK
                )
                writes.append(
                    pb.Write(
                        update=pb.Document(
                            name=f"{documents}{self._settings.customers_collection}/{customer_id}",
                            fields=fields,
                        ),
                        update_mask=mask,
                        update_transforms=[
                            pb.FieldTransform(
                                field_path=fs.to_api_repr(),
                                increment=pb.Value(integer_value=increments[path]),
                            )
                            for fs, path in ordered
                        ],
                        current_document=pb.MUST_EXIST
                        if precondition is None
                        else pb.Precondition(update_time=_timestamp(pb, precondition)),
                    )
                )
        except (TypeError, ValueError, OverflowError) as exc:  # a value protobuf cannot hold
            raise UnstorableRecordError(str(exc)) from exc
        request = pb.commit_request(
            pb.CommitRequest(database=client._database_string, writes=writes)
        )
        try:
            response = client._firestore_api.commit(
                request=request,
                metadata=client._rpc_metadata,
                **self._call(),
            )
        except gexc.AlreadyExists:
            return None
        except (gexc.FailedPrecondition, gexc.NotFound) as exc:
            raise CommitConflictError(str(exc)) from exc
        except gexc.InvalidArgument as exc:
            raise UnstorableRecordError(str(exc)) from exc
        if not ordered:
            return {}
        results = response._pb.write_results[1].transform_results
        if len(results) != len(ordered):
            raise RuntimeError(
                f"expected {len(ordered)} transform results from the commit, got {len(results)}"
            )
        out: dict[FieldPath, int] = {}
        for (_, path), value in zip(ordered, results, strict=True):
            # A legacy counter stored as a double comes back as one: still a count.
            kind = value.WhichOneof("value_type")
            if kind == "integer_value":
                out[path] = value.integer_value
            elif kind == "double_value" and math.isfinite(value.double_value):
                out[path] = int(value.double_value)
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
