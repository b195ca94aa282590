"""The one way to get a Google client: created on first use (never at import), once, thread-safe.

Import of a function module is its cold start, so nothing here imports a Google client library
until a client is first asked for. Tests pass their own client to an adapter instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from shared.settings import Settings

T = TypeVar("T")


class Lazy(Generic[T]):
    """A value built by `factory` on the first `get()`, once, even when threads race for it."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The value, built on first use."""
        value = self._value
        if value is None:
            with self._lock:
                value = self._value
                if value is None:
                    value = self._value = self._factory()
        return value

    def reset(self) -> None:
        """Forget the value (tests; after a fork)."""
        with self._lock:
            self._value = None


_cache: dict[tuple[Any, ...], Lazy[Any]] = {}
_cache_lock = threading.Lock()


def _shared(key: tuple[Any, ...], factory: Callable[[], T]) -> T:
    with _cache_lock:
        lazy = _cache.get(key)
        if lazy is None:
            lazy = _cache[key] = Lazy(factory)
    return lazy.get()  # type: ignore[no-any-return]


def firestore_client(project: str) -> Any:
    """The process's Firestore client for `project` (honours FIRESTORE_EMULATOR_HOST)."""

    def build() -> Any:
        from google.cloud import firestore  # noqa: PLC0415 - lazy: cold start

        return firestore.Client(project=project)

    return _shared(("firestore", project), build)


def publisher_client(*, ordering: bool = False, max_latency: float | None = None) -> Any:
    """The process's Pub/Sub publisher (honours PUBSUB_EMULATOR_HOST).

    `ordering` enables message ordering (needed for ordering keys); `max_latency` sets the
    batch window in seconds (None: the library's default).
    """

    def build() -> Any:
        from google.cloud.pubsub_v1 import PublisherClient, types  # noqa: PLC0415 - lazy

        kwargs: dict[str, Any] = {}
        if ordering:
            kwargs["publisher_options"] = types.PublisherOptions(enable_message_ordering=True)
        if max_latency is not None:
            kwargs["batch_settings"] = types.BatchSettings(max_latency=max_latency)
        return PublisherClient(**kwargs)

    return _shared(("publisher", ordering, max_latency), build)


def subscriber_client() -> Any:
    """The process's Pub/Sub subscriber (honours PUBSUB_EMULATOR_HOST)."""

    def build() -> Any:
        from google.cloud.pubsub_v1 import SubscriberClient  # noqa: PLC0415 - lazy

        return SubscriberClient()

    return _shared(("subscriber",), build)


def bounded_retry(timeout: float) -> Any:
    """A google.api_core Retry of transient errors with backoff, never longer than `timeout`."""
    from google.api_core.retry import Retry  # noqa: PLC0415 - lazy: cold start

    from shared.errors import is_transient  # noqa: PLC0415 - keep this module import-free

    return Retry(predicate=is_transient, initial=0.05, maximum=1.0, multiplier=2.0, timeout=timeout)


def reset_clients() -> None:
    """Forget every client (tests that restart an emulator on another port)."""
    with _cache_lock:
        _cache.clear()


class FirestoreAdapter:
    """Base of the functions' Firestore adapters: the settings, the client (the process's shared
    one, created on first use, unless a test passed its own) and the deadline of every call."""

    def __init__(
        self, settings: Settings, client: Any | None = None, timeout: float | None = None
    ) -> None:
        self._settings = settings
        self._client = client
        self._timeout = settings.firestore_timeout_seconds if timeout is None else timeout

    @property
    def client(self) -> Any:
        """The Firestore client."""
        if self._client is None:
            self._client = firestore_client(self._settings.project_id)
        return self._client

    def _call(self) -> dict[str, Any]:
        """Keyword arguments of one call: a bounded retry of transient codes within the deadline."""
        return {"retry": bounded_retry(self._timeout), "timeout": self._timeout}
