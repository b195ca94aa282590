"""Real adapters of the fold: Firestore repository and `quota-alerts` publisher (I/O only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

from functions.fold import held_format
from functions.fold.ports import (
    Commit,
    CommitConflictError,
    CustomerState,
    HeldTally,
    Marker,
    Shard,
    Snapshot,
    TallyRecord,
    Watermark,
)
from shared import logs, names, queries
from shared.clients import FirestoreAdapter, bounded_retry, publisher_client
from shared.counters import (
    AGGREGATED_FLOAT_FIELDS,
    AGGREGATED_INT_FIELDS,
    FOLD_KEY_FIELD,
    SHARD_FLOAT_FIELDS,
    SHARD_INT_FIELDS,
    TOUCHED_AT_FIELD,
    counter_doc_id,
    record_counts,
    split_counter_doc_id,
)
from shared.errors import TransientError, classify, is_transient, status_name
from shared.firestore_values import server_timestamp
from shared.settings import Settings
from shared.times import month_of

T = TypeVar("T")


def _shard(snap: Any) -> Shard | None:
    """A shard snapshot as the port's Shard; None for a document that is not one."""
    data = snap.to_dict() or {}
    parent = snap.reference.parent.parent
    split = split_counter_doc_id(parent.id) if parent is not None else None
    customer_id = data.get("customer_id")
    month = data.get("month")
    if not isinstance(customer_id, str) or not isinstance(month, str):
        if split is None:
            return None
        customer_id, month = split
    updated_at = data.get("updated_at")
    if not isinstance(updated_at, datetime):
        return None
    bucket = data.get("fold_bucket")
    values = {
        k: data[k]
        for k in (*SHARD_INT_FIELDS, *SHARD_FLOAT_FIELDS)
        if isinstance(data.get(k), int | float)
    }
    return Shard(
        customer_id,
        month,
        snap.id,
        values,
        updated_at,
        bucket if isinstance(bucket, int) else 0,
        touched=data.get(TOUCHED_AT_FIELD) == updated_at,
    )


def _tally_record(snap: Any, bucket: int) -> TallyRecord | None:
    """A records-counted record as the port's TallyRecord; None for one the fold cannot
    place (no customer, timestamp or commit time: it could not have been written so)."""
    data = snap.to_dict() or {}
    customer_id = data.get("customer_id")
    timestamp = data.get("timestamp")
    recorded_at = data.get("recorded_at")
    if not isinstance(customer_id, str) or not isinstance(timestamp, datetime):
        return None
    if not isinstance(recorded_at, datetime):
        return None
    if isinstance(data.get(FOLD_KEY_FIELD), str):  # a flag: counted by aggregation
        return TallyRecord(customer_id, month_of(timestamp), {}, recorded_at, bucket, flag=True)
    ints, floats = record_counts(data)
    return TallyRecord(customer_id, month_of(timestamp), {**ints, **floats}, recorded_at, bucket)


_SUMS: Final = (*AGGREGATED_INT_FIELDS, *AGGREGATED_FLOAT_FIELDS)
_FIRST_REQUEST: Final = 4
"""Sums in the first aggregation request (Firestore takes at most 5 aggregations in one: the
count and 4 sums); the rest go in a second request over the same query."""


def _aggregate_value(name: str, value: Any) -> int | float:
    """A sum as the fold stores it: the integer counters as int (exact below 2^63; Firestore
    answers a double only past that), the amounts as float."""
    if name in AGGREGATED_FLOAT_FIELDS:
        return float(value or 0.0)
    return int(value or 0)


class FirestoreFoldRepository(FirestoreAdapter):
    """`FoldRepository` over google-cloud-firestore."""

    def _counters(self) -> Any:
        return self.client.collection(self._settings.usage_counters_collection)

    def _state(self, bucket: int) -> Any:
        return self.client.collection(self._settings.usage_fold_state_collection).document(
            str(bucket)
        )

    def read_watermarks(self, buckets: Sequence[int]) -> list[Watermark]:
        """`usage_fold_state/{b}` for each bucket, one get_all."""
        refs = [self._state(b) for b in buckets]
        snaps = {s.reference.id: s for s in self.client.get_all(refs, **self._call())}
        out = []
        for bucket in buckets:
            snap = snaps.get(str(bucket))
            read_time = getattr(snap, "read_time", None)
            if snap is None or not snap.exists:
                out.append(Watermark(bucket, None, None, read_time=read_time))
                continue
            data = snap.to_dict() or {}
            value, records = data.get("watermark"), data.get("records_watermark")
            stored = data.get("held")
            held, problems = held_format.decode(stored)
            for problem in problems:  # only the fold writes it: a bug or a hand edit
                logs.error(
                    f"fold bucket {bucket}: {problem}; that entry is ignored",
                    collection=self._settings.usage_fold_state_collection,
                    document=str(bucket),
                    field="held",
                )
            out.append(
                Watermark(
                    bucket,
                    value if isinstance(value, datetime) else None,
                    snap.update_time,
                    records=records if isinstance(records, datetime) else None,
                    read_time=read_time,
                    held=held,
                    held_bytes=len(stored.encode()) if isinstance(stored, str) else 0,
                )
            )
        return out

    def _pages(
        self,
        query_after: Callable[[Any], Any],
        parse: Callable[[Any], T | None],
        page_size: int,
        read_time: datetime | None = None,
    ) -> Iterator[list[T]]:
        """Pages of a query (one per `page_size`, cursor on the last snapshot), parsed; a
        snapshot `parse` cannot place is skipped."""
        cursor = None
        while True:
            snaps = list(query_after(cursor).stream(read_time=read_time, **self._call()))
            page = [item for item in (parse(snap) for snap in snaps) if item is not None]
            if page:
                yield page
            if len(snaps) < page_size:
                return
            cursor = snaps[-1]

    def scan_bucket(self, bucket: int, since: datetime, page_size: int) -> Iterator[list[Shard]]:
        """Pages of the bucket's changed shards (one query per page, cursor on the last)."""
        return self._pages(
            lambda cursor: queries.changed_shards(
                self.client, bucket, since, limit=page_size, after=cursor, settings=self._settings
            ),
            _shard,
            page_size,
        )

    def scan_records(
        self,
        bucket: int,
        after: datetime | None,
        upto: datetime,
        page_size: int,
        read_time: datetime | None = None,
    ) -> Iterator[list[TallyRecord]]:
        """Pages of the bucket's records-counted records in (after, upto], read at
        `read_time` (one snapshot for every page; None: each page reads the latest)."""
        return self._pages(
            lambda cursor: queries.tally_records(
                self.client,
                bucket,
                after,
                upto,
                limit=page_size,
                cursor=cursor,
                settings=self._settings,
            ),
            lambda snap: _tally_record(snap, bucket),
            page_size,
            read_time,
        )

    def count_month(
        self,
        customer_id: str,
        month: str,
        after: datetime | None,
        upto: datetime,
        *,
        scenes_only: bool = False,
    ) -> dict[str, int | float]:
        """Count and sums of the month's records counted from the records in (after, upto]:
        one aggregation request (scenes only), else two (count + 4 sums, then the last sum)."""
        query = queries.month_records(
            self.client, counter_doc_id(customer_id, month), after, upto, settings=self._settings
        )
        names_ = ("scenes_generated",) if scenes_only else _SUMS
        requests = [names_] if scenes_only else [names_[:_FIRST_REQUEST], names_[_FIRST_REQUEST:]]
        out: dict[str, int | float] = {}
        for n, fields in enumerate(requests):
            aggregation: Any = query.count(alias="records") if n == 0 and not scenes_only else None
            for name in fields:
                aggregation = (query if aggregation is None else aggregation).sum(name, alias=name)
            try:
                results: Any = aggregation.get(**self._call())
            except Exception as exc:
                what = f"count {counter_doc_id(customer_id, month)}"
                if status_name(exc) == "FAILED_PRECONDITION":
                    # The query's index is missing or still building (a deploy before its
                    # index): the next fold can count, once it is built; never skip the month.
                    raise TransientError(
                        f"{what}: the composite index (fold_key, recorded_at, cost_cents, ...) "
                        f"of firestore.indexes.json is missing or not built yet: {exc}"
                    ) from exc
                raise classify(exc, what) from exc
            for result in results[0]:
                alias = str(result.alias)
                value = result.value
                out[alias] = int(value) if alias == "records" else _aggregate_value(alias, value)
        return out

    def read_state(self, customer_id: str, months: Sequence[str]) -> CustomerState:
        """The customer and the month summaries, one get_all."""
        customer_ref = self.client.collection(self._settings.customers_collection).document(
            customer_id
        )
        refs = [customer_ref] + [
            self._counters().document(counter_doc_id(customer_id, m)) for m in months
        ]
        snaps = {s.reference.path: s for s in self.client.get_all(refs, **self._call())}

        def snapshot(ref: Any) -> Snapshot | None:
            snap = snaps.get(ref.path)
            if snap is None or not snap.exists:
                return None
            return Snapshot(snap.to_dict() or {}, snap.update_time)

        return CustomerState(
            snapshot(customer_ref),
            {m: snapshot(ref) for m, ref in zip(months, refs[1:], strict=True)},
        )

    def commit(self, commit: Commit) -> None:
        """One WriteBatch: summaries (create or guarded update), customer (guarded), markers."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415 - lazy: cold start

        client = self.client
        batch = client.batch()
        stamp = server_timestamp()
        for summary in commit.summaries:
            ref = self._counters().document(counter_doc_id(commit.customer_id, summary.month))
            data = dict(summary.data)
            if summary.token is None:
                batch.create(ref, data)
            else:
                batch.update(ref, data, option=client.write_option(last_update_time=summary.token))
        if commit.customer is not None:
            ref = client.collection(self._settings.customers_collection).document(
                commit.customer_id
            )
            fields = dict(commit.customer.fields)
            if commit.customer.stamp_reset:
                fields["quota_reset_at"] = stamp
            batch.update(
                ref, fields, option=client.write_option(last_update_time=commit.customer.token)
            )
        alerts = client.collection(self._settings.quota_alerts_collection)
        for alert_id, marker in commit.markers:
            batch.create(alerts.document(alert_id), {**marker, "created_at": stamp})
        try:
            batch.commit(**self._call())
        except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound) as exc:
            raise CommitConflictError(str(exc)) from exc
        except Exception as exc:
            raise classify(exc, f"fold commit of customer {commit.customer_id}") from exc

    def set_watermark(
        self,
        watermark: Watermark,
        value: datetime | None,
        records: datetime | None = None,
        held: Mapping[str, HeldTally] | None = None,
    ) -> bool:
        """Set `usage_fold_state/{b}` guarded by the read (create when it did not exist)."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415

        ref = self._state(watermark.bucket)
        data: dict[str, Any] = {
            "bucket": watermark.bucket,
            "watermark": value if value is not None else watermark.value,
            "records_watermark": records if records is not None else watermark.records,
            "folded_at": server_timestamp(),
        }
        if held is not None:
            data["held"] = held_format.encode(held)
        try:
            if watermark.token is None:
                ref.create(data, **self._call())
            else:
                option = self.client.write_option(last_update_time=watermark.token)
                ref.update(data, option=option, **self._call())
        except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound):
            return False
        return True

    def pending_markers(self, limit: int) -> list[Marker]:
        """`quota_alerts` documents with state `pending`."""
        query = queries.pending_alerts(self.client, limit=limit, settings=self._settings)
        return [
            Marker(s.id, s.to_dict() or {}, s.update_time) for s in query.stream(**self._call())
        ]

    def claim_marker(self, marker: Marker, changes: Mapping[str, Any]) -> bool:
        """Update the marker only if unchanged since read."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415

        ref = self.client.collection(self._settings.quota_alerts_collection).document(
            marker.alert_id
        )
        option = self.client.write_option(last_update_time=marker.update_time)
        try:
            ref.update(dict(changes), option=option, **self._call())
        except (gexc.FailedPrecondition, gexc.NotFound):
            return False
        return True

    def update_marker(self, alert_id: str, changes: Mapping[str, Any]) -> None:
        """Update a marker (+ `published_at` when it becomes published)."""
        ref = self.client.collection(self._settings.quota_alerts_collection).document(alert_id)
        data = dict(changes)
        if data.get("state") == "published":
            data["published_at"] = server_timestamp()
        ref.update(data, **self._call())

    def existing_markers(self, alert_ids: Sequence[str]) -> set[str]:
        """Which alert markers exist, one get_all."""
        alerts = self.client.collection(self._settings.quota_alerts_collection)
        refs = [alerts.document(a) for a in alert_ids]
        return {s.id for s in self.client.get_all(refs, **self._call()) if s.exists}


class PubSubAlertPublisher:
    """`AlertPublisher` over google-cloud-pubsub, on `settings.quota_alerts_topic`."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self._settings = settings
        self._client = client
        self._topic = names.topic_path(settings.project_id, settings.quota_alerts_topic)

    def publish_alert(self, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publish and wait for the message id (bounded)."""
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
