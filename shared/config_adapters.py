"""Former path of the config service's adapters, kept for callers not yet moved: the code is
`shared.config.adapters`."""

from __future__ import annotations

from shared.config.adapters import FirestoreConfigReader, PubSubInvalidationFeed

__all__ = ["FirestoreConfigReader", "PubSubInvalidationFeed"]
