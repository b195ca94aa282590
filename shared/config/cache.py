"""The config service's documents: what is missing is fetched in ONE read, kept for a TTL,
dropped on invalidation, and served stale (last known value, else tier defaults) while
Firestore cannot be read."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import BaseModel

from shared import logs
from shared.config.answers import DocProblem
from shared.config.overrides import Overrides, apply_override
from shared.config.ports import ConfigReader, DocKey, FetchedDoc
from shared.config.salvage import trust
from shared.errors import PermanentError, TransientError
from shared.firestore_values import plain_value
from shared.settings import Settings


@dataclass(frozen=True, slots=True)
class CachedDoc:
    """A document as the service trusts it, and when it was read."""

    kind: str
    doc_id: str
    model: BaseModel | None
    """The trusted model; None when the document does not exist or cannot be salvaged."""
    exists: bool
    fetched_at: float
    """Clock reading when it was read (the TTL counts from here)."""
    stale: bool = False
    """Not read now: Firestore could not be read (last known value or tier defaults)."""
    problems: tuple[DocProblem, ...] = ()
    overridden: bool = False
    """The override file changed it."""
    update_time: datetime | None = None


class ConfigCache:
    """Thread-safe document cache over a `ConfigReader` (docs/config-service.md, Freshness)."""

    def __init__(
        self,
        settings: Settings,
        reader: ConfigReader | None,
        collections: Mapping[str, str],
        overrides: Overrides,
        *,
        ttl: float,
        timeout: float,
        retry: float,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._reader = reader
        self._collections = dict(collections)
        self._overrides = overrides
        self._ttl = ttl
        self._timeout = timeout
        self._retry = retry
        self._clock = clock
        self._lock = threading.RLock()
        self._docs: dict[DocKey, CachedDoc] = {}
        # A read is stored only if neither its document (generation) nor the whole cache
        # (epoch) was invalidated while it was in flight: the old value must not stick.
        self._generation: dict[DocKey, int] = {}
        self._epoch = 0
        # Fields the writer's trigger found invalid, and the version it judged (None: unknown).
        self._marks: dict[DocKey, tuple[tuple[str, ...], datetime | None]] = {}
        self._down = False
        self._retry_at = 0.0
        self.stats = {"round_trips": 0, "invalidations": 0, "resets": 0, "fallbacks": 0}
        """Reads made, invalidations heard, cache drops after stream errors, stale answers."""

    def clear(self) -> None:
        """Forget every cached document (the next read of each goes to Firestore)."""
        with self._lock:
            self._docs.clear()
            self._epoch += 1

    def reset(self, why: str) -> None:
        """Drop everything after messages may have been missed (the marks too: the message
        that lifted one may be among them), and say so."""
        with self._lock:
            self.stats["resets"] += 1
            self._marks.clear()
        self.clear()
        logs.warning(
            f"config cache dropped: {why} (changes may have been missed)",
            component="config_service",
        )

    def invalidate(
        self,
        key: DocKey,
        distrust: tuple[str, ...] | None = None,
        version: datetime | None = None,
    ) -> None:
        """Drop one document; `distrust` names the fields the trigger found invalid in the
        document's `version` (its update time): they are not trusted in that version or an older
        one, never in a newer (messages may come out of order, or twice). None: announced
        valid, so earlier marks go."""
        with self._lock:
            self.stats["invalidations"] += 1
            self._docs.pop(key, None)
            self._generation[key] = self._generation.get(key, 0) + 1
            if distrust is None:
                self._marks.pop(key, None)
            else:
                self._marks[key] = (distrust, version)

    def load(self, keys: Sequence[DocKey]) -> dict[DocKey, CachedDoc]:
        """The documents for `keys`: cached if fresh, else ONE read of all the others."""
        now = self._clock()
        out: dict[DocKey, CachedDoc] = {}
        missing: list[DocKey] = []
        with self._lock:
            for key in dict.fromkeys(keys):
                doc = self._docs.get(key)
                if doc is not None and not doc.stale and now - doc.fetched_at < self._ttl:
                    out[key] = doc
                else:
                    missing.append(key)
            if not missing:
                return out
            epoch = self._epoch
            generations = {k: self._generation.get(k, 0) for k in missing}
            try_read = now >= self._retry_at
        if try_read:
            try:
                with self._lock:
                    self.stats["round_trips"] += 1
                fetched = self._read(missing)
            except (TransientError, PermanentError) as exc:
                self._went_down(exc)
            else:
                self._came_up()
                with self._lock:
                    for key in missing:
                        doc = self._build(key, fetched[key], now)
                        out[key] = doc
                        if (
                            self._epoch == epoch
                            and self._generation.get(key, 0) == generations[key]
                        ):
                            self._docs[key] = doc
                return out
        with self._lock:
            self.stats["fallbacks"] += 1
            for key in missing:
                last = self._docs.get(key)
                out[key] = (
                    replace(last, stale=True)
                    if last is not None
                    else replace(self._build(key, FetchedDoc(None), now), stale=True)
                )
        return out

    def _read(self, keys: Sequence[DocKey]) -> dict[DocKey, FetchedDoc]:
        if self._reader is None:
            # The default adapter, built on first read: import of the service stays cheap.
            from shared.config.adapters import FirestoreConfigReader  # noqa: PLC0415

            self._reader = FirestoreConfigReader(self._settings)
        real = [(self._collections[k], d) for k, d in keys]
        got = self._reader.get_documents(real, self._timeout)
        return {key: got.get(r, FetchedDoc(None)) for key, r in zip(keys, real, strict=True)}

    def _went_down(self, exc: TransientError | PermanentError) -> None:
        with self._lock:
            self._retry_at = self._clock() + self._retry
            first = not self._down
            self._down = True
        if first:
            # A permanent refusal (permission denied, no such database) is served the same
            # way, so the pipeline keeps running; the WARNING says a retry will not fix it.
            what = "unavailable" if isinstance(exc, TransientError) else "refused the read"
            logs.warning(
                f"Firestore {what} ({exc}): serving last known values or tier defaults, "
                "marked stale",
                component="config_service",
            )

    def _came_up(self) -> None:
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            logs.info("Firestore reachable again: fresh configuration", component="config_service")

    def _distrusted(self, key: DocKey, fetched: FetchedDoc) -> tuple[str, ...]:
        """The marked fields, unless the document read is newer than the version marked."""
        fields, version = self._marks.get(key, ((), None))
        read = fetched.update_time
        if version is not None and isinstance(read, datetime) and read > version:
            return ()
        return fields

    def _build(self, key: DocKey, fetched: FetchedDoc, now: float) -> CachedDoc:
        kind, doc_id = key
        override = self._overrides.get(kind, {}).get(doc_id)
        data = apply_override(
            plain_value(fetched.data) if fetched.data is not None else None, override
        )
        if data is None:
            return CachedDoc(kind, doc_id, None, False, now, update_time=fetched.update_time)
        model, problems = trust(
            kind, self._collections[kind], doc_id, data, self._distrusted(key, fetched)
        )
        return CachedDoc(
            kind,
            doc_id,
            model,
            exists=model is not None,
            fetched_at=now,
            problems=problems,
            overridden=override is not None,
            update_time=fetched.update_time,
        )


__all__ = ["CachedDoc", "ConfigCache"]
