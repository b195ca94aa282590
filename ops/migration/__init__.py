"""`blueprint migrate`: JSON export files -> Firestore, following the specification's guide.

1. Load the export: one file per collection (`customers.json`, `scenes.json`, optional
   `feature_flags.json`; an object of id -> document, or a list of documents carrying `id`), or a
   directory of customer files (`<customer_id>.json`, optionally embedding `scenes` and
   `feature_flags`).
2. Validate everything first: every document against its model, ids, duplicates, and each scene's
   `customer_id` (a valid customer of the export, or one already in Firestore). Every bad record
   is reported (file, id, field, value). Nothing is written unless all are valid or
   `skip_invalid` is set.
3. Plan: read what exists (batched `get_all`), compare field by field, and write only what
   differs: new documents whole, existing ones only their changed fields (live counters and
   server timestamps of an existing document are left alone). `feature_flags/{customer}` is
   initialised from the customer's tier when neither the export nor Firestore has one.
4. Write in `WriteBatch`es; a second run finds nothing to change and writes 0 documents.
"""

from ops.migration.load import load_export
from ops.migration.plan import plan_writes, tier_flags
from ops.migration.records import (
    CUSTOMERS,
    FEATURE_FLAGS,
    SCENES,
    BadRecord,
    MigrationInputError,
    MigrationResult,
    Record,
    Write,
)
from ops.migration.run import migrate
from ops.migration.target import FirestoreMigrationTarget, MigrationTarget
from ops.migration.validate import Checked, validate_export

__all__ = [
    "CUSTOMERS",
    "FEATURE_FLAGS",
    "SCENES",
    "BadRecord",
    "Checked",
    "FirestoreMigrationTarget",
    "MigrationInputError",
    "MigrationResult",
    "MigrationTarget",
    "Record",
    "Write",
    "load_export",
    "migrate",
    "plan_writes",
    "tier_flags",
    "validate_export",
]
