"""Real adapter of the usage service: Firestore (I/O only; the service decides). Every call
has the deadline `settings.firestore_timeout_seconds` and a bounded retry of transient codes;
errors come out classified (`shared.errors.classify`: TransientError -> Pub/Sub redelivers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.usage.ports import UnstorableRecordError
from shared import clients, logs
from shared.counters import RECORDED_AT_FIELD
from shared.errors import classify, refuses_document, status_name
from shared.settings import Settings


class FirestoreUsageRepository(clients.FirestoreAdapter):
    """`UsageRepository` over google-cloud-firestore."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        super().__init__(settings, client)
        self._retry = clients.bounded_retry(self._timeout)

    def _call(self) -> dict[str, Any]:
        return {"retry": self._retry, "timeout": self._timeout}

    def _doc(self, collection: str, doc_id: str) -> Any:
        return self.client.collection(collection).document(doc_id)

    def get_customer(self, customer_id: str) -> Mapping[str, Any] | None:
        """Plain read of `customers/{id}`."""
        ref = self._doc(self._settings.customers_collection, customer_id)
        try:
            snap = ref.get(**self._call())
        except Exception as exc:
            raise classify(
                exc, f"read {self._settings.customers_collection}/{customer_id}"
            ) from exc
        return (snap.to_dict() or {}) if snap.exists else None

    def create_record(self, record_id: str, record: Mapping[str, Any]) -> bool:
        """Create the record with `recorded_at` = the server's time (one write)."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415 - cold start

        collection = self._settings.usage_tracking_collection
        ref = self._doc(collection, record_id)
        try:
            ref.create({**record, RECORDED_AT_FIELD: SERVER_TIMESTAMP}, **self._call())
        except Exception as exc:
            if refuses_document(exc):
                raise UnstorableRecordError(str(exc)) from exc
            if status_name(exc) == "ALREADY_EXISTS":
                return False
            raise classify(exc, f"create {collection}/{record_id}") from exc
        return True

    def get_stored_sha256(self, record_id: str) -> str | None:
        """`payload_sha256` of `usage_tracking/{record_id}` (one read of one field)."""
        collection = self._settings.usage_tracking_collection
        ref = self._doc(collection, record_id)
        try:
            snap = ref.get(field_paths=["payload_sha256"], **self._call())
        except Exception as exc:
            raise classify(exc, f"read {collection}/{record_id}") from exc
        digest = (snap.to_dict() or {}).get("payload_sha256") if snap.exists else None
        return digest if isinstance(digest, str) else None

    def store_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create `usage_rejections/{doc_id}` once."""
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        collection = self._settings.usage_rejections_collection
        ref = self._doc(collection, doc_id)
        try:
            ref.create({**data, "rejected_at": SERVER_TIMESTAMP}, **self._call())
        except Exception as exc:
            if status_name(exc) == "ALREADY_EXISTS":
                return False
            if not refuses_document(exc):
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
