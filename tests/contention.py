"""Production's per-document write limit, given to the real Firestore emulator.

`ContendedClient(client)` behaves like the google.cloud.firestore Client it wraps, except that
every commit sent through its `_firestore_api` (the usage adapter's raw commit) first takes a
token from a bucket per written document: about `rate` writes/s sustained with a burst of
`burst`. A commit touching a document whose bucket is empty fails whole with ABORTED "too much
contention", as production answers (production.md), before anything is written. The caller's
retry policy (the adapter's bounded retry) runs over these failures exactly as over real ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class TokenBuckets:
    """One token bucket per document path; thread-safe."""

    def __init__(
        self, rate: float = 1.0, burst: float = 3.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self.aborted = 0
        self.admitted = 0

    def take(self, paths: list[str]) -> bool:
        """Take one token from each path's bucket, all or none."""
        now = self._clock()
        with self._lock:
            levels = {}
            for path in paths:
                tokens, at = self._buckets.get(path, (self.burst, now))
                tokens = min(self.burst, tokens + (now - at) * self.rate)
                if tokens < 1:
                    self.aborted += 1
                    return False
                levels[path] = tokens
            for path, tokens in levels.items():
                self._buckets[path] = (tokens - 1, now)
            self.admitted += 1
            return True


class _ContendedApi:
    def __init__(self, api: Any, buckets: TokenBuckets) -> None:
        self._api = api
        self._buckets = buckets

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    def commit(
        self, request: Any, metadata: Any = (), retry: Any = None, timeout: Any = None
    ) -> Any:
        from google.api_core.exceptions import Aborted

        pb = getattr(request, "_pb", request)
        paths = [w.update.name or w.delete for w in pb.writes]

        def attempt() -> Any:
            if not self._buckets.take(paths):
                message = "too much contention on these datastore entities. please try again."
                raise Aborted(message)  # type: ignore[no-untyped-call]
            return self._api.commit(request=request, metadata=metadata, timeout=timeout)

        return retry(attempt)() if retry is not None else attempt()


class ContendedClient:
    """A Firestore client whose raw commits obey per-document token buckets."""

    def __init__(self, client: Any, buckets: TokenBuckets) -> None:
        self._client = client
        self.buckets = buckets
        self._firestore_api = _ContendedApi(client._firestore_api, buckets)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
