"""Real adapters of the fold: Firestore repository and `quota-alerts` publisher (I/O only)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from functions.fold.ports import (
    Commit,
    CommitConflictError,
    CustomerState,
    Marker,
    NewRecord,
    Snapshot,
    Watermark,
)
from shared import names, queries
from shared.clients import FirestoreAdapter, bounded_retry, publisher_client
from shared.counters import (
    MONTH_KEY_FIELD,
    RECORDED_AT_FIELD,
    SUMMED_RECORD_FIELDS,
    Sums,
    counter_doc_id,
    record_sums,
    split_counter_doc_id,
)
from shared.errors import TransientError, classify, is_transient, status_name
from shared.firestore_values import server_timestamp
from shared.settings import Settings

CLOSE_DOC: Final = "months"
"""`usage_fold_state/months`: the month close's state (beside the buckets' documents)."""


def _failed(exc: Exception, what: str, index: str) -> Exception:
    """A query's failure, classified. A missing or still-building index (a deploy before its
    index) is transient: the next fold can read once it is built; nothing is ever skipped."""
    if status_name(exc) == "FAILED_PRECONDITION":
        return TransientError(
            f"{what}: the composite index {index} of firestore.indexes.json is missing or not "
            f"built yet: {exc}"
        )
    return classify(exc, what)


def _new_record(snap: Any) -> NewRecord | None:
    """A scanned record as the port's NewRecord; None for one the fold cannot place (the usage
    function always writes these fields: a hand-made record)."""
    data = snap.to_dict() or {}
    split = split_counter_doc_id(str(data.get(MONTH_KEY_FIELD, "")))
    recorded_at = data.get(RECORDED_AT_FIELD)
    if split is None or not isinstance(recorded_at, datetime):
        return None
    return NewRecord(split[0], split[1], record_sums(data), recorded_at)


class FirestoreFoldRepository(FirestoreAdapter):
    """`FoldRepository` over google-cloud-firestore."""

    def _summary(self, customer_id: str, month: str) -> Any:
        collection = self.client.collection(self._settings.usage_counters_collection)
        return collection.document(counter_doc_id(customer_id, month))

    def _alerts(self) -> Any:
        return self.client.collection(self._settings.quota_alerts_collection)

    def _customer(self, customer_id: str) -> Any:
        return self.client.collection(self._settings.customers_collection).document(customer_id)

    def _state(self, doc_id: str) -> Any:
        return self.client.collection(self._settings.usage_fold_state_collection).document(doc_id)

    def read_watermarks(self, buckets: Sequence[int]) -> list[Watermark]:
        refs = [self._state(str(b)) for b in buckets]
        snaps = {s.reference.id: s for s in self.client.get_all(refs, **self._call())}
        out = []
        for bucket in buckets:
            snap = snaps[str(bucket)]
            value = (snap.to_dict() or {}).get("watermark") if snap.exists else None
            mark = value if isinstance(value, datetime) else None
            token = snap.update_time if snap.exists else None
            out.append(Watermark(bucket, mark, token, snap.read_time))
        return out

    def scan_records(
        self, bucket: int, after: datetime | None, upto: datetime, page_size: int, read_time: Any
    ) -> Iterator[list[NewRecord]]:
        cursor = None
        while True:
            query = queries.new_records(
                self.client,
                bucket,
                after,
                upto,
                limit=page_size,
                cursor=cursor,
                settings=self._settings,
            )
            try:
                snaps = list(query.stream(read_time=read_time, **self._call()))
            except Exception as exc:
                raise _failed(
                    exc, f"scan of fold bucket {bucket}", "(fold_bucket, recorded_at)"
                ) from exc
            page = [r for r in map(_new_record, snaps) if r is not None]
            if page:
                yield page
            if len(snaps) < page_size:
                return
            cursor = snaps[-1]

    def set_watermark(self, watermark: Watermark, value: datetime) -> bool:
        data = {"bucket": watermark.bucket, "watermark": value, "folded_at": server_timestamp()}
        ref = self._state(str(watermark.bucket))
        return self._guarded_set(ref, data, watermark.token) is not None

    def read_close(self) -> Snapshot | None:
        snap = self._state(CLOSE_DOC).get(**self._call())
        return Snapshot(snap.to_dict() or {}, snap.update_time) if snap.exists else None

    def set_close(self, data: Mapping[str, Any], token: Any) -> Any:
        return self._guarded_set(self._state(CLOSE_DOC), dict(data), token)

    def _guarded_set(self, ref: Any, data: dict[str, Any], token: Any) -> Any:
        from google.api_core import exceptions as gexc  # noqa: PLC0415 - lazy: cold start

        try:
            if token is None:
                result = ref.create(data, **self._call())
            else:
                option = self.client.write_option(last_update_time=token)
                result = ref.update(data, option=option, **self._call())
        except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound):
            return None
        except Exception as exc:
            raise classify(exc, f"write {ref.path}") from exc
        return result.update_time

    def count_month(self, customer_id: str, month: str, upto: datetime) -> Sums:
        """Count and sums of the month's records with `recorded_at <= upto`: two aggregation
        requests (count + 4 sums, then the last sum)."""
        key = counter_doc_id(customer_id, month)
        query = queries.month_records(self.client, key, upto, settings=self._settings)
        try:
            return queries.aggregate(query, SUMMED_RECORD_FIELDS, **self._call())
        except Exception as exc:
            raise _failed(exc, f"count {key}", "(fold_key, recorded_at, cost_cents, ...)") from exc

    def month_summaries(self, month: str, after: str | None, limit: int) -> list[str]:
        query = queries.month_summaries(
            self.client, month, limit=limit, after=after, settings=self._settings
        )
        return [s.id for s in query.select([]).stream(**self._call())]

    def read_state(self, customer_id: str, months: Sequence[str]) -> CustomerState:
        refs = [self._customer(customer_id)] + [self._summary(customer_id, m) for m in months]
        found = {s.reference.path: s for s in self.client.get_all(refs, **self._call())}
        snaps = [found.get(ref.path) for ref in refs]
        read = [
            Snapshot(s.to_dict() or {}, s.update_time) if s and s.exists else None for s in snaps
        ]
        return CustomerState(read[0], dict(zip(months, read[1:], strict=True)))

    def commit(self, commit: Commit) -> None:
        """One WriteBatch: summaries (create or guarded update), customer (guarded), markers."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415 - lazy: cold start

        client = self.client
        batch = client.batch()
        stamp = server_timestamp()
        for summary in commit.summaries:
            ref = self._summary(commit.customer_id, summary.month)
            data = dict(summary.data)
            if summary.token is None:
                batch.create(ref, data)
            else:
                batch.update(ref, data, option=client.write_option(last_update_time=summary.token))
        if commit.customer is not None:
            ref = self._customer(commit.customer_id)
            fields = dict(commit.customer.fields)
            if commit.customer.stamp_reset:
                fields["quota_reset_at"] = stamp
            batch.update(
                ref, fields, option=client.write_option(last_update_time=commit.customer.token)
            )
        for alert_id, marker in commit.markers:
            batch.create(self._alerts().document(alert_id), {**marker, "created_at": stamp})
        try:
            batch.commit(**self._call())
        except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound) as exc:
            raise CommitConflictError(str(exc)) from exc
        except Exception as exc:
            raise classify(exc, f"fold commit of customer {commit.customer_id}") from exc

    def pending_markers(self, limit: int) -> list[Marker]:
        query = queries.pending_alerts(self.client, limit=limit, settings=self._settings)
        return [
            Marker(s.id, s.to_dict() or {}, s.update_time) for s in query.stream(**self._call())
        ]

    def claim_marker(self, marker: Marker, changes: Mapping[str, Any]) -> bool:
        ref = self._alerts().document(marker.alert_id)
        return self._guarded_set(ref, dict(changes), marker.update_time) is not None

    def update_marker(self, alert_id: str, changes: Mapping[str, Any]) -> None:
        """Update a marker (+ `published_at` when it becomes published)."""
        ref = self._alerts().document(alert_id)
        data = dict(changes)
        if data.get("state") == "published":
            data["published_at"] = server_timestamp()
        ref.update(data, **self._call())

    def existing_markers(self, alert_ids: Sequence[str]) -> set[str]:
        refs = [self._alerts().document(a) for a in alert_ids]
        return {s.id for s in self.client.get_all(refs, **self._call()) if s.exists}


class PubSubAlertPublisher:
    """`AlertPublisher` over google-cloud-pubsub, on `settings.quota_alerts_topic`."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self._settings = settings
        self._client = client
        self._topic = names.topic_path(settings.project_id, settings.quota_alerts_topic)

    def publish_alert(self, data: bytes, attributes: Mapping[str, str]) -> str:
        client = self._client or publisher_client()
        timeout = self._settings.firestore_timeout_seconds
        future = client.publish(
            self._topic, data, retry=bounded_retry(timeout), timeout=timeout, **attributes
        )
        try:
            return str(future.result(timeout=timeout * 2))
        except Exception as exc:
            if is_transient(exc):
                raise
            raise classify(exc, f"publishing to {self._topic}") from exc
