"""Where the migration reads and writes: the Protocol and its Firestore implementation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from ops.migration.records import CUSTOMERS, READ_CHUNK, Write
from shared.settings import Settings, get_settings


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MigrationTarget(Protocol):
    """Where the migration reads existing documents and writes."""

    def read(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any] | None]:
        """Existing data of each key (None when absent)."""
        ...

    def existing_customers(self, ids: set[str]) -> set[str]:
        """Which of these customer ids already exist."""
        ...

    def write(self, writes: Sequence[Write], batch_size: int, progress: Any = None) -> int:
        """Commit the writes in batches; how many documents were written."""
        ...


class FirestoreMigrationTarget:
    """Reads and batched writes for the migration, over google-cloud-firestore."""

    def __init__(self, client: Any, settings: Settings | None = None) -> None:
        # A client, or a zero-argument factory called on first use (input errors come first).
        self._client_or_factory = client
        self._made: Any = None
        self._settings = settings or get_settings()

    @property
    def _client(self) -> Any:
        if self._made is None:
            given = self._client_or_factory
            self._made = given if hasattr(given, "collection") else given()
        return self._made

    def _ref(self, collection: str, doc_id: str) -> Any:
        return self._client.collection(self._settings.collection(collection)).document(doc_id)

    def read(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any] | None]:
        """Existing data of each key (None when absent), read in chunks."""
        keys = list(dict.fromkeys(keys))
        out: dict[tuple[str, str], dict[str, Any] | None] = {}
        by_path = {self._ref(*k).path: k for k in keys}
        timeout = self._settings.firestore_timeout_seconds
        for chunk in _chunks(keys, READ_CHUNK):
            refs = [self._ref(*k) for k in chunk]
            for snap in self._client.get_all(refs, timeout=timeout):
                out[by_path[snap.reference.path]] = snap.to_dict() if snap.exists else None
        return out

    def existing_customers(self, ids: set[str]) -> set[str]:
        """Which of these customer ids Firestore already has."""
        found = self.read((CUSTOMERS, i) for i in ids)
        return {k[1] for k, v in found.items() if v is not None}

    def write(self, writes: Sequence[Write], batch_size: int, progress: Any = None) -> int:
        """Commit the writes in batches; returns how many documents were written."""
        done = 0
        timeout = self._settings.firestore_timeout_seconds
        for chunk in _chunks(writes, batch_size):
            batch = self._client.batch()
            for w in chunk:
                if w.create:
                    batch.set(self._ref(w.collection, w.doc_id), w.data)
                else:
                    batch.update(self._ref(w.collection, w.doc_id), w.data)
            batch.commit(timeout=timeout)
            done += len(chunk)
            if progress is not None:
                progress.update(len(chunk))
        return done
