"""The records-counted part of a month summary (`shards.tally`), and a month's alert headroom
(pure): what the planner and the holding of quiet months share."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from functions.fold.ports import Shard, Tally
from shared import quota
from shared.counters import SHARD_FLOAT_FIELDS, SHARD_INT_FIELDS, TALLY
from shared.firestore_values import plain_value


def lenient_int(value: Any) -> int | None:
    """An integer field as read (a finite float truncated); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None


class TallyGapError(Exception):
    """A held tally that an overlapping fold has partly written into the summary (its bound
    lies inside the held range): the month must be recounted from its records."""

    def __init__(self, month: str, after: datetime | None) -> None:
        super().__init__(f"held tally of {month} overlaps its summary's bound {after}")
        self.month = month
        self.after = after


def tally_shard(
    customer_id: str, month: str, stored: Mapping[str, Any] | None, tally: Tally
) -> Shard | None:
    """The month's records-counted part after this fold, as a shard version (`shards.tally`):
    the stored one, plus what earlier folds held back for it (`tally.held`, when it starts at
    the stored bound), plus the scanned records after both and up to `tally.upto`, stamped
    `upto`. None when nothing new: the stored version stands. Exactly once whatever folds
    overlap: the summary's guarded write moves the sums and the stamp together, a fold that
    re-reads a newer stamp adds only what lies after it, and a held tally the stamp has passed
    is already in. TallyGapError when the stamp lies inside the held range."""
    found = plain_value(stored.get("updated_at")) if stored else None
    as_of = found if isinstance(found, datetime) else None
    parts: list[Mapping[str, Any]] = [stored or {}]
    covered = as_of
    held = tally.held
    if held is not None and not held.empty:
        if plain_value(held.base) == as_of:
            parts.append(held.values)
            covered = held.upto
        elif as_of is None or held.upto > as_of:
            raise TallyGapError(month, as_of)
    parts += [
        r.values
        for r in tally.records
        if not r.flag
        and (covered is None or r.recorded_at > covered)
        and r.recorded_at <= tally.upto
    ]  # a flag's counts are in `counted`
    if tally.counted is not None:
        if tally.counted_after != as_of:
            raise ValueError(f"tally of {month} counted after {tally.counted_after}, not {as_of}")
        if tally.counted.get("records"):
            parts.append(tally.counted)
    elif tally.flagged:
        raise ValueError(f"tally of {month} has flags but was not counted")
    if len(parts) == 1:
        return None
    values: dict[str, int | float] = {}
    for name in SHARD_INT_FIELDS:
        values[name] = sum(lenient_int(p.get(name)) or 0 for p in parts)
    for name in SHARD_FLOAT_FIELDS:
        amounts = (p.get(name) for p in parts)
        values[name] = math.fsum(float(v) for v in amounts if isinstance(v, int | float))
    stamp = tally.upto if covered is None else max(tally.upto, covered)
    return Shard(customer_id, month, TALLY, values, stamp)


def tally_bound(shards: Mapping[str, Mapping[str, Any]]) -> datetime | None:
    """The `shards.tally` stamp of a month's merged shards (None: no records counted yet)."""
    found = plain_value((shards.get(TALLY) or {}).get("updated_at"))
    return found if isinstance(found, datetime) else None


def headroom(quota_: int | None, count: int, alerted: Iterable[int]) -> int | None:
    """Scenes a month at `count` may still count before it reaches a threshold it has no
    alert for yet (None: none ahead)."""
    if quota_ is None or quota.is_unlimited(quota_):
        return None
    done = set(alerted)
    ahead = [
        quota.threshold_count(quota_, p) - count
        for p in quota.THRESHOLDS
        if p not in done and quota.threshold_count(quota_, p) > count
    ]
    return min(ahead, default=None)
