"""Pure planning of one customer's fold: merge shards, month summaries, customer fields, alerts.

Design (docs/counters.md):
- a summary keeps the last folded version of each of its shards (`shards.{k}`, with the shard's
  `updated_at`); merging keeps, per shard, the newer version. Shards only ever grow, so the
  merge is order-independent and idempotent: two overlapping folds, in any order, leave the
  same totals, and a re-run changes nothing;
- `seed_scenes`: a document from before the suite whose counter counts the month keeps its
  `scenes_generated_this_month` as the seed of that month, taken once, when the month's summary
  is created (decisions.md, legacy rule);
- lifetime totals: `total_*` on the customer = its value before the first fold (the legacy
  base, kept implicitly) + every month's shard totals. Each summary records how much of its
  totals the customer already holds (`mirrored_*`); the fold adds the difference and moves
  `mirrored_*` in the SAME atomic commit, guarded by both documents' update times, so each
  scene reaches the lifetime total exactly once;
- quota alerts: a month's count reaching 80 % / 100 % creates its marker in the same commit
  (the summary's `alerts` lists thresholds whose marker exists).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from functions.fold.ports import (
    Commit,
    CustomerState,
    CustomerWrite,
    Shard,
    Snapshot,
    SummaryWrite,
    Tally,
)
from functions.fold.tally import headroom, tally_bound, tally_shard
from functions.fold.tally import lenient_int as _int
from shared import quota
from shared.counters import SHARD_FLOAT_FIELDS, SHARD_INT_FIELDS, TALLY
from shared.firestore_values import plain_value
from shared.times import MONTH_RE, month_of

SCHEMA_VERSION: Final = 1
SUMMARY_TOTALS: Final = (*SHARD_INT_FIELDS, *SHARD_FLOAT_FIELDS)
THIS_MONTH: Final = quota.THIS_MONTH_FIELD
TOTAL_SCENES: Final = "total_scenes_generated"
TOTAL_EPISODES: Final = "total_episodes_generated"
_VOLATILE: Final = frozenset({"folded_at"})
"""Summary fields that change on every write and say nothing about the totals."""


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What the fold reads from a customer document (leniently: a bad field is ignored)."""

    quota: int | None
    tier: str | None
    this_month: int | None
    total_scenes: int
    total_episodes: int
    period: str
    """The month `scenes_generated_this_month` counts (quota_period, else quota_reset_at's
    month, else the month of the document's last write: `shared.quota.legacy_period`)."""
    period_known: bool
    """`quota_period` is set (the fold need not record it)."""


def customer_facts(doc: Snapshot, now: datetime) -> CustomerFacts:
    """The facts of a customer document as read."""
    data = doc.data
    raw_quota = _int(data.get("monthly_scene_quota"))
    raw_period = data.get(quota.PERIOD_FIELD)
    reset_at = plain_value(data.get("quota_reset_at"))
    if isinstance(raw_period, str) and MONTH_RE.match(raw_period):
        period, known = raw_period, True
    elif isinstance(reset_at, datetime):
        period, known = month_of(reset_at), False
    else:
        written = plain_value(doc.update_time)
        period = quota.legacy_period(written if isinstance(written, datetime) else None, now)
        known = False
    tier = data.get("bundle_tier")
    return CustomerFacts(
        quota=raw_quota,
        tier=tier if isinstance(tier, str) else None,
        this_month=_int(data.get(THIS_MONTH)),
        total_scenes=_int(data.get(TOTAL_SCENES)) or 0,
        total_episodes=_int(data.get(TOTAL_EPISODES)) or 0,
        period=period,
        period_known=known,
    )


def shard_entry(shard: Shard) -> dict[str, Any]:
    """How a shard's folded version is kept in its summary (`shards.{k}`)."""
    entry: dict[str, Any] = {}
    for name in SHARD_INT_FIELDS:
        entry[name] = _int(shard.values.get(name)) or 0
    for name in SHARD_FLOAT_FIELDS:
        value = shard.values.get(name)
        entry[name] = (
            float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0
        )
    entry["updated_at"] = shard.updated_at
    return entry


def _newer(candidate: datetime, kept: Any) -> bool:
    kept = plain_value(kept)
    return not isinstance(kept, datetime) or plain_value(candidate) > kept


def merge_shards(
    stored: Mapping[str, Mapping[str, Any]], seen: Iterable[Shard]
) -> dict[str, dict[str, Any]]:
    """The summary's shard versions updated with the shards just read (newer version wins)."""
    merged = {k: dict(v) for k, v in stored.items()}
    for shard in seen:
        kept = merged.get(shard.shard)
        if kept is None or _newer(shard.updated_at, kept.get("updated_at")):
            merged[shard.shard] = shard_entry(shard)
    return merged


def _seed(stored: Mapping[str, Any] | None, facts: CustomerFacts | None, month: str) -> int:
    """The month's `seed_scenes`: the stored one, else (the legacy rule: taken once, when the
    summary is created) the customer's count of that month."""
    if stored is not None:
        return _int(stored.get("seed_scenes")) or 0
    if facts is not None and facts.period == month:
        return max(facts.this_month or 0, 0)
    return 0


def totals(shards: Mapping[str, Mapping[str, Any]]) -> dict[str, int | float]:
    """Sum of the shard versions (ints exact; floats rounded to 6 places, sums of amounts)."""
    out: dict[str, int | float] = {}
    for name in SHARD_INT_FIELDS:
        out[name] = sum(_int(s.get(name)) or 0 for s in shards.values())
    for name in SHARD_FLOAT_FIELDS:
        out[name] = round(math.fsum(float(s.get(name) or 0.0) for s in shards.values()), 6)
    return out


def alert_id(customer_id: str, month: str, percent: int) -> str:
    """`quota_alerts` document id: one per customer, month and threshold."""
    return f"{customer_id}_{month}_{percent}"


def alert_payload(  # noqa: PLR0917 - the payload's own fields, in its order
    customer_id: str,
    month: str,
    percent: int,
    quota_: int | None,
    count: int,
    message_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The `quota-alerts` message body (the fields the usage function published before)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "alert_id": alert_id(customer_id, month, percent),
        "customer_id": customer_id,
        "month": month,
        "threshold_percent": percent,
        "monthly_scene_quota": quota_,
        "threshold_scenes": None if quota_ is None else quota.threshold_count(quota_, percent),
        "scenes_generated": count,
        "over_quota": quota_ is not None and count > quota_,
        "event_id": None,
        "message_id": message_id,
        "detected_at": now.isoformat(),
    }


PAYLOAD_FIELDS: Final = tuple(alert_payload("c", "2000-01", 80, 1, 1, "m", datetime.now(UTC)))
"""The fields of an alert message (a marker holds them too, so a later fold can send it)."""


@dataclass(frozen=True, slots=True)
class MonthFold:
    """One customer-month after the merge."""

    month: str
    totals: Mapping[str, int | float]
    seed: int
    write: SummaryWrite | None
    """None when the stored summary already says all of it."""
    tally_upto: datetime | None = None
    """The `shards.tally` bound after this fold (None: no records-counted records yet)."""
    headroom: int | None = None
    """`headroom` of the month after this fold."""

    @property
    def scenes(self) -> int:
        """The month's scene count for quota: seed + shards."""
        return self.seed + int(self.totals["scenes_generated"])


@dataclass(frozen=True, slots=True)
class CustomerPlan:
    """What one customer's fold writes, and the alerts it must publish after the commit."""

    commit: Commit
    months: tuple[MonthFold, ...]
    alerts: tuple[Mapping[str, Any], ...]
    """Payloads of the markers the commit creates."""
    facts: CustomerFacts | None


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = (set(a) | set(b)) - _VOLATILE
    return all(plain_value(a.get(k)) == plain_value(b.get(k)) for k in keys)


def plan_customer(
    customer_id: str,
    state: CustomerState,
    seen: Mapping[str, Sequence[Shard]],
    *,
    now: datetime,
    run_id: str,
    server_time: Any,
    existing_markers: frozenset[str] = frozenset(),
    tallies: Mapping[str, Tally] | None = None,
) -> CustomerPlan:
    """Plan one customer's fold from what was read (pure; `server_time` is the sentinel the
    adapter turns into the commit time). `existing_markers`: alert ids found to exist already
    (e.g. created by the usage function before the fold): listed, never created again.

    `seen` holds, per changed month, the shards the scan found this fold; `tallies`, per month,
    the records counted from the records it found (`tally_shard`).
    """
    tallies = tallies or {}
    facts = customer_facts(state.customer, now) if state.customer is not None else None
    current = month_of(now)
    folds: list[MonthFold] = []
    alerts: list[Mapping[str, Any]] = []
    markers: list[tuple[str, Mapping[str, Any]]] = []
    delta_scenes = delta_episodes = 0
    for month in sorted({*seen, *tallies}):
        stored = state.summaries.get(month)
        old = dict(stored.data) if stored is not None else {}
        kept_shards = old.get("shards") or {}
        fresh = list(seen.get(month, ()))
        if month in tallies:
            counted = tally_shard(customer_id, month, kept_shards.get(TALLY), tallies[month])
            fresh += [counted] if counted is not None else []
        shards = merge_shards(kept_shards, fresh)
        sums = totals(shards)
        seed = _seed(old if stored is not None else None, facts, month)
        count = seed + int(sums["scenes_generated"])
        known_alerts = sorted({p for p in old.get("alerts") or [] if isinstance(p, int)})
        new_alerts = [
            p
            for p in (quota.reached_thresholds(facts.quota, count) if facts else [])
            if p not in known_alerts
        ]
        for percent in new_alerts:
            if alert_id(customer_id, month, percent) in existing_markers:
                continue  # its own state says whether it still has to go out (the sweep)
            payload = alert_payload(
                customer_id, month, percent, facts.quota if facts else None, count, run_id, now
            )
            alerts.append(payload)
            markers.append(
                (
                    str(payload["alert_id"]),
                    {**payload, "state": "pending", "claimed_by": run_id, "claimed_at": now},
                )
            )
        mirrored_scenes = _int(old.get("mirrored_scenes")) or 0
        mirrored_episodes = _int(old.get("mirrored_episodes")) or 0
        if facts is not None:
            delta_scenes += int(sums["scenes_generated"]) - mirrored_scenes
            delta_episodes += int(sums["episodes_generated"]) - mirrored_episodes
            mirrored_scenes = int(sums["scenes_generated"])
            mirrored_episodes = int(sums["episodes_generated"])
        as_of = max((plain_value(s["updated_at"]) for s in shards.values()), default=None)
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "customer_id": customer_id,
            "month": month,
            **sums,
            "seed_scenes": seed,
            "scenes_total": count,
            "shard_count": len(shards) - (TALLY in shards),
            "shards": shards,
            "mirrored_scenes": mirrored_scenes,
            "mirrored_episodes": mirrored_episodes,
            "alerts": sorted({*known_alerts, *new_alerts}),
            "as_of": as_of,
            "folded_at": server_time,
        }
        write = (
            None
            if stored is not None and _same(old, data)
            else SummaryWrite(month, data, None if stored is None else stored.update_time)
        )
        room = headroom(facts.quota, count, data["alerts"]) if facts is not None else None
        folds.append(MonthFold(month, sums, seed, write, tally_bound(shards), room))
    customer_write = None
    if facts is not None and state.customer is not None:
        fields = _customer_fields(facts, folds, state, current, delta_scenes, delta_episodes)
        changed = {k: v for k, v in fields.items() if state.customer.data.get(k) != v}
        if changed:
            rollover = facts.period < current
            customer_write = CustomerWrite(changed, state.customer.update_time, rollover)
    commit = Commit(
        customer_id,
        tuple(f.write for f in folds if f.write is not None),
        customer_write,
        tuple(markers),
    )
    return CustomerPlan(commit, tuple(folds), tuple(alerts), facts)


def _customer_fields(  # noqa: PLR0917 - private helper of plan_customer
    facts: CustomerFacts,
    folds: Sequence[MonthFold],
    state: CustomerState,
    current: str,
    delta_scenes: int,
    delta_episodes: int,
) -> dict[str, Any]:
    """schema.md's three counters (+ the month the first one counts), as sets."""
    fields: dict[str, Any] = {
        TOTAL_SCENES: facts.total_scenes + delta_scenes,
        TOTAL_EPISODES: facts.total_episodes + delta_episodes,
    }
    if facts.period > current:
        return fields  # the document already counts a later month: never move it back
    folded = {f.month: f for f in folds}
    summary = state.summaries.get(current)
    if current in folded:
        this_month = folded[current].scenes
    elif summary is not None:
        this_month = _int(summary.data.get("scenes_total")) or 0
    elif facts.period == current:
        this_month = max(facts.this_month or 0, 0)  # a seed whose summary does not exist yet
    else:
        this_month = 0  # the month rolled over and nothing is counted in it yet
    fields[THIS_MONTH] = this_month
    fields[quota.PERIOD_FIELD] = current
    return fields
