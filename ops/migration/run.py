"""Step 4 of the migration: the whole run, load -> validate -> plan -> write."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ops.migration.load import load_export
from ops.migration.plan import plan_writes
from ops.migration.records import (
    CUSTOMERS,
    FEATURE_FLAGS,
    MAX_BATCH,
    MigrationInputError,
    MigrationResult,
)
from ops.migration.target import MigrationTarget
from ops.migration.validate import validate_export


def migrate(
    paths: Sequence[str | Path],
    target: MigrationTarget,
    *,
    skip_invalid: bool = False,
    dry_run: bool = False,
    batch_size: int = 400,
    progress_factory: Callable[[int], Any] | None = None,
) -> MigrationResult:
    """Run the whole migration (see the module doc); `refused` when invalid records stop it."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise MigrationInputError(f"--batch-size {batch_size}: expected 1 to {MAX_BATCH}")
    records, structural = load_export(paths)
    checked = validate_export(records, structural, target.existing_customers)
    invalid_records = len(checked.bad_keys)
    # Entries that could not even be read as documents (not an object, no id) count as records.
    unreadable = {(b.collection, b.doc_id) for b in structural} - {
        (r.collection, r.doc_id) for r in records
    }
    total = len(records) + len(unreadable)
    if checked.bad and not skip_invalid:
        return MigrationResult(
            records=total,
            invalid=checked.bad,
            invalid_records=invalid_records,
            dry_run=dry_run,
            refused=True,
        )
    keys: list[tuple[str, str]] = []
    for record, _ in checked.valid:
        keys.append((record.collection, record.doc_id))
        if record.collection == CUSTOMERS:
            keys.append((FEATURE_FLAGS, record.doc_id))
    writes, result = plan_writes(checked, target.read(keys))
    result.records = total
    result.invalid = checked.bad
    result.invalid_records = invalid_records
    result.dry_run = dry_run
    if dry_run:
        result.written = len(writes)
        return result
    progress = progress_factory(len(writes)) if progress_factory and writes else None
    try:
        result.written = target.write(writes, batch_size, progress)
    finally:
        if progress is not None:
            progress.close()
    return result
