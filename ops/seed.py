"""`blueprint seed-demo`: load the demo's example documents (`ops/examples.py`) into Firestore.

Configuration documents go through the migration's compare-then-write plan, the usage record is
created when absent: running it twice writes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops.examples import raw_examples, stored_example
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


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What `seed_demo` wrote (or would write)."""

    dry_run: bool
    configuration_documents: int
    up_to_date: int
    usage_records: int

    def __str__(self) -> str:
        verb = "would write" if self.dry_run else "wrote"
        return (
            f"{verb} {self.configuration_documents} configuration documents "
            f"({self.up_to_date} already up to date) and {self.usage_records} usage records"
        )

    def as_json(self) -> dict[str, Any]:
        """`seed-demo --json` (docs/cli.md)."""
        return {
            "dry_run": self.dry_run,
            "configuration_documents": self.configuration_documents,
            "up_to_date": self.up_to_date,
            "usage_records": self.usage_records,
        }


def seed_demo(client: Any, *, dry_run: bool = False) -> SeedResult:
    """Write the examples (idempotent); `str()` of the result is a one-line summary."""
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
            data = stored_example(names.USAGE_TRACKING, record, settings.usage_fold_buckets)
            ref.set(data, timeout=settings.firestore_timeout_seconds)
    return SeedResult(dry_run, len(writes), sum(result.unchanged.values()), len(new_usage))
