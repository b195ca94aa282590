"""What the config service exchanges with Firestore and Pub/Sub: two Protocols and their data.

The service and the adapters both import this module; neither imports the other for a type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from shared.invalidation import Invalidation
from shared.models import CONFIG_MODELS

DocKey = tuple[str, str]
"""(collection, document id)."""

KINDS: Final = tuple(CONFIG_MODELS)
"""Logical collection kinds (`customers`, `scenes`, `feature_flags`); the real collection names
come from the settings."""


@dataclass(frozen=True, slots=True)
class FetchedDoc:
    """One document as read: its data (None when it does not exist) and update time."""

    data: Mapping[str, Any] | None
    update_time: datetime | None = None


class ConfigReader(Protocol):
    """Reads several documents in ONE round trip."""

    def get_documents(self, keys: Sequence[DocKey], timeout: float) -> dict[DocKey, FetchedDoc]:
        """Every key's document (missing ones with data None).

        Raises TransientError when a retry may succeed (unavailable, deadline) and
        PermanentError when it cannot (e.g. permission denied), as `shared.errors` classifies.
        """
        ...


OnInvalidation = Callable[[Invalidation | None], None]
"""Called with each decoded message; None for one that names no document."""
OnReset = Callable[[str], None]
"""Called with the reason after a stream error (messages may have been missed)."""


class InvalidationFeed(Protocol):
    """A live stream of invalidations (a streaming pull on its own subscription)."""

    def start(self, on_message: OnInvalidation, on_reset: OnReset) -> None:
        """Start delivering; `on_message(None)` for an undecodable message; `on_reset(why)`
        after a stream error (messages may have been missed)."""
        ...

    def close(self) -> None:
        """Stop delivering and delete the subscription."""
        ...


__all__ = [
    "KINDS",
    "ConfigReader",
    "DocKey",
    "FetchedDoc",
    "Invalidation",
    "InvalidationFeed",
    "OnInvalidation",
    "OnReset",
]
