"""`blueprint migrate`: JSON export files -> Firestore, following schema.md's migration guide.

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

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from pydantic import BaseModel, TypeAdapter, ValidationError

from shared import names
from shared.errors import BlueprintError
from shared.firestore_values import plain_value
from shared.models import (
    CONFIG_MODELS,
    Customer,
    Feature,
    Scene,
    document_errors,
    to_plain,
)
from shared.settings import Settings, get_settings
from shared.tiers import tier_spec
from shared.types import DocumentId

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
        "scene_counts_by_month",
    }
)
"""Fields an existing document keeps: live counters and server-managed times."""
MAX_BATCH: Final = 500
READ_CHUNK: Final = 300
_ID_ADAPTER: TypeAdapter[str] = TypeAdapter(DocumentId)


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


# ------------------------------------------------------------------------------------------
# Loading


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MigrationInputError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise MigrationInputError(f"{path}: not valid JSON: {exc}") from None


_ID_KEYS: Final = {CUSTOMERS: ("id", "customer_id"), SCENES: ("id", "scene_id")}


def _documents(
    collection: str, data: Any, source: str, bad: list[BadRecord]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, document) pairs of an id -> doc object or a list of docs with an id key."""
    if isinstance(data, dict):
        for doc_id, doc in data.items():
            if doc_id.startswith("_comment"):
                continue
            if not isinstance(doc, dict):
                bad.append(BadRecord(source, collection, doc_id, "(document)", doc, "an object"))
                continue
            yield doc_id, dict(doc)
        return
    if isinstance(data, list):
        for index, item in enumerate(data):
            keys = (*_ID_KEYS.get(collection, ("id",)), "_id")
            if not isinstance(item, dict):
                bad.append(BadRecord(source, collection, f"#{index}", "(document)", item, "object"))
                continue
            doc = dict(item)
            doc_id = next((doc[k] for k in keys if isinstance(doc.get(k), str)), None)
            if doc_id is None:
                bad.append(
                    BadRecord(
                        source, collection, f"#{index}", "id", None, f"one of {list(keys)} set"
                    )
                )
                continue
            for key in ("id", "_id"):
                doc.pop(key, None)
            if collection == SCENES:
                doc.pop("scene_id", None)
            if collection == CUSTOMERS:
                doc.pop("customer_id", None)
            yield doc_id, doc
        return
    raise MigrationInputError(f"{source}: expected an object of id -> document or a list")


def _classify(paths: Sequence[str | Path]) -> tuple[list[tuple[str, Path]], list[Path]]:
    """(collection, file) pairs and customer files named by the arguments."""
    files: list[tuple[str, Path]] = []
    customer_files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            per_collection = [path / f"{c}.json" for c in ORDER if (path / f"{c}.json").is_file()]
            if per_collection:
                files += [(p.stem, p) for p in per_collection]
                continue
            found = sorted(path.glob("*.json"))
            if not found:
                raise MigrationInputError(f"{path}: no .json files in this directory")
            customer_files += found
        elif path.is_file():
            if path.stem not in ORDER:
                raise MigrationInputError(
                    f"{path}: cannot tell the collection; name the file customers.json, "
                    "scenes.json or feature_flags.json (or give a directory of customer files)"
                )
            files.append((path.stem, path))
        else:
            raise MigrationInputError(f"{path}: no such file or directory")
    return files, customer_files


def _customer_file(path: Path, records: list[Record], bad: list[BadRecord]) -> None:
    """A `<customer_id>.json` file: the customer, with optional `scenes` and `feature_flags`."""
    doc = _read_json(path)
    if not isinstance(doc, dict):
        raise MigrationInputError(f"{path}: expected one customer document (a JSON object)")
    doc = dict(doc)
    doc_id = str(doc.pop("customer_id", None) or path.stem)
    scenes = doc.pop("scenes", None)
    flags = doc.pop("feature_flags", None)
    records.append(Record(CUSTOMERS, doc_id, doc, str(path)))
    if scenes is not None:
        for scene_id, scene in _documents(SCENES, scenes, str(path), bad):
            scene.setdefault("customer_id", doc_id)
            records.append(Record(SCENES, scene_id, scene, str(path)))
    if isinstance(flags, dict):
        records.append(Record(FEATURE_FLAGS, doc_id, dict(flags), str(path)))
    elif flags is not None:
        bad.append(BadRecord(str(path), FEATURE_FLAGS, doc_id, "(document)", flags, "an object"))


def load_export(paths: Sequence[str | Path]) -> tuple[list[Record], list[BadRecord]]:
    """Read every record of the export; structural problems come back as bad records."""
    records: list[Record] = []
    bad: list[BadRecord] = []
    files, customer_files = _classify(paths)
    for collection, path in files:
        for doc_id, doc in _documents(collection, _read_json(path), str(path), bad):
            records.append(Record(collection, doc_id, doc, str(path)))
    for path in customer_files:
        _customer_file(path, records, bad)
    return records, bad


# ------------------------------------------------------------------------------------------
# Validation


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


# ------------------------------------------------------------------------------------------
# Planning and writing


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


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MigrationTarget(Protocol):
    """Where the migration reads existing documents and writes."""

    def read(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any] | None]:
        """Existing data of each key (None when absent)."""
        ...

    def existing_customers(self, ids: set[str]) -> set[str]:
        """Which of these customer ids already exist."""
        ...

    def write(self, writes: Sequence[Write], batch_size: int, progress: Any = None) -> int:
        """Commit the writes in batches; how many documents were written."""
        ...


class FirestoreMigrationTarget:
    """Reads and batched writes for the migration, over google-cloud-firestore."""

    def __init__(self, client: Any, settings: Settings | None = None) -> None:
        # A client, or a zero-argument factory called on first use (input errors come first).
        self._client_or_factory = client
        self._made: Any = None
        self._settings = settings or get_settings()
        self._names = {
            CUSTOMERS: self._settings.customers_collection,
            SCENES: self._settings.scenes_collection,
            FEATURE_FLAGS: self._settings.feature_flags_collection,
        }

    @property
    def _client(self) -> Any:
        if self._made is None:
            given = self._client_or_factory
            self._made = given if hasattr(given, "collection") else given()
        return self._made

    def _ref(self, collection: str, doc_id: str) -> Any:
        return self._client.collection(self._names[collection]).document(doc_id)

    def read(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any] | None]:
        """Existing data of each key (None when absent), read in chunks."""
        keys = list(dict.fromkeys(keys))
        out: dict[tuple[str, str], dict[str, Any] | None] = {}
        by_path = {self._ref(*k).path: k for k in keys}
        timeout = self._settings.firestore_timeout_seconds
        for chunk in _chunks(keys, READ_CHUNK):
            refs = [self._ref(*k) for k in chunk]
            for snap in self._client.get_all(refs, timeout=timeout):
                out[by_path[snap.reference.path]] = snap.to_dict() if snap.exists else None
        return out

    def existing_customers(self, ids: set[str]) -> set[str]:
        """Which of these customer ids Firestore already has."""
        found = self.read((CUSTOMERS, i) for i in ids)
        return {k[1] for k, v in found.items() if v is not None}

    def write(self, writes: Sequence[Write], batch_size: int, progress: Any = None) -> int:
        """Commit the writes in batches; returns how many documents were written."""
        done = 0
        timeout = self._settings.firestore_timeout_seconds
        for chunk in _chunks(writes, batch_size):
            batch = self._client.batch()
            for w in chunk:
                if w.create:
                    batch.set(self._ref(w.collection, w.doc_id), w.data)
                else:
                    batch.update(self._ref(w.collection, w.doc_id), w.data)
            batch.commit(timeout=timeout)
            done += len(chunk)
            if progress is not None:
                progress.update(len(chunk))
        return done


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


__all__ = [
    "BadRecord",
    "FirestoreMigrationTarget",
    "MigrationInputError",
    "MigrationResult",
    "MigrationTarget",
    "Record",
    "load_export",
    "migrate",
    "plan_writes",
    "tier_flags",
    "validate_export",
]
