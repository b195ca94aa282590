"""Where usage counts live: month counter shards, their summary, and the fold's dirty buckets.

Layout (docs/counters.md):
- `usage_counters/{customer_id}_{YYYY-MM}/shards/{k}`, k in [0, shards): incremented by the
  usage function in the same commit as the record (fields `SHARD_INT_FIELDS`,
  `SHARD_FLOAT_FIELDS`, plus `customer_id`, `month`, `fold_bucket`, `updated_at`);
- `usage_counters/{customer_id}_{YYYY-MM}`: the month's totals, written (set) by the fold only;
- `usage_tracking/{id}` records of quiet customer-months carry `fold_key` instead of a shard
  increment: the fold counts them by aggregation into the summary's `shards.tally`; one per
  instance and 45 s is a flag (`fold_bucket`: what the fold's scan finds), the others name the
  flag that covers them (`fold_flag_at`); records from before flags carry `fold_bucket` only and
  are counted from the scan (`record_counts`);
- `usage_fold_state/{bucket}`: the fold's watermarks per bucket. A shard's `fold_bucket` is a
  stable hash of its customer-month, so the fold's scan of what changed is spread over
  `buckets` index prefixes instead of one sequential index.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from shared.times import MONTH_RE

SHARD_INT_FIELDS: Final = ("records", "scenes_generated", "episodes_generated", "cost_cents")
"""Exact integer counters of a shard (money in cents, so sums are exact)."""
SHARD_FLOAT_FIELDS: Final = ("compute_minutes", "storage_gb")
"""Amounts summed as floats (reports that must be exact sum the records instead)."""
SHARD_META_FIELDS: Final = ("customer_id", "month", "fold_bucket", "updated_at")


def counter_doc_id(customer_id: str, month: str) -> str:
    """Id of the customer-month's summary document (parent of its shards)."""
    return f"{customer_id}_{month}"


def split_counter_doc_id(doc_id: str) -> tuple[str, str] | None:
    """`{customer_id}_{YYYY-MM}` -> (customer_id, month); None when it is not one."""
    customer_id, sep, month = doc_id.rpartition("_")
    if not sep or not customer_id or not MONTH_RE.match(month):
        return None
    return customer_id, month


def fold_bucket(customer_id: str, month: str, buckets: int) -> int:
    """The dirty bucket of a customer-month: stable across processes and deploys."""
    digest = hashlib.sha256(counter_doc_id(customer_id, month).encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


TALLY: Final = "tally"
"""Key of the records-counted part in a month summary's `shards` (never a shard's id)."""
TALLY_FIELD: Final = "fold_bucket"
"""Set on a `usage_tracking` record counted from the records (no shard increment): its
customer-month's fold bucket, the prefix of the fold's scan of such records."""
FOLD_KEY_FIELD: Final = "fold_key"
"""Set on every record counted from the records: `counter_doc_id` of its customer-month. The
fold counts a month's records by aggregation queries on it (`fold_key == key`, a range of
`recorded_at`), reading one index batch per 1,000 records instead of each record."""
FLAG_AT_FIELD: Final = "fold_flag_at"
"""On a records-counted record WITHOUT `fold_bucket`: the commit time of the flagged record
(one carrying `fold_bucket`) of the same customer-month and instance that covers it: the fold,
having seen that flag, counts the month up to at least `FLAG_COVER` after it."""
FLAG_COVER: Final = timedelta(seconds=60)
"""How long after its commit a flag covers the same instance's unflagged records of its
customer-month. A record that commits later than this after its flag touches a shard of its
month instead (a zero increment: the fold sees the month changed)."""
TOUCHED_AT_FIELD: Final = "touched_at"
"""On a shard: the commit time of the last late record's zero increment (= its `updated_at`
when that was the shard's last write): the fold counts the month's records when it sees it."""
AGGREGATED_INT_FIELDS: Final = ("scenes_generated", "episodes_generated", "cost_cents")
"""Integer fields of a records-counted record the fold sums by aggregation (`records` is the
count): every one is on every such record, a number or null (`tally_fields`)."""
AGGREGATED_FLOAT_FIELDS: Final = SHARD_FLOAT_FIELDS
SCENE_GENERATED: Final = "scene_generated"
"""The action that counts one scene (`scenes_generated`)."""


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def record_counts(record: Mapping[str, Any]) -> tuple[dict[str, int], dict[str, float]]:
    """What one stored `usage_tracking` record adds to its month's counters: the same
    numbers its shard increment would add (`functions.usage.records.shard_increment`).

    `cost_cents` comes from `estimated_cost`, a float of a cent-rounded Decimal: its shortest
    repr is that decimal, so the cents are exact."""
    cost = record.get("estimated_cost")
    cents = 0
    if isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost):
        cents = int((Decimal(repr(float(cost))) * 100).to_integral_value(ROUND_HALF_UP))
    episodes = record.get("episodes_generated")
    ints = {
        "records": 1,
        "scenes_generated": 1 if record.get("action") == SCENE_GENERATED else 0,
        "episodes_generated": episodes
        if isinstance(episodes, int) and not isinstance(episodes, bool)
        else 0,
        "cost_cents": cents,
    }
    floats = {
        "compute_minutes": _number(record.get("compute_minutes")),
        "storage_gb": _number(record.get("storage_gb")),
    }
    return ints, floats
