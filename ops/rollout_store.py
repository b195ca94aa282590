"""The reads and writes of a gradual rollout (`ops.rollout`): flags, markers, audit, retries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from google.api_core import exceptions as gexc

from shared import names, queries
from shared.errors import BlueprintError
from shared.firestore_values import plain_value
from shared.models import Feature
from shared.settings import Settings

ATTEMPTS: Final = 3
"""Reads of a page when a concurrent edit fails its batch's preconditions."""


class RolloutError(BlueprintError, ValueError):
    """A rollout that cannot be done as asked (bad feature, percent, tier; narrowing)."""


@dataclass
class Outcome:
    """What one page did (kept only once its batch committed, or on a dry run)."""

    done: list[str] = field(default_factory=list)
    """Rollout: turned on; undo: reverted."""
    unchanged: list[str] = field(default_factory=list)
    """Rollout: already on; undo: changed by hand since, left alone."""
    invalid: list[str] = field(default_factory=list)
    writes: int = 0


class Store:
    """The documents a rollout reads and writes, under the settings' collection names."""

    def __init__(self, client: Any, feature: Feature, settings: Settings) -> None:
        self.client = client
        self.feature = feature
        self.settings = settings
        self.timeout = settings.firestore_timeout_seconds
        self.flags = client.collection(settings.feature_flags_collection)
        self.audit = client.collection(settings.feature_rollouts_collection).document(feature)
        self.marks = self.audit.collection(queries.ROLLED_OUT)

    def flag_docs(self, ids: Sequence[str]) -> dict[str, Any]:
        refs = [self.flags.document(i) for i in ids]
        return {s.id: s for s in self.client.get_all(refs, timeout=self.timeout)}

    def audit_data(self) -> dict[str, Any] | None:
        snap = self.audit.get(timeout=self.timeout)
        data: dict[str, Any] | None = plain_value(snap.to_dict() or {}) if snap.exists else None
        return data

    def globally_off(self) -> bool:
        snap = self.flags.document(names.GLOBAL_FLAGS_DOC).get(timeout=self.timeout)
        return bool(snap.exists and (snap.to_dict() or {}).get(self.feature.value) is False)

    def pages(self, query_of: Any, size: int) -> Iterator[list[Any]]:
        """Pages of a query ordered by document id (`query_of(after_id, limit)`)."""
        after: str | None = None
        while True:
            page = list(query_of(after, size).stream(timeout=self.timeout))
            if page:
                yield page
            if len(page) < size:
                return
            after = page[-1].id

    def apply(self, ids: Sequence[str], plan: Any, *, dry_run: bool) -> Outcome:
        """Plan the page's writes from fresh reads (`plan(flag_snapshots, batch)`), commit; read
        and plan again when a precondition fails (a flags document edited meanwhile)."""
        for _ in range(ATTEMPTS):
            batch = self.client.batch()
            outcome: Outcome = plan(self.flag_docs(ids), batch)
            if dry_run or not outcome.writes:
                return outcome
            try:
                batch.commit(timeout=self.timeout)
            except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound):
                continue
            return outcome
        raise RolloutError(
            f"feature_flags documents {ids[0]}..{ids[-1]} kept changing during the rollout of "
            f"{self.feature.value} ({ATTEMPTS} attempts): run it again"
        )


def precondition(store: Store, snap: Any) -> Any:
    return store.client.write_option(last_update_time=snap.update_time)
