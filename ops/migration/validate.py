"""Step 2 of the migration: validate every record before anything is written."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, TypeAdapter, ValidationError

from ops.migration.records import CUSTOMERS, MODELS, SCENES, BadRecord, Record
from shared.models import Scene, document_errors
from shared.types import DocumentId

_ID_ADAPTER: TypeAdapter[str] = TypeAdapter(DocumentId)


@dataclass
class Checked:
    """The export after validation."""

    valid: list[tuple[Record, BaseModel]]
    bad: list[BadRecord]
    bad_keys: set[tuple[str, str]]


def validate_export(
    records: Sequence[Record],
    structural: Sequence[BadRecord] = (),
    existing_customers: Callable[[set[str]], set[str]] | None = None,
) -> Checked:
    """Validate every record; `existing_customers(ids)` says which ids Firestore already has."""
    bad = list(structural)
    bad_keys = {(b.collection, b.doc_id) for b in structural}
    seen: dict[tuple[str, str], str] = {}
    models: dict[tuple[str, str], tuple[Record, BaseModel]] = {}
    for record in records:
        key = (record.collection, record.doc_id)
        problems: list[BadRecord] = []
        try:
            _ID_ADAPTER.validate_python(record.doc_id)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
            problems.append(BadRecord(record.source, *key, "(id)", record.doc_id, msg))
        if key in seen:
            problems.append(
                BadRecord(
                    record.source, *key, "(id)", record.doc_id, f"unique; also in {seen[key]}"
                )
            )
        seen.setdefault(key, record.source)
        for err in document_errors(MODELS[record.collection], record.data):
            problems.append(BadRecord(record.source, *key, err.field, err.value, err.expected))
        if problems:
            bad += problems
            bad_keys.add(key)
        else:
            models[key] = (record, MODELS[record.collection].model_validate(record.data))
    for key in bad_keys:
        models.pop(key, None)  # a duplicated id: no copy is trusted, the first one neither
    valid_customers = {doc_id for (c, doc_id) in models if c == CUSTOMERS}
    wanted = {
        m.customer_id
        for (c, _), (_, m) in models.items()
        if c == SCENES and isinstance(m, Scene) and m.customer_id not in valid_customers
    }
    known = valid_customers | (
        existing_customers(wanted) if wanted and existing_customers else set()
    )
    for key, (record, model) in list(models.items()):
        if isinstance(model, Scene) and model.customer_id not in known:
            expected = "a customer of the export (valid) or already in Firestore"
            bad.append(BadRecord(record.source, *key, "customer_id", model.customer_id, expected))
            bad_keys.add(key)
            del models[key]
    return Checked(list(models.values()), bad, bad_keys)
