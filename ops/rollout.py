"""The library behind `blueprint flags rollout FEATURE --percent N [--tier T] [--dry-run] [--undo]`.

The specification: "use feature flags for gradual feature enablement". A customer is in a rollout of
`feature` at `percent` when `bucket(feature, customer_id) < percent`: the bucket is a SHA-256 of
the pair mapped to [0, 100), the same in every process and release (not Python's salted
`hash()`), so raising 10 % to 20 % keeps the first 10 % and adds the next ten.

What a rollout writes, per page of customers (one `WriteBatch`, one commit):
- `feature_flags/{customer}`: the feature set true and `rollouts.{feature}` = percent (the
  `FeatureFlags.rollouts` map, so `CustomerConfigService` answers with reason `rollout`); other
  flags are kept. A flag already on (by hand or by this rollout) is not touched. Writes carry a
  precondition on the document as read: a concurrent hand edit makes the page read again.
- `feature_rollouts/{feature}/rolled_out/{customer}`: the marker of what it changed (the
  previous value, whether the flags document existed): exactly what `undo` puts back.
Then `feature_rollouts/{feature}` (audit): percent, tier, counts, a SHA-256 of the selected
ids, who and when, and a `history` entry per change. `_global` is never written: it still wins
(the result says when it switches the feature off). A rollout only widens: a lower percent or
a narrower tier than the active rollout's is refused (undo, then roll out again).
`dry_run` reads everything and writes nothing.
"""

from __future__ import annotations

import getpass
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ops.rollout_store import Outcome, RolloutError, Store, precondition
from shared import names, queries
from shared.firestore_values import plain_value
from shared.models import BundleTier, Feature, FeatureFlags, document_errors
from shared.settings import Settings, get_settings

BUCKETS: Final = 100
DEFAULT_PAGE_SIZE: Final = 200
"""Customers per page: at most two writes each (flag + marker), under Firestore's 500."""
MAX_PAGE_SIZE: Final = 250
HISTORY_LIMIT: Final = 100
_STAMPS: Final = frozenset({"schema_version", "created_at", "updated_at"})


def bucket(feature: Feature | str, customer_id: str) -> int:
    """The customer's stable bucket in [0, 100) for `feature`."""
    digest = hashlib.sha256(f"{Feature(feature).value}\x00{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True, slots=True)
class RolloutResult:
    """What a rollout (or its undo) did, or would do on a dry run."""

    feature: Feature
    percent: int
    tier: BundleTier | None
    dry_run: bool
    undo: bool
    scanned: int = 0
    """Customers read (undo: markers read)."""
    selected: tuple[str, ...] = ()
    """Customers in the rollout (bucket < percent, tier matching)."""
    selected_sha256: str = ""
    """SHA-256 of the selected ids, one per line in id order (the audit keeps it)."""
    turned_on: tuple[str, ...] = ()
    """Customers whose flag this call turned on."""
    already_on: tuple[str, ...] = ()
    """Selected customers whose flag was already on (by hand or by this rollout before)."""
    skipped_invalid: tuple[str, ...] = ()
    """Selected customers whose flags document is invalid: not written (fix it first)."""
    reverted: tuple[str, ...] = ()
    """Undo: customers whose flag went back to what it was before the rollout."""
    left_alone: tuple[str, ...] = ()
    """Undo: customers whose flag was changed by hand since: kept as it is."""
    globally_off: bool = False
    """`feature_flags/_global` switches the feature off: it wins over every rollout."""


def _sha(ids: Sequence[str]) -> str:
    return hashlib.sha256("".join(f"{i}\n" for i in ids).encode()).hexdigest()


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in a bare container
        return "unknown"


def _check(
    feature: Feature | str, tier: BundleTier | str | None
) -> tuple[Feature, BundleTier | None]:
    try:
        feat = Feature(feature)
    except ValueError:
        known = ", ".join(f.value for f in Feature)
        raise RolloutError(f"feature={feature!r}: expected one of {known}") from None
    try:
        level = BundleTier(tier) if tier is not None else None
    except ValueError:
        known = ", ".join(t.value for t in BundleTier)
        raise RolloutError(f"tier={tier!r}: expected one of {known}") from None
    return feat, level


def _check_widens(feature: Feature, percent: int, tier: BundleTier | None, active: Any) -> None:
    """A rollout only widens: the customers it turned on stay selected."""
    old_percent, old_tier = active.get("percent"), active.get("tier")
    if isinstance(old_percent, int) and percent < old_percent:
        raise RolloutError(
            f"percent={percent} is below the active rollout of {feature.value} "
            f"({old_percent} %): a rollout only widens; undo it first, then roll out again"
        )
    if old_tier is None and tier is not None:
        raise RolloutError(
            f"tier={tier.value!r} narrows the active rollout of {feature.value} (every tier): "
            "undo it first, then roll out again"
        )
    if old_tier is not None and tier is not None and tier.value != old_tier:
        raise RolloutError(
            f"tier={tier.value!r} differs from the active rollout of {feature.value} "
            f"(tier {old_tier}): widen to every tier (no tier), or undo first"
        )


def rollout(
    client: Any,
    feature: Feature | str,
    percent: int | None,
    *,
    tier: BundleTier | str | None = None,
    dry_run: bool = False,
    undo: bool = False,
    actor: str | None = None,
    now: datetime | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    settings: Settings | None = None,
) -> RolloutResult:
    """Roll `feature` out to `percent` % of the customers (of `tier`), or undo its rollout
    (`undo`; `percent` and `tier` are then ignored). See the module docstring."""
    feat, level = _check(feature, tier)
    if (
        isinstance(page_size, bool)
        or not isinstance(page_size, int)
        or not 0 < page_size <= MAX_PAGE_SIZE
    ):
        raise RolloutError(f"page_size={page_size!r}: expected 1 to {MAX_PAGE_SIZE}")
    store = Store(client, feat, settings or get_settings())
    who, when = actor or _user(), now or datetime.now(UTC)
    audit = store.audit_data()
    if undo:
        return _undo(store, audit, dry_run=dry_run, who=who, when=when, size=page_size)
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
        raise RolloutError(f"percent={percent!r}: expected a whole number from 1 to 100")
    active = audit if audit is not None and audit.get("state") == "active" else None
    if active is not None:
        _check_widens(feat, percent, level, active)

    def plan(snaps: dict[str, Any], batch: Any) -> Outcome:
        out = Outcome()
        for cid, snap in snaps.items():
            data = snap.to_dict() if snap.exists else None
            if data is not None and document_errors(FeatureFlags, plain_value(data)):
                out.invalid.append(cid)
            elif data is not None and data.get(feat.value) is True:
                out.unchanged.append(cid)
            else:
                out.done.append(cid)
                out.writes += 2
                _turn_on(store, batch, snap, data, percent=percent, tier=level, who=who, when=when)
        return out

    scanned, selected = 0, []
    total = Outcome()
    for customers in store.pages(
        lambda after, n: queries.customers_by_id(client, after, limit=n, settings=store.settings),
        page_size,
    ):
        scanned += len(customers)
        page = [
            s.id
            for s in customers
            if s.id != names.GLOBAL_FLAGS_DOC
            and (level is None or (s.to_dict() or {}).get("bundle_tier") == level.value)
            and bucket(feat, s.id) < percent
        ]
        selected.extend(page)
        if page:
            got = store.apply(page, plan, dry_run=dry_run)
            total.done += sorted(got.done)
            total.unchanged += sorted(got.unchanged)
            total.invalid += sorted(got.invalid)
    result = RolloutResult(
        feat,
        percent,
        level,
        dry_run,
        undo=False,
        scanned=scanned,
        selected=tuple(selected),
        selected_sha256=_sha(selected),
        turned_on=tuple(total.done),
        already_on=tuple(total.unchanged),
        skipped_invalid=tuple(total.invalid),
        globally_off=store.globally_off(),
    )
    if not dry_run:
        _record(store, result, audit, who, when)
    return result


def _turn_on(
    store: Store,
    batch: Any,
    snap: Any,
    data: dict[str, Any] | None,
    *,
    percent: int,
    tier: BundleTier | None,
    who: str,
    when: datetime,
) -> None:
    feature = store.feature.value
    if data is None:
        batch.create(
            snap.reference, {"schema_version": 1, feature: True, "rollouts": {feature: percent}}
        )
    else:
        changes = {"schema_version": 1, feature: True, f"rollouts.{feature}": percent}
        batch.update(snap.reference, changes, option=precondition(store, snap))
    marker = {
        "customer_id": snap.id,
        "feature": feature,
        "percent": percent,
        "tier": tier.value if tier else None,
        "previous": None if data is None else data.get(feature),
        "had_document": data is not None,
        "at": when,
        "by": who,
    }
    batch.set(store.marks.document(snap.id), marker)


def _rollouts_key(rolled: dict[str, Any], feature: Feature) -> str:
    """What to delete to forget the rollout's entry: the whole map when it is the last one."""
    return "rollouts" if set(rolled) == {feature.value} else f"rollouts.{feature.value}"


def _undo(
    store: Store,
    audit: dict[str, Any] | None,
    *,
    dry_run: bool,
    who: str,
    when: datetime,
    size: int,
) -> RolloutResult:
    feature = store.feature
    marks: dict[str, dict[str, Any]] = {}

    def plan(snaps: dict[str, Any], batch: Any) -> Outcome:
        from google.cloud.firestore_v1 import DELETE_FIELD  # noqa: PLC0415 - lazy

        out = Outcome()
        for cid, snap in snaps.items():
            mark = marks[cid]
            data = snap.to_dict() if snap.exists else None
            rolled = (data or {}).get("rollouts") or {}
            if data is None or data.get(feature.value) is not True or feature.value not in rolled:
                out.unchanged.append(cid)  # switched by hand since: the value is theirs now
                if data is not None and feature.value in rolled:
                    batch.update(
                        snap.reference,
                        {_rollouts_key(rolled, feature): DELETE_FIELD},
                        option=precondition(store, snap),
                    )
            else:
                out.done.append(cid)
                previous = mark.get("previous")
                rest = set(data) - {feature.value, "rollouts"} - _STAMPS
                if not mark.get("had_document", True) and not rest and len(rolled) == 1:
                    batch.delete(snap.reference, option=precondition(store, snap))
                else:
                    changes: dict[str, Any] = {
                        feature.value: DELETE_FIELD if previous is None else previous,
                        _rollouts_key(rolled, feature): DELETE_FIELD,
                    }
                    batch.update(snap.reference, changes, option=precondition(store, snap))
            batch.delete(store.marks.document(cid))
            out.writes += 2
        return out

    scanned = 0
    total = Outcome()
    for page in store.pages(
        lambda after, n: queries.rolled_out_page(
            store.client,
            feature.value,
            after=[after] if after else None,
            limit=n,
            settings=store.settings,
        ),
        size,
    ):
        scanned += len(page)
        marks = {s.id: s.to_dict() or {} for s in page}
        got = store.apply([s.id for s in page], plan, dry_run=dry_run)
        total.done += sorted(got.done)
        total.unchanged += sorted(got.unchanged)
    if audit is None and not scanned:
        raise RolloutError(f"feature={feature.value!r}: no rollout of it to undo")
    percent = audit.get("percent") if audit else None
    tier = audit.get("tier") if audit else None
    result = RolloutResult(
        feature,
        percent if isinstance(percent, int) else 0,
        BundleTier(tier) if isinstance(tier, str) and tier in set(BundleTier) else None,
        dry_run,
        undo=True,
        scanned=scanned,
        reverted=tuple(total.done),
        left_alone=tuple(total.unchanged),
        globally_off=store.globally_off(),
    )
    if not dry_run:
        _record(store, result, audit, who, when)
    return result


def _record(
    store: Store, result: RolloutResult, audit: dict[str, Any] | None, who: str, when: datetime
) -> None:
    """Write the audit document: the rollout's state now, and one more history entry."""
    from google.cloud.firestore_v1 import SERVER_TIMESTAMP  # noqa: PLC0415 - lazy

    previous = audit or {}
    entry = {
        "action": "undo" if result.undo else "rollout",
        "percent": result.percent,
        "previous_percent": previous.get("percent") if previous.get("state") == "active" else None,
        "tier": result.tier.value if result.tier else None,
        "customers_selected": len(result.selected),
        "selected_sha256": result.selected_sha256 or None,
        "turned_on": len(result.turned_on),
        "turned_on_sha256": _sha(result.turned_on),
        "already_on": len(result.already_on),
        "skipped_invalid": len(result.skipped_invalid),
        "reverted": len(result.reverted),
        "left_alone": len(result.left_alone),
        "at": when,
        "by": who,
    }
    history = [*list(previous.get("history") or [])[-(HISTORY_LIMIT - 1) :], entry]
    # The markers are the truth of what is on (a crashed earlier run's pages included).
    marks: Any = queries.rolled_out_page(store.client, store.feature.value, settings=store.settings)
    on_now = int(marks.count().get(timeout=store.timeout)[0][0].value)
    doc = {
        "schema_version": 1,
        "feature": store.feature.value,
        "state": "undone" if result.undo else "active",
        "percent": result.percent,
        "tier": result.tier.value if result.tier else None,
        "customers_selected": len(result.selected),
        "selected_sha256": result.selected_sha256 or None,
        "customers_turned_on": on_now,
        "updated_at": SERVER_TIMESTAMP,
        "updated_by": who,
        "history": history,
    }
    if audit is None:
        doc["created_at"] = SERVER_TIMESTAMP
    store.audit.set(doc, merge=True, timeout=store.timeout)


__all__ = ["BUCKETS", "RolloutError", "RolloutResult", "bucket", "rollout"]
