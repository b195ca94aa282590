"""Where usage counts live: month counter shards, their summary, and the fold's dirty buckets.

Layout (docs/counters.md):
- `usage_counters/{customer_id}_{YYYY-MM}/shards/{k}`, k in [0, shards): incremented by the
  usage function in the same commit as the record (fields `SHARD_INT_FIELDS`,
  `SHARD_FLOAT_FIELDS`, plus `customer_id`, `month`, `fold_bucket`, `updated_at`);
- `usage_counters/{customer_id}_{YYYY-MM}`: the month's totals, written (set) by the fold only;
- `usage_fold_state/{bucket}`: the fold's watermark per bucket. A shard's `fold_bucket` is a
  stable hash of its customer-month, so the fold's scan of what changed is spread over
  `buckets` index prefixes instead of one sequential index.
"""

from __future__ import annotations

import hashlib
from typing import Final

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
