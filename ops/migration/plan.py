"""Step 3 of the migration: compare with what exists; the writes that make Firestore match."""

from __future__ import annotations

from typing import Any

from ops.migration.records import (
    FEATURE_FLAGS,
    KEEP_ON_EXISTING,
    ORDER,
    MigrationResult,
    Write,
)
from ops.migration.validate import Checked
from shared.firestore_values import plain_value
from shared.models import Customer, Feature, to_plain
from shared.tiers import tier_spec


def tier_flags(customer: Customer) -> dict[str, Any]:
    """The `feature_flags` document a customer's tier implies (migration guide, step 4)."""
    spec = tier_spec(customer.bundle_tier)
    data: dict[str, Any] = {"schema_version": 1}
    data.update({f.value: spec.has(f) for f in Feature})
    return data


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return not isinstance(b, bool) and float(a) == float(b)
    return bool(a == b)


def plan_writes(
    checked: Checked, existing: dict[tuple[str, str], dict[str, Any] | None]
) -> tuple[list[Write], MigrationResult]:
    """Compare the export with what exists; the writes that make Firestore match it."""
    result = MigrationResult()
    writes: list[Write] = []
    flagged = {r.doc_id for r, _ in checked.valid if r.collection == FEATURE_FLAGS}
    for record, model in sorted(checked.valid, key=lambda rm: ORDER.index(rm[0].collection)):
        key = (record.collection, record.doc_id)
        data = to_plain(model)
        current = existing.get(key)
        if current is None:
            writes.append(Write(*key, data, create=True))
            result.created[record.collection] += 1
        else:
            current = plain_value(current)
            changed = {
                k: v
                for k, v in data.items()
                if k not in KEEP_ON_EXISTING and not (k in current and _same(current[k], v))
            }
            if changed:
                writes.append(Write(*key, changed, create=False))
                result.updated[record.collection] += 1
            else:
                result.unchanged[record.collection] += 1
        if isinstance(model, Customer) and record.doc_id not in flagged:
            flags_key = (FEATURE_FLAGS, record.doc_id)
            if existing.get(flags_key) is None:
                writes.append(Write(*flags_key, tier_flags(model), create=True))
                result.created[FEATURE_FLAGS] += 1
                result.flags_initialised += 1
            else:
                result.unchanged[FEATURE_FLAGS] += 1
    return writes, result
