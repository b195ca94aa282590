"""The migration's vocabulary: records of the export, problems, planned writes, the result."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel

from shared import names
from shared.errors import BlueprintError
from shared.models import CONFIG_MODELS

CUSTOMERS: Final = names.CUSTOMERS
SCENES: Final = names.SCENES
FEATURE_FLAGS: Final = names.FEATURE_FLAGS
ORDER: Final = tuple(CONFIG_MODELS)
MODELS: Final[dict[str, type[BaseModel]]] = dict(CONFIG_MODELS)
KEEP_ON_EXISTING: Final = frozenset(
    {
        "created_at",
        "updated_at",
        "quota_reset_at",
        "quota_period",
        "scenes_generated_this_month",
        "total_scenes_generated",
        "total_episodes_generated",
    }
)
"""Fields an existing document keeps: live counters and server-managed times."""
MAX_BATCH: Final = 500
READ_CHUNK: Final = 300


class MigrationInputError(BlueprintError):
    """The export cannot be read at all (missing file, not JSON, unknown layout)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One document of the export."""

    collection: str
    doc_id: str
    data: dict[str, Any]
    source: str


@dataclass(frozen=True, slots=True)
class BadRecord:
    """One problem of one record: where it came from, which field, what it held, what was
    expected."""

    source: str
    collection: str
    doc_id: str
    field: str
    value: Any
    expected: str

    def __str__(self) -> str:
        return (
            f"{self.source}: {self.collection}/{self.doc_id}: {self.field}="
            f"{_short(self.value)}: {self.expected}"
        )


@dataclass(frozen=True, slots=True)
class Write:
    """One planned write: a new document whole, or the changed fields of an existing one."""

    collection: str
    doc_id: str
    data: dict[str, Any]
    create: bool


@dataclass
class MigrationResult:
    """What a migration found and did."""

    records: int = 0
    invalid: list[BadRecord] = field(default_factory=list)
    invalid_records: int = 0
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    flags_initialised: int = 0
    written: int = 0
    dry_run: bool = False
    refused: bool = False

    def summary(self) -> str:
        """One line per collection plus a total."""
        lines = []
        for collection in ORDER:
            lines.append(
                f"{collection}: {self.created[collection]} new, {self.updated[collection]} "
                f"changed, {self.unchanged[collection]} unchanged"
            )
        verb = "would write" if self.dry_run else "wrote"
        lines.append(
            f"{self.records} records, {self.invalid_records} invalid; feature_flags initialised "
            f"from tier: {self.flags_initialised}; {verb} {self.written} documents"
        )
        return "\n".join(lines)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
