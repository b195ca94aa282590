"""Real adapter of the usage service: Firestore (I/O only; the service decides).

The client comes from `shared.clients` (created on first use, never at import); every call has
the deadline `settings.firestore_timeout_seconds` and a bounded retry of transient codes within
it; errors come out classified by `shared.errors.classify` (TransientError -> Pub/Sub
redelivers). The usage commit is built as raw protobufs (see `commit_usage`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from functions.usage.ports import (
    ContentionError,
    CustomerDocument,
    ShardIncrement,
    StoredRecord,
    UnstorableRecordError,
)
from shared import clients, logs, names
from shared.counters import FLAG_AT_FIELD, TOUCHED_AT_FIELD
from shared.errors import classify, is_transient, status_name
from shared.settings import Settings

_SHARD_META: Final = ("customer_id", "fold_bucket", "month")
_STORED_FIELDS: Final = ("payload_sha256", "recorded_at", FLAG_AT_FIELD)
"""Plain fields of a shard write, sorted (the merge mask)."""


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
    CommitRequest: Any
    commit_request: Any
    """Wraps a raw CommitRequest for the GAPIC client (no copy)."""
    RECORDED_AT: Any
    UPDATED_AT: Any
    TOUCHED_AT: Any
    MUST_NOT_EXIST: Any
    SHARD_MASK: Any


@functools.cache
def _protobufs() -> _Protobufs:
    """Loaded on first commit (import stays cheap: it is the cold start)."""
    from google.cloud.firestore_v1.types import common, document, firestore, write  # noqa: PLC0415

    timestamp_pb2: Any = importlib.import_module("google.protobuf.timestamp_pb2")
    transform = write.DocumentTransform.FieldTransform.pb()
    request_time = transform.ServerValue.REQUEST_TIME
    return _Protobufs(
        Value=document.Value.pb(),
        MapValue=document.MapValue.pb(),
        ArrayValue=document.ArrayValue.pb(),
        Timestamp=timestamp_pb2.Timestamp,
        Document=document.Document.pb(),
        Write=write.Write.pb(),
        FieldTransform=transform,
        CommitRequest=firestore.CommitRequest.pb(),
        commit_request=firestore.CommitRequest.wrap,
        RECORDED_AT=transform(field_path="recorded_at", set_to_server_value=request_time),
        UPDATED_AT=transform(field_path="updated_at", set_to_server_value=request_time),
        TOUCHED_AT=transform(field_path=TOUCHED_AT_FIELD, set_to_server_value=request_time),
        MUST_NOT_EXIST=common.Precondition.pb()(exists=False),
        SHARD_MASK=common.DocumentMask.pb()(field_paths=list(_SHARD_META)),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCALARS: Final = {
    str: "string_value",
    bool: "boolean_value",
    int: "integer_value",
    float: "double_value",
}


def _timestamp(pb: _Protobufs, value: datetime) -> Any:
    """A Timestamp protobuf (keeps the nanoseconds of a server time as read)."""
    exact = getattr(value, "timestamp_pb", None)
    if exact is not None:
        return exact()
    delta = value - _EPOCH  # naive datetimes raise TypeError: refused as unstorable
    return pb.Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


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


def _retry_commit(exc: BaseException) -> bool:
    return is_transient(exc) and status_name(exc) != "ABORTED"


class FirestoreUsageRepository(clients.FirestoreAdapter):
    """`UsageRepository` over google-cloud-firestore."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        super().__init__(settings, client)
        self._retry = clients.bounded_retry(self._timeout)
        # The usage commit does not retry ABORTED on the same shard: the service picks another.
        self._commit_retry = self._retry.with_predicate(_retry_commit)

    def _call(self) -> dict[str, Any]:
        return {"retry": self._retry, "timeout": self._timeout}

    def _doc(self, collection: str, doc_id: str) -> Any:
        return self.client.collection(collection).document(doc_id)

    def get_customer(self, customer_id: str) -> CustomerDocument | None:
        """Plain read of `customers/{id}`."""
        ref = self._doc(self._settings.customers_collection, customer_id)
        try:
            snap = ref.get(**self._call())
        except Exception as exc:
            raise classify(
                exc, f"read {self._settings.customers_collection}/{customer_id}"
            ) from exc
        if not snap.exists:
            return None
        return CustomerDocument(snap.to_dict() or {})

    def shard_path(self, counter: ShardIncrement) -> str:
        """`usage_counters/{customer}_{month}/shards/{k}` under the configured collection."""
        from shared.counters import counter_doc_id  # noqa: PLC0415 - tiny, keeps imports local

        summary = counter_doc_id(counter.customer_id, counter.month)
        collection = self._settings.usage_counters_collection
        return f"{collection}/{summary}/{names.USAGE_COUNTER_SHARDS}/{counter.shard}"

    def commit_usage(
        self, record_id: str, record: Mapping[str, Any], counter: ShardIncrement | None
    ) -> bool:
        """ONE commit: create the record (+ recorded_at) and merge-Increment one shard.

        The two writes are exactly what `WriteBatch.create` + `WriteBatch.set(merge=True)` with
        `Increment`s and `SERVER_TIMESTAMP` send (an integration test compares what both
        store), built as raw protobufs: the client's generic builders cost about half the
        function's client CPU per event. The shard write needs no read and no precondition.
        """
        return self.commit_batch([(record_id, record)], counter)

    def commit_batch(
        self, records: Sequence[tuple[str, Mapping[str, Any]]], counter: ShardIncrement | None
    ) -> bool:
        """ONE commit: create every record and merge-Increment one shard by `counter` (no
        shard write when it is None)."""
        return self._commit(records, counter) is not None

    def commit_record(self, record_id: str, record: Mapping[str, Any]) -> datetime | None:
        """Create the record alone; its commit time (= its `recorded_at`)."""
        return self._commit([(record_id, record)], None)

    def touch_shard(self, counter: ShardIncrement) -> None:
        """Merge the shard with `counter`'s (zero) increments, a new `updated_at` and the same
        `touched_at` (the fold tells a touch from an increment by it)."""
        self._commit([], counter, touch=True)

    def _commit(
        self,
        records: Sequence[tuple[str, Mapping[str, Any]]],
        counter: ShardIncrement | None,
        *,
        touch: bool = False,
    ) -> datetime | None:
        pb = _protobufs()
        client = self.client
        # Private client attributes, used exactly as WriteBatch.commit uses them (pinned client;
        # test_raw_commit_stores_what_the_client_stores guards the equivalence).
        database = client._database_string
        documents = f"{database}/documents/"
        tracking = f"{documents}{self._settings.usage_tracking_collection}/"
        try:
            writes = [
                pb.Write(
                    update=pb.Document(
                        name=f"{tracking}{record_id}",
                        fields={key: _value(pb, value) for key, value in record.items()},
                    ),
                    update_transforms=[pb.RECORDED_AT],
                    current_document=pb.MUST_NOT_EXIST,
                )
                for record_id, record in records
            ]
            if counter is not None:
                writes.append(self._shard_write(pb, documents, counter, touch=touch))
        except (TypeError, ValueError, OverflowError) as exc:  # a value protobuf cannot hold
            raise UnstorableRecordError(str(exc)) from exc
        request = pb.commit_request(pb.CommitRequest(database=database, writes=writes))
        try:
            response = client._firestore_api.commit(
                request=request,
                metadata=client._rpc_metadata,
                retry=self._commit_retry,
                timeout=self._timeout,
            )
        except Exception as exc:
            name = status_name(exc)
            if name == "ALREADY_EXISTS":
                return None
            if name == "INVALID_ARGUMENT":
                raise UnstorableRecordError(str(exc)) from exc
            if name == "ABORTED":
                raise ContentionError(f"usage commit: {exc}") from exc
            first = records[0][0] if records else "?"
            raise classify(exc, f"usage commit of {first} ({len(records)} records)") from exc
        committed: datetime = response.commit_time
        return committed

    def _shard_write(
        self, pb: _Protobufs, documents: str, counter: ShardIncrement, *, touch: bool = False
    ) -> Any:
        increments = [
            *(
                pb.FieldTransform(field_path=name, increment=pb.Value(integer_value=amount))
                for name, amount in counter.ints.items()
            ),
            *(
                pb.FieldTransform(field_path=name, increment=pb.Value(double_value=amount))
                for name, amount in counter.floats.items()
            ),
        ]
        increments.sort(key=lambda t: t.field_path)  # as the client orders them
        return pb.Write(
            update=pb.Document(
                name=f"{documents}{self.shard_path(counter)}",
                fields={
                    "customer_id": pb.Value(string_value=counter.customer_id),
                    "fold_bucket": pb.Value(integer_value=counter.fold_bucket),
                    "month": pb.Value(string_value=counter.month),
                },
            ),
            update_mask=pb.SHARD_MASK,
            update_transforms=[*increments, *([pb.TOUCHED_AT] if touch else []), pb.UPDATED_AT],
        )

    def get_stored_record(self, record_id: str) -> StoredRecord | None:
        """`payload_sha256`, `recorded_at`, `fold_flag_at` of `usage_tracking/{record_id}`
        (one read of three fields)."""
        collection = self._settings.usage_tracking_collection
        ref = self._doc(collection, record_id)
        try:
            snap = ref.get(field_paths=[*_STORED_FIELDS], **self._call())
        except Exception as exc:
            raise classify(exc, f"read {collection}/{record_id}") from exc
        if not snap.exists:
            return None
        data = snap.to_dict() or {}
        digest, recorded_at, flag_at = (data.get(name) for name in _STORED_FIELDS)
        return StoredRecord(
            digest if isinstance(digest, str) else None,
            recorded_at if isinstance(recorded_at, datetime) else None,
            flag_at if isinstance(flag_at, datetime) else None,
        )

    def store_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create `usage_rejections/{doc_id}` once."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        collection = self._settings.usage_rejections_collection
        ref = self._doc(collection, doc_id)
        try:
            ref.create({**data, "rejected_at": SERVER_TIMESTAMP}, **self._call())
        except Exception as exc:
            name = status_name(exc)
            if name == "ALREADY_EXISTS":
                return False
            if name != "INVALID_ARGUMENT":
                raise classify(exc, f"store {collection}/{doc_id}") from exc
            # Keep what a person needs even if Firestore refuses a part (e.g. odd attributes).
            logs.error(
                "rejection document refused by Firestore; storing a reduced one",
                collection=collection,
                document=doc_id,
                error=str(exc),
            )
            keep = ("schema_version", "message_id", "kind", "reason", "payload_bytes")
            reduced = {k: data[k] for k in keep if k in data}
            try:
                ref.create({**reduced, "rejected_at": SERVER_TIMESTAMP}, **self._call())
            except Exception as again:
                if status_name(again) == "ALREADY_EXISTS":
                    return False
                raise classify(again, f"store {collection}/{doc_id}") from again
        return True


class FirestoreNoteStore(clients.FirestoreAdapter):
    """`NoteStore` over google-cloud-firestore: one `set(merge=True)`, no retry, short deadline."""

    def __init__(self, settings: Settings, client: Any | None = None, timeout: float = 2.0) -> None:
        super().__init__(settings, client, min(timeout, settings.firestore_timeout_seconds))

    def merge_note(self, doc_id: str, fields: Mapping[str, Any]) -> None:
        """Merge `fields` + `last_error_at` (server time) into `usage_rejections/{doc_id}`."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        ref = self.client.collection(self._settings.usage_rejections_collection).document(doc_id)
        ref.set(
            {**fields, "last_error_at": SERVER_TIMESTAMP},
            merge=True,
            retry=None,
            timeout=self._timeout,
        )
