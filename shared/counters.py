"""The ledger's layout: what a usage record carries for the fold, and the month summary's id.

The `usage_tracking` records are the ledger; the month summaries `usage_counters/{customer}_
{YYYY-MM}` and the customer's counters are its projection, which the fold rebuilds
(docs/counters.md). The usage function writes these fields on every record; the fold and the
recount read them. Nothing else is shared between the two.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from shared.times import MONTH_RE

SCENE_GENERATED: Final = "scene_generated"
"""The action that counts one scene."""
BUCKET_FIELD: Final = "fold_bucket"
"""On every record: its customer-month's fold bucket, the prefix of the fold's scan."""
MONTH_KEY_FIELD: Final = "fold_key"
"""On every record: `counter_doc_id` of its customer-month (the recount's filter)."""
RECORDED_AT_FIELD: Final = "recorded_at"
"""On every record: its commit time (server), the fold's clock."""


def counter_doc_id(customer_id: str, month: str) -> str:
    """Id of the customer-month's summary document."""
    return f"{customer_id}_{month}"


def split_counter_doc_id(doc_id: str) -> tuple[str, str] | None:
    """`{customer_id}_{YYYY-MM}` -> (customer_id, month); None when it is not one."""
    customer_id, sep, month = doc_id.rpartition("_")
    if not sep or not customer_id or not MONTH_RE.match(month):
        return None
    return customer_id, month


def fold_bucket(customer_id: str, month: str, buckets: int) -> int:
    """The fold bucket of a customer-month: stable across processes and deploys. It spreads the
    scan's sequential `recorded_at` over `buckets` index prefixes; one customer-month's records
    share a prefix, as they share one in the `(customer_id, timestamp)` index."""
    digest = hashlib.sha256(counter_doc_id(customer_id, month).encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return 0


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


@dataclass(frozen=True, slots=True)
class Sums:
    """What a set of records adds up to. Counts and money are integers (exact); the amounts
    are float sums, stored as summed (rounding each fold's sum would drift by up to half a
    millionth a fold, and a recount would then report a difference nobody can see)."""

    records: int = 0
    scenes_generated: int = 0
    episodes_generated: int = 0
    cost_cents: int = 0
    compute_minutes: float = 0.0
    storage_gb: float = 0.0

    def __add__(self, other: Sums) -> Sums:
        return Sums(
            self.records + other.records,
            self.scenes_generated + other.scenes_generated,
            self.episodes_generated + other.episodes_generated,
            self.cost_cents + other.cost_cents,
            self.compute_minutes + other.compute_minutes,
            self.storage_gb + other.storage_gb,
        )

    def same_as(self, other: Sums) -> bool:
        """Equal counts and money, and equal amounts (see `differences`)."""
        return not self.differences(other)

    def differences(self, other: Sums) -> dict[str, tuple[int | float, int | float]]:
        """Each field that differs, with (this value, the other's). Counts and cents must be
        equal; the amounts may differ by what float sums in another order differ by."""
        out: dict[str, tuple[int | float, int | float]] = {}
        for name in SUM_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, int):
                differs = mine != theirs
            else:
                differs = not math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-9)
            if differs:
                out[name] = (mine, theirs)
        return out

    def exact(self) -> tuple[int, int, int, int]:
        """The integer part: records, scenes, episodes, cents."""
        return (self.records, self.scenes_generated, self.episodes_generated, self.cost_cents)

    def as_fields(self) -> dict[str, int | float]:
        """As a summary stores them."""
        return {
            "records": self.records,
            "scenes_generated": self.scenes_generated,
            "episodes_generated": self.episodes_generated,
            "cost_cents": self.cost_cents,
            "compute_minutes": self.compute_minutes,
            "storage_gb": self.storage_gb,
        }

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Sums:
        """Read back from a summary (or an aggregation's answer); a bad field counts 0."""
        return cls(
            _int(data.get("records")),
            _int(data.get("scenes_generated")),
            _int(data.get("episodes_generated")),
            _int(data.get("cost_cents")),
            _float(data.get("compute_minutes")),
            _float(data.get("storage_gb")),
        )


SUM_FIELDS: Final = tuple(f.name for f in fields(Sums))
SUMMED_RECORD_FIELDS: Final = SUM_FIELDS[1:]
"""The fields of a record the recount sums (`records` is the count)."""


def cost_cents(amount: Decimal) -> int:
    """A cent-rounded amount in integer cents."""
    return int((amount * 100).to_integral_value(ROUND_HALF_UP))


def record_fields(
    customer_id: str, month: str, action: str, amount: Decimal, buckets: int
) -> dict[str, Any]:
    """What the usage function adds to a record so the fold can find and sum it: its bucket,
    its month key, and the integer counts no data-model field holds as a number."""
    return {
        BUCKET_FIELD: fold_bucket(customer_id, month, buckets),
        MONTH_KEY_FIELD: counter_doc_id(customer_id, month),
        "scenes_generated": 1 if action == SCENE_GENERATED else 0,
        "cost_cents": cost_cents(amount),
    }


def record_sums(record: Mapping[str, Any]) -> Sums:
    """What one stored record adds to its month: the same numbers the recount's aggregation
    sums over it (`SUMMED_RECORD_FIELDS`), so the fold and the recount agree by construction."""
    return Sums(
        1,
        _int(record.get("scenes_generated")),
        _int(record.get("episodes_generated")),
        _int(record.get("cost_cents")),
        _float(record.get("compute_minutes")),
        _float(record.get("storage_gb")),
    )
