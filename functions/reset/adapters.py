"""Customers and the audit document in Firestore: I/O only (the rules are in the service)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from functions.reset.ports import AuditState, CustomerDoc, Rejection, ResetWrite
from shared import names, queries, quota
from shared.clients import Lazy, bounded_retry, firestore_client
from shared.counters import counter_doc_id, split_counter_doc_id
from shared.errors import classify
from shared.firestore_values import create_if_absent

REJECTED_DOC: Final = "_rejected"
"""`quota_resets/_rejected/messages/{id}`: refused schedule messages. The parent document is
never written, so listing the monthly audits (`quota_resets/{YYYY-MM}`) does not see it."""
REJECTED_MESSAGES: Final = "messages"
DEFAULT_TIMEOUT_SECONDS: Final = 60.0
"""Per Firestore call (a 500-write commit on a busy database takes seconds)."""
_OK: Final = 0


class FirestoreResetRepository:
    """`ResetRepository` over google-cloud-firestore; Firestore errors leave it classified."""

    def __init__(
        self,
        client: Any,
        customers_collection: str,
        audit_collection: str,
        timeout: float | None = None,
        stream_timeout: float | None = 3600.0,
        *,
        counters_collection: str = names.USAGE_COUNTERS,
    ) -> None:
        self._client = client
        self._counters = client.collection(counters_collection)
        self._customers = client.collection(customers_collection)
        self._audits = client.collection(audit_collection)
        self._timeout = DEFAULT_TIMEOUT_SECONDS if timeout is None else timeout
        self._stream_timeout = stream_timeout

    def _doc(self, snap: Any) -> CustomerDoc:
        return CustomerDoc(snap.id, snap.to_dict() or {}, snap.update_time)

    def _read_options(self) -> dict[str, Any]:
        return {"retry": bounded_retry(self._timeout), "timeout": self._timeout}

    def scan(self, start_after: str | None) -> Iterator[CustomerDoc]:
        """Customers ordered by document id after `start_after`, one streamed query.

        Ordering by id needs no composite index. gRPC flow control bounds what is buffered.
        """
        query = queries.customers_by_id(self._client, start_after, collection=self._customers.id)
        try:
            for snap in query.stream(timeout=self._stream_timeout):
                yield self._doc(snap)
        except Exception as exc:
            what = f"Firestore: reading {self._customers.id} after {start_after!r}"
            raise classify(exc, what) from exc

    def count_customers(self) -> int:
        """Number of customer documents (for a progress bar's total)."""
        try:
            result = self._customers.count().get(**self._read_options())
        except Exception as exc:
            raise classify(exc, f"Firestore: counting {self._customers.id}") from exc
        return int(result[0][0].value)

    def get(self, customer_id: str) -> CustomerDoc | None:
        """One customer read again."""
        try:
            snap = self._customers.document(customer_id).get(**self._read_options())
        except Exception as exc:
            raise classify(exc, f"Firestore: reading customer {customer_id}") from exc
        return self._doc(snap) if snap.exists else None

    def month_counts(self, customer_ids: Sequence[str], period: str) -> dict[str, int]:
        """`scenes_total` of the page's month summaries, one BatchGetDocuments masked to that
        field, parsed from the raw protobufs: most of a page's summaries do not exist at the
        start of a month, and the client's `get_all` spends about 2x the CPU building a
        snapshot of each missing one (`bench/reset_scale.py`)."""
        if not customer_ids:
            return {}
        from google.cloud.firestore_v1.types import common, firestore  # noqa: PLC0415 - lazy

        client = self._client
        # Private client attributes, used exactly as `Client.get_all` uses them (pinned client;
        # test_month_counts_read_what_the_client_reads guards the equivalence).
        prefix = f"{client._database_string}/documents/{self._counters.id}/"
        request = firestore.BatchGetDocumentsRequest(
            database=client._database_string,
            documents=[prefix + counter_doc_id(c, period) for c in customer_ids],
            mask=common.DocumentMask(field_paths=["scenes_total"]),
        )
        out: dict[str, int] = {}
        try:
            responses = client._firestore_api.batch_get_documents(
                request=request, metadata=client._rpc_metadata, **self._read_options()
            )
            for response in responses:
                pb = response._pb
                if not pb.HasField("found"):
                    continue
                value = pb.found.fields.get("scenes_total")
                split = split_counter_doc_id(pb.found.name.rsplit("/", 1)[-1])
                if (
                    split is None
                    or value is None
                    or value.WhichOneof("value_type") != ("integer_value")
                ):
                    continue
                if value.integer_value >= 0:
                    out[split[0]] = value.integer_value
        except Exception as exc:
            raise classify(exc, f"Firestore: reading the month summaries of {period}") from exc
        return out

    def write_resets(self, writes: Sequence[ResetWrite]) -> list[int]:
        """Each write under its own precondition; a status code per write (0 = applied).

        First one atomic commit (the fast path: on the emulator a commit of 500 is about 1.6x
        faster than a BatchWrite). If any precondition failed, nothing was applied: the same
        writes go again as a non-atomic BatchWrite, which reports each write's own status.
        """
        from google.api_core.exceptions import (  # noqa: PLC0415 - lazy
            Aborted,
            FailedPrecondition,
            NotFound,
        )
        from google.cloud.firestore_v1.bulk_batch import BulkWriteBatch  # noqa: PLC0415

        first = writes[0].customer_id if writes else None
        what = f"Firestore: resetting {len(writes)} customers from {first!r}"
        try:
            try:
                self._fill(self._client.batch(), writes).commit(timeout=self._timeout)
            except (FailedPrecondition, NotFound, Aborted):
                batch = self._fill(BulkWriteBatch(self._client), writes)
                response = batch.commit(timeout=self._timeout)
                return [int(s.code) for s in response.status]
        except Exception as exc:
            raise classify(exc, what) from exc
        return [_OK] * len(writes)

    def _fill(self, batch: Any, writes: Sequence[ResetWrite]) -> Any:
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415 - lazy

        for w in writes:
            batch.update(
                self._customers.document(w.customer_id),
                {
                    quota.THIS_MONTH_FIELD: w.value,
                    quota.PERIOD_FIELD: w.period,
                    "quota_reset_at": SERVER_TIMESTAMP,
                },
                option=self._client.write_option(last_update_time=w.update_time),
            )
        return batch

    def start_run(self, period: str, run: Mapping[str, Any]) -> AuditState:
        """Create the audit document on the first run; count the run; a new pass zeroes counts."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP, Increment  # noqa: PLC0415

        ref = self._audits.document(period)
        fresh_pass = {
            "skipped": 0,
            "unlimited": 0,
            "invalid": 0,
            "kept": 0,
            "errors": 0,
            "retried": 0,
            "issues": [],
            "finished_at": None,
            "pass_started_at": SERVER_TIMESTAMP,
        }
        first = {
            "period": period,
            "started_at": SERVER_TIMESTAMP,
            "customers_reset": 0,
            "runs": 1,
            "cursor": None,
            "current_run": dict(run),
            **fresh_pass,
        }
        try:
            if create_if_absent(ref, first, timeout=self._timeout):
                return AuditState(None, finished=False, samples=0)
            data = ref.get(**self._read_options()).to_dict() or {}
            cursor = data.get("cursor")
            update: dict[str, Any] = {"runs": Increment(1), "current_run": dict(run)}
            if cursor is None:
                update.update(fresh_pass)
            ref.update(update, timeout=self._timeout)
        except Exception as exc:
            raise classify(exc, f"Firestore: opening the audit {ref.path}") from exc
        samples = 0 if cursor is None else len(data.get("issues") or [])
        return AuditState(cursor, finished=data.get("finished_at") is not None, samples=samples)

    def record_progress(
        self, period: str, counts: Mapping[str, int], cursor: str | None, issues: list[Any]
    ) -> None:
        """Add a page's counts (Increment), move the cursor, append its issues."""
        from google.cloud.firestore_v1 import ArrayUnion, Increment  # noqa: PLC0415 - lazy

        update: dict[str, Any] = {"cursor": cursor}
        for name, value in counts.items():
            update["customers_reset" if name == "reset" else name] = Increment(value)
        if issues:
            update["issues"] = ArrayUnion(issues)
        ref = self._audits.document(period)
        try:
            ref.update(update, timeout=self._timeout)
        except Exception as exc:
            raise classify(exc, f"Firestore: recording progress in {ref.path}") from exc

    def finish(self, period: str, run: Mapping[str, Any]) -> None:
        """The pass reached the end: finished time, no cursor, the last run's summary."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415 - lazy

        ref = self._audits.document(period)
        try:
            # Exact, whatever earlier deliveries managed to record before they died: the
            # customers whose `quota_period` is the period (the reset writes it; the usage
            # function only once, on a document from before the suite, naming the month its
            # counter already counted).
            in_period: Any = queries.customers_reset_for_period(
                self._client, period, collection=self._customers.id
            )
            reset_total = int(in_period.count().get(**self._read_options())[0][0].value)
            # A month run again after a later month's reset counts none still in it: the
            # month's figure never goes down (its customers were reset; they moved on).
            before = ref.get(field_paths=["customers_reset"], **self._read_options()).to_dict()
            earlier = (before or {}).get("customers_reset")
            if isinstance(earlier, int) and earlier > reset_total:
                reset_total = earlier
            ref.update(
                {
                    "customers_reset": reset_total,
                    "finished_at": SERVER_TIMESTAMP,
                    "cursor": None,
                    "last_run": dict(run),
                    "current_run": None,
                },
                timeout=self._timeout,
            )
        except Exception as exc:
            raise classify(exc, f"Firestore: finishing the audit {ref.path}") from exc

    def record_rejection(self, rejection: Rejection) -> bool:
        """Create `quota_resets/_rejected/messages/{id}` (a redelivery finds it: False)."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415 - lazy

        ref = self._audits.document(REJECTED_DOC).collection(REJECTED_MESSAGES)
        doc = ref.document(rejection.id)
        data = {**rejection.as_dict(), "received_at": SERVER_TIMESTAMP}
        try:
            return create_if_absent(doc, data, timeout=self._timeout)
        except Exception as exc:
            raise classify(exc, f"Firestore: recording the refused message {doc.path}") from exc


def _build_default() -> FirestoreResetRepository:
    from shared.settings import get_settings  # noqa: PLC0415 - the cold start stays cheap

    settings = get_settings()
    return FirestoreResetRepository(
        firestore_client(settings.project_id),
        settings.customers_collection,
        settings.quota_resets_collection,
        timeout=max(settings.firestore_timeout_seconds, DEFAULT_TIMEOUT_SECONDS),
        counters_collection=settings.usage_counters_collection,
    )


DEFAULT_REPOSITORY: Final = Lazy(_build_default)
"""The running function's repository (created on first use; `.reset()` forgets it)."""


def default_repository() -> FirestoreResetRepository:
    """The Firestore repository of the running function (client created on first use)."""
    return DEFAULT_REPOSITORY.get()
