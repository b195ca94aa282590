"""`blueprint seed-demo`: load schema.md's example documents (`ops/examples.py`) into Firestore.

Configuration documents go through the migration's compare-then-write plan, the usage record is
created when absent: running it twice writes nothing the second time.
"""

from __future__ import annotations

from typing import Any

from ops.examples import raw_examples
from ops.migration import (
    CUSTOMERS,
    FEATURE_FLAGS,
    SCENES,
    FirestoreMigrationTarget,
    Record,
    plan_writes,
    validate_export,
)
from shared import names
from shared.models import UsageRecord
from shared.settings import get_settings


def seed_demo(client: Any, *, dry_run: bool = False) -> str:
    """Write the examples; return a one-paragraph summary."""
    settings = get_settings()
    records = [
        Record(collection, doc_id, dict(doc), f"ops/data/examples/{collection}.json")
        for collection in (CUSTOMERS, SCENES, FEATURE_FLAGS)
        for doc_id, doc in raw_examples(collection).items()
    ]
    target = FirestoreMigrationTarget(client, settings)
    checked = validate_export(records, (), target.existing_customers)
    if checked.bad:  # the packaged examples are tested valid; this guards edits
        raise ValueError("; ".join(str(b) for b in checked.bad))
    keys = [(r.collection, r.doc_id) for r, _ in checked.valid]
    keys += [(FEATURE_FLAGS, r.doc_id) for r, _ in checked.valid if r.collection == CUSTOMERS]
    writes, result = plan_writes(checked, target.read(keys))
    usage = client.collection(settings.usage_tracking_collection)
    new_usage = []
    for doc_id, doc in raw_examples(names.USAGE_TRACKING).items():
        record = UsageRecord.model_validate(doc)
        ref = usage.document(doc_id)
        if not ref.get(timeout=settings.firestore_timeout_seconds).exists:
            new_usage.append((ref, record))
    if not dry_run:
        target.write(writes, batch_size=400)
        for ref, record in new_usage:
            from shared.firestore_values import to_firestore  # noqa: PLC0415

            ref.set(to_firestore(record), timeout=settings.firestore_timeout_seconds)
    verb = "would write" if dry_run else "wrote"
    return (
        f"{verb} {len(writes)} configuration documents "
        f"({sum(result.unchanged.values())} already up to date) and "
        f"{len(new_usage)} usage records"
    )
