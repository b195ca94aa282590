"""Firestore for the dead-letter service: I/O only (the service decides)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.deadletter.ports import Existing, UnstorableError
from shared import names
from shared.clients import FirestoreAdapter
from shared.errors import refuses_document
from shared.settings import Settings


class FirestoreDeadLetterStore(FirestoreAdapter):
    """`usage_rejections` and `quota_resets/{month}/dead_letters` on the real client."""

    def _rejection(self, doc_id: str) -> Any:
        return self.client.collection(self._settings.usage_rejections_collection).document(doc_id)

    def create_rejection(self, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create `usage_rejections/{doc_id}` (+ rejected_at); False if it exists."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415 - lazy: cold start
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        try:
            ref = self._rejection(doc_id)
            ref.create({**data, "rejected_at": SERVER_TIMESTAMP}, **self._call())
        except gexc.AlreadyExists:
            return False
        except Exception as exc:
            if refuses_document(exc):
                raise UnstorableError(str(exc)) from exc
            raise
        return True

    def get_rejection(self, doc_id: str) -> Existing | None:
        """The document at `usage_rejections/{doc_id}`, if any."""
        snap = self._rejection(doc_id).get(**self._call())
        if not snap.exists:
            return None
        return Existing(snap.to_dict() or {}, snap.update_time)

    def complete_rejection(self, doc_id: str, changes: Mapping[str, Any], token: Any) -> bool:
        """Update unless changed since `token` (its update time); False if it was."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        option = self.client.write_option(last_update_time=token)
        try:
            self._rejection(doc_id).update(
                {**changes, "rejected_at": SERVER_TIMESTAMP}, option=option, **self._call()
            )
        except (gexc.FailedPrecondition, gexc.NotFound):
            return False
        except Exception as exc:
            if refuses_document(exc):
                raise UnstorableError(str(exc)) from exc
            raise
        return True

    def create_reset_dead_letter(self, month: str, doc_id: str, data: Mapping[str, Any]) -> bool:
        """Create `quota_resets/{month}/dead_letters/{doc_id}`; False if it exists."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415
        from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415

        ref = (
            self.client.collection(self._settings.quota_resets_collection)
            .document(month)
            .collection(names.QUOTA_RESET_DEAD_LETTERS)
            .document(doc_id)
        )
        try:
            ref.create({**data, "rejected_at": SERVER_TIMESTAMP}, **self._call())
        except gexc.AlreadyExists:
            return False
        except Exception as exc:
            if refuses_document(exc):
                raise UnstorableError(str(exc)) from exc
            raise
        return True


class FirestoreNoteStore(FirestoreAdapter):
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
